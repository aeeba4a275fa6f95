"""Slice preparation shared by few-shot training and inference.

Intensity normalisation decided by the image kind, axial slices of volumes (patient space,
through :mod:`lunglesion.preprocessing.slicing`), the region of interest around the support
label, and resizing to the network's square input.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lunglesion.image import Image
from lunglesion.preprocessing.slicing import axial_view

CT_CLIP = (-1024.0, 3072.0)
LAYOUT = "radiological"  # the layout the registered few-shot weights were trained in


def image_kind(array: np.ndarray) -> str:
    """``"8bit"`` (uint8 slices), ``"ct"`` (Hounsfield units) or ``"minmax"`` (MR and the rest)."""
    if array.dtype == np.uint8:
        return "8bit"
    if array.size and float(array.min()) <= -500 and float(array.max()) >= 100:
        return "ct"
    return "minmax"


def normalise_intensity(array: np.ndarray, kind: str | None = None) -> np.ndarray:
    """Map intensities to [-1, 1] as RP-Net does.

    CT: clip to [-1024, 3072] HU and at the 99.5th percentile; MR and other scalar images:
    volume min/max; 8-bit slices: divided by 255.
    """
    kind = kind or image_kind(array)
    a = array.astype(np.float32)
    if kind == "8bit":
        return a / 127.5 - 1.0
    if kind == "ct":
        high = min(CT_CLIP[1], float(np.percentile(a[::4, ::4] if a.ndim == 2 else a[:, ::4, ::4], 99.5)))
        low = CT_CLIP[0]
    else:
        low, high = float(a.min()), float(a.max())
    high = max(high, low + 1e-3)
    return np.clip((a - low) / (high - low), 0.0, 1.0) * 2.0 - 1.0


def axial_arrays(image: Image) -> np.ndarray:
    """The image array as a stack of axial slices (a 2D image is one slice).

    Volumes use :func:`lunglesion.preprocessing.slicing.axial_view` in the radiological layout.
    """
    if image.ndim == 2:
        return image.array[None]
    return axial_view(image, LAYOUT).array


def roi_box(mask: np.ndarray, factor: float = 4.0, min_side: int = 48,
            full_fraction: float = 0.75) -> tuple[int, int, int, int]:
    """Square box ``(y0, y1, x0, x1)`` around the label of a 2D ``mask``, ``factor`` times its size.

    The whole slice is returned when the box would cover most of it or the mask is empty.
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return 0, h, 0, w
    side = int(max(min_side, factor * max(np.ptp(ys) + 1, np.ptp(xs) + 1)))
    if side >= full_fraction * min(h, w):
        return 0, h, 0, w
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    return y0, y0 + side, x0, x0 + side


def resize_stack(array: np.ndarray | torch.Tensor, size: int | tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """(N, H, W) slices resized to ``size`` (square int or (h, w)); masks use ``mode="area"``."""
    t = torch.as_tensor(np.ascontiguousarray(array) if isinstance(array, np.ndarray) else array).float()
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(t.shape[-2:]) == size:
        return t
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t.unsqueeze(1), size=size, mode=mode, **kwargs).squeeze(1)
