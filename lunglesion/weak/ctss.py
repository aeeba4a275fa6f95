"""CT severity score (CTSS 0-5) tables and their conversion to lesion-fraction intervals.

Two tables ship (Xie et al. 2023 notes, methods.md section 4):

* ``standard``: the usual COVID-19 CTSS per lobe: 0 = 0 %, 1 = (0, 5 %], 2 = (5, 25 %],
  3 = (25, 50 %], 4 = (50, 75 %], 5 = (75, 100 %].
* ``paper_code``: the table in the official dRAM code (an emphysema-project leftover):
  0 = [0, 0.1 %), 1 = [0.1, 1 %), 2 = [1, 5 %), 3 = [5, 35 %), 4 = [35, 50 %), 5 = [50, 100 %].

Intervals are fractions in [0, 1]; a fraction on a boundary takes the lower score in the
standard table (``(lo, hi]``) and the upper score in the paper-code table (``[lo, hi)``).
"""

from __future__ import annotations

from lunglesion.errors import InputError

TABLES: dict[str, dict[int, tuple[float, float]]] = {
    "standard": {0: (0.0, 0.0), 1: (0.0, 0.05), 2: (0.05, 0.25), 3: (0.25, 0.50),
                 4: (0.50, 0.75), 5: (0.75, 1.0)},
    "paper_code": {0: (0.0, 0.001), 1: (0.001, 0.01), 2: (0.01, 0.05), 3: (0.05, 0.35),
                   4: (0.35, 0.50), 5: (0.50, 1.0)},
}


def table(name: str) -> dict[int, tuple[float, float]]:
    """The score -> (low, high) fraction table called ``name``."""
    if name not in TABLES:
        raise InputError(f"unknown CTSS table '{name}' (known: {', '.join(TABLES)})")
    return TABLES[name]


def score_to_interval(score: int, table_name: str = "standard") -> tuple[float, float]:
    """Lesion-fraction interval ``(low, high)`` of a CTSS score."""
    intervals = table(table_name)
    if int(score) != score or int(score) not in intervals:
        raise InputError(f"CTSS score must be an integer 0-5, got {score!r}")
    return intervals[int(score)]


def fraction_to_score(fraction: float, table_name: str = "standard") -> int:
    """CTSS score of a lesion fraction in [0, 1]."""
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"lesion fraction must lie in [0, 1], got {fraction}")
    intervals = table(table_name)
    if table_name == "standard":
        if fraction == 0.0:
            return 0
        return next(s for s in range(1, 6) if fraction <= intervals[s][1])
    return next((s for s in range(6) if fraction < intervals[s][1]), 5)
