"""The learned 2D lung field of the weak labels: painted consolidation, region growth, the bundled model."""

from __future__ import annotations

import numpy as np
import pytest

from lunglesion.data.labelled2d import read_grey_unit, read_label_png
from lunglesion.errors import InputError
from lunglesion.weak.lungfield import slice_regions
from lunglesion.weak.lungfield_training import paint_consolidation, trustworthy
from lunglesion.weak.regions import lung_regions_2d


def _train_slice(shared_data, stem: str) -> tuple[np.ndarray, np.ndarray]:
    folder = shared_data / "covid_semiseg" / "train"
    return read_grey_unit(folder / "images" / f"{stem}.jpg"), read_label_png(folder / "masks" / f"{stem}.png") > 0


def test_painted_consolidation_brightens_only_the_lungs(shared_data) -> None:
    from scipy import ndimage

    image, _ = _train_slice(shared_data, "13")
    lungs = lung_regions_2d(image)
    assert trustworthy(lungs)
    painted = paint_consolidation(image, lungs, np.random.default_rng(0), patches=3)
    near_lungs = ndimage.binary_dilation(lungs > 0, iterations=8)
    assert np.abs(painted - image)[~near_lungs].max() < 0.01  # the body around is untouched (soft edges aside)
    assert (painted >= image - 1e-6).all()  # painting only brightens
    brighter = (painted - image > 0.2) & (lungs > 0)
    assert brighter.sum() > 0.02 * (lungs > 0).sum()


def test_field_grows_each_lung_by_the_pixels_that_connect_to_it(shared_data) -> None:
    from scipy import ndimage

    image, _ = _train_slice(shared_data, "13")
    classical = lung_regions_2d(image)
    field = ndimage.binary_dilation(classical > 0, iterations=4)
    stray = np.zeros_like(field)
    stray[:6, :6] = True  # a blob in the corner, away from both lungs
    grown = lung_regions_2d(image, field=field | stray)
    assert not grown[:6, :6].any()
    for lung in (1, 2):
        assert ((classical == lung) <= (grown == lung)).all()  # nothing is taken from a lung
    new = (grown > 0) & (classical == 0)
    assert new.any() and (new <= field).all()
    distance = [ndimage.distance_transform_edt(classical != lung) for lung in (1, 2)]
    to_first = new & (grown == 1)
    assert (distance[0][to_first] <= distance[1][to_first]).all()  # each pixel went to the nearer lung
    with pytest.raises(InputError, match="shape"):
        lung_regions_2d(image, field=field[:-1])


@pytest.mark.parametrize("stem", ["54", "23", "35"])
def test_learned_field_keeps_dense_consolidation(shared_data, stem) -> None:
    """Slices where the classical regions miss most of the lesion (dense consolidation at the wall)."""
    image, lesion = _train_slice(shared_data, stem)
    classical, learned = slice_regions(image) > 0, slice_regions(image, lung_field="learned") > 0
    share = [(regions & lesion).sum() / lesion.sum() for regions in (classical, learned)]
    assert share[0] < 0.4 and share[1] > share[0] + 0.4


def test_learned_field_stays_in_a_clear_lung(shared_data) -> None:
    image, _ = _train_slice(shared_data, "13")
    classical, learned = slice_regions(image) > 0, slice_regions(image, 3, "learned") > 0
    assert classical.sum() <= learned.sum() < 1.1 * classical.sum()
    with pytest.raises(InputError, match="lung field"):
        slice_regions(image, lung_field="atlas")


def test_weaklabels_cli_reports_the_larger_coverage(shared_data, tmp_path, capsys) -> None:
    from lunglesion.cli.main import main

    shares = []
    for lung_field in ("classical", "learned"):
        out = tmp_path / f"{lung_field}.csv"
        assert main(["weaklabels", str(shared_data / "covid_semiseg" / "train"), "-o", str(out),
                     "--lung-field", lung_field]) == 0
        shares.append(int(capsys.readouterr().out.split("regions of 50 cases\n")[1].split(" %")[0]))
    assert shares[0] < 80 and shares[1] > 90


def test_lung_field_is_not_offered_as_a_lesion_model() -> None:
    from lunglesion.inference.predictor import Predictor
    from lunglesion.registry import get_entry, lesion_models

    offered = {entry.name for entry in lesion_models()}
    assert get_entry("lungfield").task == "lung-field-2d"
    assert "lungfield" not in offered and "rpnet" not in offered and {"dram", "bsnet-light", "dram3d"} <= offered
    with pytest.raises(InputError, match="does not segment lesions"):
        Predictor("lungfield")
