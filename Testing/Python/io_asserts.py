"""Assertions shared by the I/O tests: exact geometry and voxels against SimpleITK."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lunglesion.image import Image

GEOMETRY_ATOL = 1e-6


def assert_geometry(image: Image, spacing, origin, direction, atol: float = GEOMETRY_ATOL) -> None:
    """Spacing, origin and direction equal within ``atol`` (mm / cosine)."""
    np.testing.assert_allclose(image.spacing, spacing, rtol=0, atol=atol)
    np.testing.assert_allclose(image.origin, origin, rtol=0, atol=atol)
    np.testing.assert_allclose(image.direction, np.asarray(direction).reshape(image.ndim, image.ndim),
                               rtol=0, atol=atol)


def assert_same_as_sitk(image: Image, reference: sitk.Image) -> None:
    """Geometry within 1e-6 and voxels exactly equal to a SimpleITK image."""
    assert_geometry(image, reference.GetSpacing(), reference.GetOrigin(), reference.GetDirection())
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(reference))


def assert_same_image(image: Image, expected: Image) -> None:
    """Geometry within 1e-6 and voxels exactly equal."""
    assert_geometry(image, expected.spacing, expected.origin, expected.direction)
    assert image.array.shape == expected.array.shape
    np.testing.assert_array_equal(image.array, expected.array)
