"""DICOM series folders and single files, compared with SimpleITK's own series reading."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from io_asserts import assert_same_as_sitk, assert_same_image
from lunglesion.errors import EmptyInputError, InputError
from lunglesion.io import read_image, write_image


def _sitk_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


@pytest.fixture(scope="module")
def series_dir(shared_data: Path) -> Path:
    return shared_data / "dicom" / "totalseg_ct_series"


def test_series_equals_simpleitk(series_dir: Path) -> None:
    image = read_image(series_dir)
    assert image.array.shape == (20, 512, 512)
    assert_same_as_sitk(image, _sitk_series(series_dir))
    assert image.metadata["0008|0060"].strip() == "CT"


def test_series_is_in_hounsfield_units(series_dir: Path) -> None:
    """Stored values are unsigned with intercept -1024: air must come out near -1000 HU."""
    image = read_image(series_dir)
    assert image.metadata["0028|1052"].strip() == "-1024"
    assert image.array.min() == -1024 and np.mean(image.array < -900) > 0.3


def test_shuffled_file_names_give_same_volume(series_dir: Path, tmp_path: Path) -> None:
    files = sorted(series_dir.iterdir())
    names = [f"slice_{i:03d}.dcm" for i in range(len(files))]
    random.Random(7).shuffle(names)
    for source, name in zip(files, names):
        shutil.copy(source, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a DICOM file")
    by_name = sitk.ReadImage(sorted(str(p) for p in tmp_path.glob("*.dcm")))
    expected = read_image(series_dir)
    shuffled = read_image(tmp_path)
    assert_same_image(shuffled, expected)
    # the name order really is scrambled: reading by name would give other voxels
    assert not np.array_equal(sitk.GetArrayFromImage(by_name), expected.array)


def test_largest_series_is_chosen(shared_data: Path, series_dir: Path, tmp_path: Path) -> None:
    for source in sorted(series_dir.iterdir()):
        shutil.copy(source, tmp_path / source.name)
    for source in sorted((shared_data / "dicom" / "lungmask_slices").iterdir()):
        shutil.copy(source, tmp_path / f"other_{source.name}")
    assert len(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(tmp_path))) == 2
    assert_same_image(read_image(tmp_path), read_image(series_dir))


@pytest.mark.parametrize("name", ["0.dcm", "1.dcm"])
def test_single_dicom_file(shared_data: Path, name: str, tmp_path: Path) -> None:
    path = shared_data / "dicom" / "lungmask_slices" / name
    image = read_image(path)
    assert image.array.shape == (1, 512, 512)
    assert_same_as_sitk(image, sitk.ReadImage(str(path)))
    write_image(image, tmp_path / "slice.nii.gz")
    assert_same_image(read_image(tmp_path / "slice.nii.gz"), image)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(EmptyInputError, match="folder is empty"):
        read_image(tmp_path)


def test_folder_without_dicom(shared_data: Path, tmp_path: Path) -> None:
    shutil.copy(shared_data / "totalseg" / "class_maps.json", tmp_path)
    with pytest.raises(InputError, match="no DICOM series found"):
        read_image(tmp_path)
