"""Soft Mask pipeline on real data: hard-mask recovery, band locality, monotonicity, partial volume."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage

from lunglesion.errors import InputError
from lunglesion.io import read_image
from lunglesion.metrics import dice
from lunglesion.softmask import make_soft_mask, soft_mask_array


@pytest.fixture(scope="module")
def lidc(shared_data):
    data = np.load(shared_data / "lidc_slices" / "lidc_108slices.npz")
    return data["images"][::6].astype(np.float32), data["masks"][::6]


def test_lidc_threshold_gives_hard_mask_and_changes_only_the_band(lidc):
    for image, mask in zip(*lidc):
        soft = soft_mask_array(image, mask, domain="zscore", band=2)
        assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
        assert dice(soft >= 0.5, mask) >= 0.95
        band = ndimage.binary_dilation(mask, iterations=2) & ~ndimage.binary_erosion(mask, iterations=2)
        np.testing.assert_array_equal(soft[~band], mask[~band].astype(np.float32))
        assert (np.abs(soft - mask)[band] > 1e-3).any(), "the soft mask should differ from the hard one at edges"


def test_monotone_in_intensity_within_each_ring(lidc):
    cross = ndimage.generate_binary_structure(2, 1)
    for image, mask in zip(*lidc):
        soft = soft_mask_array(image, mask, domain="zscore", band=2)
        labels, n = ndimage.label(mask, cross)
        near = [ndimage.binary_dilation(labels == k, cross) for k in range(1, n + 1)]
        shared = np.sum(near, axis=0) > 1
        for k in range(1, n + 1):
            lesion = labels == k
            inner = lesion & ~ndimage.binary_erosion(lesion, cross)
            outer = near[k - 1] & ~mask & ~shared
            for ring in (inner & (image != 0), outer & (image != 0)):
                order = np.argsort(image[ring], kind="stable")
                assert np.all(np.diff(soft[ring][order]) >= -1e-6)


def test_soft_mask_estimates_partial_volume_better_than_hard_mask(lung1):
    """A nodule rendered with exact area fractions into real lung parenchyma of lung1."""
    ct = lung1[0].array[33].astype(np.float32)
    ss = 8
    yy, xx = np.mgrid[0:64 * ss, 0:64 * ss] / ss
    fraction = (((yy - 32.3) ** 2 + (xx - 31.7) ** 2 / 1.3) < 9.3**2).reshape(64, ss, 64, ss).mean((1, 3))
    tested = 0
    for cy in range(100, 400, 16):
        for cx in range(60, 460, 16):
            background = ct[cy - 32:cy + 32, cx - 32:cx + 32]
            if background.mean() > -800 or tested >= 6:
                continue
            tested += 1
            image = fraction * 30 + (1 - fraction) * background
            hard = fraction >= 0.5
            soft = soft_mask_array(image, hard, domain="hu")
            assert np.abs(soft - fraction).mean() < np.abs(hard - fraction).mean()
    assert tested == 6


def test_hu_volume_keeps_geometry_and_mask(lung1):
    image, label = lung1
    soft = make_soft_mask(image, label, domain="hu")
    assert soft.same_geometry(image) and soft.array.dtype == np.float32
    assert dice(soft.array >= 0.5, label.array > 0) >= 0.95


def test_bad_input_raises(lung1):
    image, label = lung1
    with pytest.raises(InputError, match="domain"):
        soft_mask_array(image.array, label.array, domain="mri")
    with pytest.raises(InputError, match="shape"):
        soft_mask_array(image.array[:10], label.array, domain="hu")


def test_folder_script_writes_float_soft_masks(shared_data, tmp_path, repo_root):
    import importlib.util
    import shutil

    source = shared_data / "covid_semiseg" / "train"
    for sub, suffix in (("images", ".jpg"), ("masks", ".png")):
        (tmp_path / "set" / sub).mkdir(parents=True)
        for stem in ("1", "2"):
            shutil.copy(source / sub / f"{stem}{suffix}", tmp_path / "set" / sub / f"{stem}{suffix}")
    spec = importlib.util.spec_from_file_location("softmask_folder",
                                                  repo_root / "Resources" / "Scripts" / "softmask_folder.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path / "set"), str(tmp_path / "out"), "--domain", "uint8"]) == 0
    for stem in ("1", "2"):
        soft = read_image(tmp_path / "out" / f"{stem}.nrrd")
        mask = read_image(source / "masks" / f"{stem}.png").array > 127
        assert soft.array.dtype == np.float32
        assert dice(soft.array >= 0.5, mask) >= 0.95
