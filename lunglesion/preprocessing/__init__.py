"""Preprocessing: intensity windowing, resampling, lung bounding-box crop, axial slicing."""

from lunglesion.preprocessing.crop import crop_to_mask_bbox, paste_into
from lunglesion.preprocessing.resample import resample_image, resample_to_reference
from lunglesion.preprocessing.slicing import AxialView, axial_view
from lunglesion.preprocessing.windowing import (
    COVID_SEMISEG_WINDOW,
    hu_to_unit,
    to_network_domain,
    uint8_to_unit,
    zscore_to_unit,
)

__all__ = [
    "COVID_SEMISEG_WINDOW", "AxialView", "axial_view", "crop_to_mask_bbox", "hu_to_unit",
    "paste_into", "resample_image", "resample_to_reference", "to_network_domain",
    "uint8_to_unit", "zscore_to_unit",
]
