"""Reading images and labelmaps from any supported file or a DICOM folder, with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image, image_2d
from lunglesion.io.convert import from_sitk, label_array
from lunglesion.io.dicom import read_dicom_folder
from lunglesion.io.nifti import check_nifti_complete
from lunglesion.io.seg_nrrd import read_seg_nrrd

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
_SEGMENT_KEY = "Segment0_ID"


def _check_path(path: Path | str) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise EmptyInputError(f"file is empty (0 bytes): {path}")
    return path


def _unreadable(path: Path) -> InputError:
    return InputError(f"could not read {path} as an image (corrupt or unsupported file)")


def _read_raster(path: Path, grey: bool) -> Image:
    """A 2D PNG/JPG/BMP; colour is converted to grey (ITU-R 601 luma) when ``grey`` is set."""
    try:
        with PILImage.open(path) as pil:
            if pil.mode in {"RGB", "RGBA", "LA", "CMYK", "YCbCr"} or (pil.mode == "P" and grey):
                pil = pil.convert("L")
            array = np.asarray(pil)
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise _unreadable(path) from None
    if array.ndim != 2:
        raise InputError(f"{path} has {array.shape[-1]} channels per pixel that could not be converted to grey")
    return image_2d(array)


def _read_file(path: Path) -> Image:
    if path.name.lower().endswith((".nii", ".nii.gz")):
        check_nifti_complete(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise _unreadable(path) from None
    return from_sitk(image, source=str(path))


def _require_voxels(image: Image, path: Path) -> Image:
    if image.array.size == 0:
        raise EmptyInputError(f"image holds no voxels (size {image.array.shape}): {path}")
    return image


def read_image(path: Path | str) -> Image:
    """Read NIfTI, NRRD, MHA/MHD, a DICOM file or series folder, or a 2D PNG/JPG as an Image.

    DICOM folders give the series with the most slices, sorted by patient position, in HU.
    Colour 2D images become grey with spacing (1, 1). Geometry equals SimpleITK's.
    """
    path = _check_path(path)
    if path.is_dir():
        image = read_dicom_folder(path)
    elif path.suffix.lower() in RASTER_SUFFIXES:
        image = _read_raster(path, grey=True)
    else:
        image = _read_file(path)
    return _require_voxels(image, path)


def _is_segmentation(path: Path) -> bool:
    if path.name.lower().endswith(".seg.nrrd"):
        return True
    if path.suffix.lower() not in {".nrrd", ".nhdr"}:
        return False
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise _unreadable(path) from None
    return reader.HasMetaDataKey(_SEGMENT_KEY)


def read_labelmap(path: Path | str) -> Image:
    """Read an integer labelmap (uint8/uint16); a Slicer .seg.nrrd is merged into one labelmap.

    Segments of a .seg.nrrd keep their LabelValue (renumbered 1..N only where layers reuse a
    value); :func:`lunglesion.io.seg_nrrd.read_seg_nrrd` also returns their names and codes.
    """
    path = _check_path(path)
    if path.is_dir():
        image = read_dicom_folder(path)
    elif path.suffix.lower() in RASTER_SUFFIXES:
        image = _read_raster(path, grey=False)
    elif _is_segmentation(path):
        image = read_seg_nrrd(path)[0]
    else:
        image = _read_file(path)
    _require_voxels(image, path)
    return image.with_array(label_array(image.array, source=str(path)))
