"""Writing images, labelmaps and float volumes atomically, in any format SimpleITK knows by extension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lunglesion.errors import InputError
from lunglesion.image import Image
from lunglesion.io.atomic import atomic_output
from lunglesion.io.convert import label_array, to_sitk
from lunglesion.io.seg_nrrd import write_seg_nrrd
from lunglesion.terminology import SegmentInfo, segment_for_structure

_COMPRESSED = {".nrrd", ".mha", ".nhdr", ".gz"}


def _write(image: sitk.Image, path: Path) -> None:
    """Atomic SimpleITK write; the extension picks the format (compressed where it can be)."""
    if path.suffix.lower() in {".mhd", ".hdr", ".nhdr"}:
        raise InputError(f"{path.suffix} writes a second data file and cannot be written atomically; "
                         "use .mha, .nrrd or .nii.gz")
    with atomic_output(path) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=path.suffix.lower() in _COMPRESSED)
        except RuntimeError:
            raise InputError(f"could not write {path}: unsupported file type or pixel type") from None


def write_image(image: Image, path: Path | str) -> None:
    """Write ``image`` with its exact geometry; the format follows the file extension."""
    _write(to_sitk(image), Path(path))


def write_labelmap(image: Image, path: Path | str, segments: list[SegmentInfo] | None = None) -> None:
    """Write integer labels as uint8/uint16; ``.seg.nrrd`` gives a Slicer segmentation.

    For ``.seg.nrrd`` without ``segments`` each label value ``v`` becomes segment ``Label_v``.
    """
    path = Path(path)
    labels = label_array(image.array, source=f"labelmap for {path}")
    if path.name.lower().endswith(".seg.nrrd"):
        if segments is None:
            values = sorted(set(np.unique(labels).tolist()) - {0})
            segments = [segment_for_structure(f"Label_{v}", v) for v in values]
        write_seg_nrrd(image.with_array(labels), path, segments)
        return
    _write(to_sitk(image.with_array(labels)), path)


def write_float_volume(image: Image, path: Path | str) -> None:
    """Write a probability / soft mask as float32 with the image's geometry."""
    array = np.asarray(image.array, dtype=np.float32)
    _write(to_sitk(image.with_array(array)), Path(path))
