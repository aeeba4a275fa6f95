"""Exact-geometry reading and writing of images, labelmaps, float volumes and Slicer segmentations."""

from lunglesion.io.atomic import atomic_output
from lunglesion.io.convert import from_sitk, to_sitk
from lunglesion.io.readers import read_image, read_labelmap
from lunglesion.io.seg_nrrd import read_seg_nrrd, read_segment_names, write_seg_nrrd
from lunglesion.io.writers import write_float_volume, write_image, write_labelmap

__all__ = [
    "atomic_output",
    "from_sitk",
    "read_image",
    "read_labelmap",
    "read_seg_nrrd",
    "read_segment_names",
    "to_sitk",
    "write_float_volume",
    "write_image",
    "write_labelmap",
    "write_seg_nrrd",
]
