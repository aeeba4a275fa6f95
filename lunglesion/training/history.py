"""Training history: a CSV log appended each epoch and a PNG of the curves."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BOOKKEEPING = ("epoch", "lr", "cpu_s", "cpu_minutes")  # logged, but not curves


class CsvHistory:
    """Append-only per-epoch log; on resume, rows after the resumed epoch are dropped."""

    def __init__(self, path: Path, resume_epoch: int | None = None) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []
        if resume_epoch is not None and self.path.exists():
            with self.path.open() as f:
                self.rows = [{k: float(v) for k, v in r.items() if v != ""}
                             for r in csv.DictReader(f) if int(float(r["epoch"])) <= resume_epoch]
        self._rewrite()

    def append(self, row: dict[str, float]) -> None:
        """Add one epoch's figures (must contain ``epoch``) and rewrite the file."""
        self.rows.append(dict(row))
        self._rewrite()

    def _rewrite(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys or ["epoch"])
            writer.writeheader()
            writer.writerows(self.rows)

    def plot(self, png: Path, title: str = "training curves") -> None:
        """Losses on the left axis, validation metrics (keys starting ``val_``) on the right;
        bookkeeping columns (learning rate, CPU time) are not drawn."""
        if not self.rows:
            return
        fig, ax = plt.subplots(figsize=(7, 4))
        metric_ax = ax.twinx()
        keys = list(dict.fromkeys(k for r in self.rows for k in r if k not in BOOKKEEPING))
        for key in keys:
            points = [(r["epoch"], r[key]) for r in self.rows if key in r]  # validation: every few epochs
            target = metric_ax if key.startswith("val_") else ax
            target.plot([e for e, _ in points], [v for _, v in points], label=key,
                        linestyle="--" if target is metric_ax else "-", marker="o" if target is metric_ax else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        metric_ax.set_ylabel("validation metric")
        lines = ax.get_legend_handles_labels()
        mlines = metric_ax.get_legend_handles_labels()
        ax.legend(lines[0] + mlines[0], lines[1] + mlines[1], fontsize=8, loc="center right")
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(png, dpi=100)
        plt.close(fig)
