"""Slice preparation shared by few-shot training and inference.

Intensity normalisation decided by the image kind, axial reorientation of volumes
(patient space), the region of interest around the support label, and resizing to the
network's square input.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lunglesion.image import Image

CT_CLIP = (-1024.0, 3072.0)


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


def axial_axes(direction: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Array-axis permutation and flips that bring a [z, y, x] array to (S, P, L) order.

    The image axis (i, j, k) closest to each patient axis is picked from ``direction``
    (its columns are the axis directions in LPS); flips make indices increase toward
    S, P and L, so slices of any volume are axial and displayed the same way.
    """
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    image_axis_of = [int(np.argmax(np.abs(d[row]))) for row in (2, 1, 0)]  # patient S, P, L
    if len(set(image_axis_of)) != 3:  # strongly oblique: fall back to the stored order
        image_axis_of = [2, 1, 0]
    perm = tuple(2 - ax for ax in image_axis_of)  # image axis i,j,k -> array axis 2,1,0
    flips = tuple(bool(d[row, ax] < 0) for row, ax in zip((2, 1, 0), image_axis_of))
    return perm, flips


def to_axial(array: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """A [z, y, x] volume array reordered so that axis 0 runs inferior to superior."""
    perm, flips = axial_axes(direction)
    out = np.transpose(array, perm)
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis)
    return out


def from_axial(array: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_axial`: back to the volume's stored array order."""
    perm, flips = axial_axes(direction)
    for axis, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis)
    return np.ascontiguousarray(np.transpose(array, np.argsort(perm)))


def axial_arrays(image: Image) -> np.ndarray:
    """The image array as a stack of axial slices [z, y, x] (a 2D image is one slice)."""
    if image.ndim == 2:
        return image.array[None]
    return to_axial(image.array, image.direction)


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
