"""Content checks: CT in Hounsfield units vs MR / windowed images, dimension, emptiness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lunglesion.errors import DimensionError, EmptyInputError, NotCTError
from lunglesion.image import Image
from lunglesion.io import read_image
from lunglesion.io.validation import require_2d, require_3d, require_ct, require_nonempty

CT_INPUTS = ["chest_ct/lung1_image.nrrd", "totalseg/ct.nii.gz", "totalseg/ct_sm.nii.gz",
             "dicom/totalseg_ct_series", "dicom/lungmask_slices/0.dcm"]
NOT_CT_INPUTS = ["mr/brain1_image.nrrd", "mr/breast1_image.nrrd", "totalseg/mr_sm.nii.gz"]


@pytest.mark.parametrize("name", CT_INPUTS)
def test_ct_is_accepted(shared_data: Path, name: str) -> None:
    image = read_image(shared_data / name)
    assert require_ct(image) is image


@pytest.mark.parametrize("name", NOT_CT_INPUTS)
def test_mr_is_refused(shared_data: Path, name: str) -> None:
    with pytest.raises(NotCTError, match="does not look like a CT in Hounsfield units"):
        require_ct(read_image(shared_data / name))


def test_lung_crop_of_ct_is_accepted(shared_data: Path) -> None:
    ct = read_image(shared_data / "chest_ct" / "lung1_image.nrrd")
    lungs = Image(array=ct.array[20:28, 200:330, 120:250], spacing=ct.spacing, origin=ct.origin,
                  direction=ct.direction)
    assert np.mean(lungs.array < -900) < 0.5  # mostly lung parenchyma and tissue, little free air
    require_ct(lungs)


def test_windowed_8bit_slice_is_refused(shared_data: Path) -> None:
    jpg = sorted((shared_data / "covid_semiseg" / "train" / "images").glob("*.jpg"))[0]
    with pytest.raises(NotCTError):
        require_ct(read_image(jpg))


def test_raw_stored_values_without_intercept_are_refused(shared_data: Path) -> None:
    """The DICOM series' stored values (HU + 1024) are not Hounsfield units."""
    ct = read_image(shared_data / "dicom" / "totalseg_ct_series")
    with pytest.raises(NotCTError):
        require_ct(ct.with_array(ct.array.astype(np.int32) + 1024))


def test_dimensions(shared_data: Path) -> None:
    volume = read_image(shared_data / "totalseg" / "ct_sm.nii.gz")
    single_slice = read_image(shared_data / "dicom" / "lungmask_slices" / "0.dcm")
    jpg = read_image(sorted((shared_data / "covid_semiseg" / "train" / "images").glob("*.jpg"))[0])
    assert require_3d(volume) is volume and require_2d(jpg) is jpg
    with pytest.raises(DimensionError, match="must be a 3D volume"):
        require_3d(jpg)
    with pytest.raises(DimensionError, match="must be a 3D volume"):
        require_3d(single_slice)
    with pytest.raises(DimensionError, match="must be a 2D slice"):
        require_2d(volume)


def test_empty_and_constant(shared_data: Path) -> None:
    volume = read_image(shared_data / "totalseg" / "ct_sm.nii.gz")
    assert require_nonempty(volume) is volume
    zero = Image(array=np.zeros((0, 4, 4), np.int16), spacing=(1, 1, 1), origin=(0, 0, 0), direction=np.eye(3))
    with pytest.raises(EmptyInputError, match="no voxels"):
        require_nonempty(zero)
    with pytest.raises(EmptyInputError, match="every voxel is"):
        require_ct(volume.with_array(np.full_like(volume.array, -1000)))
