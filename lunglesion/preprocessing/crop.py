"""Crop a volume to a mask's bounding box (with a margin in mm) and paste results back."""

from __future__ import annotations

import numpy as np

from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image


def crop_to_mask_bbox(image: Image, mask: np.ndarray | Image,
                      margin_mm: float = 0.0) -> tuple[Image, tuple[slice, ...]]:
    """Crop ``image`` to the bounding box of ``mask`` > 0 grown by ``margin_mm`` on each side.

    Returns the cropped image (origin moved to the first kept voxel, so physical positions
    are unchanged) and the array slices (``[z, y, x]`` order) for :func:`paste_into`.
    """
    m = np.asarray(mask.array if isinstance(mask, Image) else mask)
    if m.shape != image.array.shape:
        raise InputError(f"mask shape {m.shape} differs from image shape {image.array.shape}")
    if not m.any():
        raise EmptyInputError("cannot crop to an empty mask")
    spacing_zyx = np.array(image.spacing[::-1])
    margin = np.ceil(max(margin_mm, 0.0) / spacing_zyx - 1e-6).astype(int)
    slices = []
    for axis in range(m.ndim):
        other = tuple(a for a in range(m.ndim) if a != axis)
        idx = np.nonzero(np.any(m, axis=other))[0]
        lo = max(int(idx[0]) - int(margin[axis]), 0)
        hi = min(int(idx[-1]) + int(margin[axis]) + 1, m.shape[axis])
        slices.append(slice(lo, hi))
    start_xyz = np.array([s.start for s in slices][::-1], dtype=np.float64)
    cropped = Image(array=image.array[tuple(slices)].copy(), spacing=image.spacing,
                    origin=tuple(image.index_to_physical(start_xyz)), direction=image.direction,
                    metadata=dict(image.metadata))
    return cropped, tuple(slices)


def paste_into(full: Image, cropped: Image | np.ndarray, slices: tuple[slice, ...]) -> Image:
    """A copy of ``full`` with ``cropped`` written at ``slices`` (as returned by the crop)."""
    values = np.asarray(cropped.array if isinstance(cropped, Image) else cropped)
    region = full.array[slices]
    if values.shape != region.shape:
        raise InputError(f"cropped array {values.shape} does not fit the region {region.shape}")
    array = full.array.copy()
    array[slices] = values
    return full.with_array(array)
