"""Resumable checkpoints: model, optimiser, scheduler, epoch, RNG states and best metric."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lunglesion.io.atomic import atomic_output


def save_checkpoint(path: Path, *, epoch: int, model: torch.nn.Module,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    schedulers: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write everything needed to resume training after ``epoch`` (atomically)."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in (optimizers or {}).items()},
        "schedulers": {k: s.state_dict() for k, s in (schedulers or {}).items()},
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        },
        "extra": extra or {},
    }
    with atomic_output(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, *, model: torch.nn.Module,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    schedulers: dict[str, Any] | None = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Restore a checkpoint in place; returns ``{"epoch": ..., "extra": ...}``."""
    state = torch.load(Path(path), map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    for key, opt in (optimizers or {}).items():
        opt.load_state_dict(state["optimizers"][key])
    for key, sched in (schedulers or {}).items():
        sched.load_state_dict(state["schedulers"][key])
    if restore_rng:
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
    return {"epoch": state["epoch"], "extra": state.get("extra", {})}


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so that a run can be reproduced."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
