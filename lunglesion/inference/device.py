"""Device choice and the GPU out-of-memory fallback, in one place."""

from __future__ import annotations

import sys

import torch

from lunglesion.errors import LungLesionError


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LungLesionError("device 'cuda' requested but no CUDA GPU is available (use --device cpu or auto)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise LungLesionError(f"unknown device '{device}' (use auto, cpu or cuda)")
    return torch.device(device)


def warn(message: str) -> None:
    """A one-line warning on stderr (the Slicer module shows the same text in its panel)."""
    print(f"warning: {message}", file=sys.stderr)
