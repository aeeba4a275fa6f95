"""DICOM series folders through SimpleITK/GDCM, slices sorted by patient position.

GDCM applies Rescale Slope/Intercept, so CT voxels come out in Hounsfield units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image
from lunglesion.io.convert import from_sitk

_POSITION = "0020|0032"
_ORIENTATION = "0020|0037"


def _header(path: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.SetImageIO("GDCMImageIO")
    reader.ReadImageInformation()
    return reader


def _floats(reader: sitk.ImageFileReader, tag: str, count: int, path: str) -> np.ndarray:
    if not reader.HasMetaDataKey(tag):
        raise InputError(f"DICOM file {path} has no tag {tag}; cannot place it in the series")
    values = np.array([float(v) for v in reader.GetMetaData(tag).strip().split("\\")])
    if values.size != count:
        raise InputError(f"DICOM file {path} has a malformed tag {tag}")
    return values


def sort_by_position(files: list[str]) -> list[str]:
    """Files of one series ordered by Image Position (Patient) projected on the slice normal."""
    first = _header(files[0])
    orientation = _floats(first, _ORIENTATION, 6, files[0])
    normal = np.cross(orientation[:3], orientation[3:])
    keyed = [(float(np.dot(_floats(_header(f), _POSITION, 3, f), normal)), f) for f in files]
    keyed.sort(key=lambda item: item[0])
    positions = np.array([k for k, _ in keyed])
    if positions.size > 1 and np.any(np.diff(positions) < 1e-4):
        raise InputError("DICOM series has several slices at the same position (mixed acquisitions?)")
    return [f for _, f in keyed]


def read_dicom_folder(folder: Path) -> Image:
    """The series with the most slices in ``folder``, in Hounsfield units for CT."""
    if not any(p.is_file() for p in folder.iterdir()):
        raise EmptyInputError(f"folder is empty (no files): {folder}")
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError(f"no DICOM series found in folder: {folder}")
    series = [sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series_ids]
    files = sort_by_position(list(max(series, key=len)))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.SetImageIO("GDCMImageIO")
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"could not read the DICOM series in {folder}: {_reason(exc)}") from None
    result = from_sitk(image, source=str(folder))
    result.metadata = {key: reader.GetMetaData(0, key) for key in reader.GetMetaDataKeys(0)}
    return result


def _reason(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
