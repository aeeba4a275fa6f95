"""Checks on an image's content before processing: dimension, non-emptiness, CT in Hounsfield units."""

from __future__ import annotations

import numpy as np

from lunglesion.errors import DimensionError, EmptyInputError, NotCTError
from lunglesion.image import Image

AIR_HU = -900.0
"""Voxels below this are air/lung in a CT in HU; MR, PET and normalised images have none."""
MIN_AIR_FRACTION = 0.001
"""A chest CT (even cropped to the lungs) holds far more air than 0.1 % of its voxels."""
MIN_MAX_HU = -200.0
"""A CT showing a body reaches soft tissue (about +40 HU); an all-air image is not usable."""


def require_nonempty(image: Image, what: str = "image") -> Image:
    """EmptyInputError for a zero-size or constant image; returns the image."""
    if image.array.size == 0:
        raise EmptyInputError(f"{what} holds no voxels (shape {image.array.shape})")
    if np.all(image.array == image.array.flat[0]):
        raise EmptyInputError(f"{what} is empty: every voxel is {image.array.flat[0]}, nothing to process")
    return image


def require_3d(image: Image, what: str = "image") -> Image:
    """DimensionError unless the image is a volume with more than one slice."""
    if image.ndim != 3 or image.array.shape[0] < 2:
        raise DimensionError(f"{what} must be a 3D volume, got shape {image.array.shape}")
    return image


def require_2d(image: Image, what: str = "image") -> Image:
    """DimensionError unless the image is a 2D slice."""
    if image.ndim != 2:
        raise DimensionError(f"{what} must be a 2D slice, got a {image.ndim}D image of shape {image.array.shape}")
    return image


def require_ct(image: Image, what: str = "image") -> Image:
    """NotCTError unless the intensities look like a CT in Hounsfield units.

    Rule: at least 0.1 % of voxels below -900 HU (air, lungs) and a maximum above -200 HU
    (tissue). MR has no negative values near -1000, windowed 8-bit or z-scored images neither.
    """
    require_nonempty(image, what)
    values = image.array
    air_fraction = float(np.count_nonzero(values < AIR_HU)) / values.size
    low, high = float(values.min()), float(values.max())
    if air_fraction < MIN_AIR_FRACTION or high < MIN_MAX_HU:
        raise NotCTError(
            f"{what} does not look like a CT in Hounsfield units (intensities {low:g} to {high:g}, "
            f"{air_fraction:.2%} of voxels below {AIR_HU:g} HU where air should be near -1000 HU); "
            "MR, windowed or normalised images are not supported")
    return image
