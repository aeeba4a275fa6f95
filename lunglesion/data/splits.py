"""Deterministic train/validation splits, recorded in the model card."""

from __future__ import annotations

import numpy as np


def split_stems(stems: list[str], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Shuffle ``stems`` with ``seed`` and hold out ``val_fraction`` of them (at least one)."""
    order = np.random.default_rng(seed).permutation(len(stems))
    n_val = max(1, round(len(stems) * val_fraction))
    val = sorted((stems[i] for i in order[:n_val]), key=_natural)
    train = sorted((stems[i] for i in order[n_val:]), key=_natural)
    return train, val


def _natural(stem: str) -> tuple[int, int | str]:
    return (0, int(stem)) if stem.isdigit() else (1, stem)
