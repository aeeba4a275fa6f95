"""Conversion between :class:`lunglesion.image.Image` and ``SimpleITK.Image`` (no copies of geometry rules)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lunglesion.errors import DimensionError, InputError
from lunglesion.image import Image


def from_sitk(image: sitk.Image, source: str = "image") -> Image:
    """A SimpleITK scalar 2D/3D image as an :class:`Image` (metadata keys copied as strings)."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{source} has {image.GetNumberOfComponentsPerPixel()} values per voxel; "
                         "a scalar (grey-level) image is needed")
    if image.GetDimension() not in (2, 3):
        raise DimensionError(f"{source} is {image.GetDimension()}D; only 2D and 3D images are supported")
    ndim = image.GetDimension()
    metadata = {key: image.GetMetaData(key) for key in image.GetMetaDataKeys()}
    return Image(array=sitk.GetArrayFromImage(image), spacing=image.GetSpacing(), origin=image.GetOrigin(),
                 direction=np.asarray(image.GetDirection()).reshape(ndim, ndim), metadata=metadata)


def to_sitk(image: Image, with_metadata: bool = False) -> sitk.Image:
    """An :class:`Image` as a SimpleITK image with identical geometry."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(image.array), isVector=False)
    out.SetSpacing(image.spacing)
    out.SetOrigin(image.origin)
    out.SetDirection(tuple(float(v) for v in image.direction.ravel()))
    if with_metadata:
        for key, value in image.metadata.items():
            out.SetMetaData(key, str(value))
    return out


def label_array(array: np.ndarray, source: str = "labelmap") -> np.ndarray:
    """Integer label voxels as uint8 (values <= 255) or uint16; other values raise InputError."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError(f"{source} holds non-integer values; a labelmap needs integer labels")
    if array.size == 0:
        return array.astype(np.uint8)
    low, high = array.min(), array.max()
    if low < 0 or high > np.iinfo(np.uint16).max:
        raise InputError(f"{source} holds label values from {low} to {high}; labels must be 0..65535")
    return array.astype(np.uint8 if high <= np.iinfo(np.uint8).max else np.uint16)
