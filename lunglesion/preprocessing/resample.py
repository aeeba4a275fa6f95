"""Resampling that preserves physical geometry (SimpleITK inside, oblique directions included)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lunglesion.errors import InputError
from lunglesion.image import Image
from lunglesion.io.convert import from_sitk, to_sitk

_INTERPOLATORS = {0: sitk.sitkNearestNeighbor, 1: sitk.sitkLinear, 3: sitk.sitkBSpline}


def _interpolator(order: int) -> int:
    if order not in _INTERPOLATORS:
        raise InputError(f"interpolation order must be 0 (nearest), 1 (linear) or 3 (B-spline), got {order}")
    return _INTERPOLATORS[order]


def resample_image(image: Image, spacing: tuple[float, ...], order: int = 1) -> Image:
    """Resample to a new voxel spacing (x, y, z mm) over the same physical extent.

    Origin and direction are kept; the new size covers the old field of view. ``order`` 0 is
    for labelmaps (dtype kept), 1 and 3 for intensities. Voxels outside the input become 0.
    """
    if len(spacing) != image.ndim or min(spacing) <= 0:
        raise InputError(f"spacing must be {image.ndim} positive values, got {tuple(spacing)}")
    old_size = np.array(image.array.shape[::-1], dtype=np.float64)
    size = np.maximum(1, np.round(old_size * np.array(image.spacing) / np.array(spacing))).astype(int)
    ref = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    ref.SetSpacing(tuple(float(s) for s in spacing))
    ref.SetOrigin(image.origin)
    ref.SetDirection(tuple(image.direction.ravel()))
    return _resample(image, ref, order)


def resample_to_reference(image: Image, reference: Image, order: int = 1) -> Image:
    """Resample ``image`` onto the voxel grid of ``reference`` (shape, spacing, origin, direction)."""
    if image.ndim != reference.ndim:
        raise InputError(f"cannot resample a {image.ndim}D image onto a {reference.ndim}D reference")
    ref = sitk.Image([int(s) for s in reference.array.shape[::-1]], sitk.sitkUInt8)
    ref.SetSpacing(reference.spacing)
    ref.SetOrigin(reference.origin)
    ref.SetDirection(tuple(reference.direction.ravel()))
    return _resample(image, ref, order)


def _resample(image: Image, ref: sitk.Image, order: int) -> Image:
    src = to_sitk(image)
    pixel = src.GetPixelID() if order == 0 else sitk.sitkFloat32
    out = from_sitk(sitk.Resample(src, ref, sitk.Transform(), _interpolator(order), 0.0, pixel))
    out.metadata = dict(image.metadata)
    return out
