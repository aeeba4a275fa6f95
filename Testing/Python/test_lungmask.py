"""Classical lung mask on real CT volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lunglesion.errors import DimensionError, NotCTError
from lunglesion.image import Image
from lunglesion.lungmask import LEFT_LUNG, RIGHT_LUNG, lung_volumes_ml, segment_lungs
from lunglesion.metrics import dice
from lunglesion.io.convert import from_sitk


def _read(path: Path) -> Image:
    return from_sitk(sitk.ReadImage(str(path)))



def test_lung1_two_lungs_with_the_nodule_inside(shared_data: Path) -> None:
    image = _read(shared_data / "chest_ct/lung1_image.nrrd")
    nodule = _read(shared_data / "chest_ct/lung1_label.nrrd").array > 0
    lungs = segment_lungs(image)
    assert lungs.same_geometry(image) and lungs.array.dtype == np.uint8
    assert set(np.unique(lungs.array)) == {0, RIGHT_LUNG, LEFT_LUNG}
    volumes = lung_volumes_ml(lungs)  # measured: right 1775 ml, left 1099 ml (240 mm of chest)
    assert 1200 < volumes["right_lung"] < 2600 and 700 < volumes["left_lung"] < 2000
    assert volumes["lungs"] == pytest.approx(volumes["right_lung"] + volumes["left_lung"])
    # LPS: +x is the patient's left, so the right lung has the smaller physical x.
    xs = {k: lungs.index_to_physical(np.array([np.nonzero(lungs.array == k)[2].mean(), 0, 0]))[0]
          for k in (RIGHT_LUNG, LEFT_LUNG)}
    assert xs[RIGHT_LUNG] < xs[LEFT_LUNG]
    assert np.count_nonzero(lungs.array[nodule] > 0) >= 0.99 * nodule.sum()
    top = lungs.array[40]  # trachea level: the airway (centre of the slice) is not lung
    trachea = (image.array[40] < -900) & (np.arange(512)[None, :] > 230) & (np.arange(512)[None, :] < 290)
    assert trachea.sum() > 100 and np.count_nonzero(top[trachea]) < 0.05 * trachea.sum()


def test_totalseg_lungs_match_lobe_labels(shared_data: Path) -> None:
    ct = _read(shared_data / "totalseg/ct.nii.gz")  # abdomen with the lung bases, direction diag(-1,-1,1)
    seg = _read(shared_data / "totalseg/ct_seg_total_v1.nii.gz").array
    lungs = segment_lungs(ct).array
    # total_v1: 13, 14 left lobes; 15, 16, 17 right lobes. Measured Dice 0.968 (right), 0.956 (left).
    assert dice(lungs == RIGHT_LUNG, np.isin(seg, [15, 16, 17])) > 0.93
    assert dice(lungs == LEFT_LUNG, np.isin(seg, [13, 14])) > 0.92


def test_rejects_non_ct_and_2d(shared_data: Path) -> None:
    with pytest.raises(NotCTError):
        segment_lungs(_read(shared_data / "mr/brain1_image.nrrd"))
    with pytest.raises(DimensionError):
        segment_lungs(Image(array=np.zeros((8, 8)), spacing=(1, 1), origin=(0, 0), direction=np.eye(2)))
