"""Reading every file format against SimpleITK, and write/read round trips with exact geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image as PILImage

from io_asserts import assert_geometry, assert_same_as_sitk, assert_same_image
from lunglesion.image import Image
from lunglesion.io import read_image, read_labelmap, write_float_volume, write_image, write_labelmap

FORMATS = [".nrrd", ".nii.gz", ".nii", ".mha"]


@pytest.fixture(scope="module")
def lung1(shared_data: Path) -> Image:
    return read_image(shared_data / "chest_ct" / "lung1_image.nrrd")


@pytest.fixture(scope="module")
def oblique(shared_data: Path) -> tuple[Image, Image]:
    """A real CT and its labels re-described on an oblique, anisotropic grid."""
    ct = read_image(shared_data / "totalseg" / "ct_sm.nii.gz")
    labels = read_labelmap(shared_data / "totalseg" / "ct_sm_seg_total_v2.nii.gz")
    a, b = np.deg2rad(23.0), np.deg2rad(-11.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    direction = rz @ rx @ np.diag([1.0, -1.0, 1.0])  # rotated, with an axis flip
    geometry = dict(spacing=(0.75, 1.25, 2.5), origin=(-120.25, 35.5, 80.125), direction=direction)
    return Image(array=ct.array, **geometry), Image(array=labels.array, **geometry)


def test_lung1_read_equals_simpleitk(shared_data: Path, lung1: Image) -> None:
    reference = sitk.ReadImage(str(shared_data / "chest_ct" / "lung1_image.nrrd"))
    assert_same_as_sitk(lung1, reference)
    assert lung1.array.shape == (48, 512, 512) and lung1.array.dtype == np.int16


@pytest.mark.parametrize("suffix", FORMATS)
def test_lung1_round_trip(lung1: Image, tmp_path: Path, suffix: str) -> None:
    # the nodule slab (slices 28-35) keeps each format's compressed write fast
    part = Image(array=lung1.array[28:36], spacing=lung1.spacing, origin=lung1.index_to_physical([0, 0, 28]),
                 direction=lung1.direction)
    path = tmp_path / f"lung1{suffix}"
    write_image(part, path)
    back = read_image(path)
    assert_same_image(back, part)
    assert back.array.dtype == np.int16
    assert_same_as_sitk(back, sitk.ReadImage(str(path)))


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct_sm.nii.gz", "mr_sm.nii.gz", "ct_seg_total_v1.nii.gz",
                                  "ct_sm_seg_total_v2.nii.gz", "mr_sm_seg_total_mr.nii.gz"])
def test_totalseg_nifti_equals_simpleitk(shared_data: Path, name: str, tmp_path: Path) -> None:
    path = shared_data / "totalseg" / name
    image = read_image(path)
    assert_same_as_sitk(image, sitk.ReadImage(str(path)))
    write_image(image, tmp_path / "copy.nrrd")
    assert_same_image(read_image(tmp_path / "copy.nrrd"), image)


@pytest.mark.parametrize("suffix", FORMATS)
def test_oblique_anisotropic_round_trip(oblique: tuple[Image, Image], tmp_path: Path, suffix: str) -> None:
    ct, labels = oblique
    write_image(ct, tmp_path / f"ct{suffix}")
    write_labelmap(labels, tmp_path / f"labels{suffix}")
    assert_same_image(read_image(tmp_path / f"ct{suffix}"), ct)
    back = read_labelmap(tmp_path / f"labels{suffix}")
    assert back.array.dtype == np.uint8
    assert_same_image(back, labels)
    # an independent reader agrees on where the voxels are
    assert_same_as_sitk(back, sitk.ReadImage(str(tmp_path / f"labels{suffix}")))


def test_oblique_geometry_is_not_trivial(oblique: tuple[Image, Image]) -> None:
    ct, _ = oblique
    assert abs(ct.direction[0, 1]) > 0.3 and len(set(ct.spacing)) == 3


def test_float_volume_round_trip(oblique: tuple[Image, Image], tmp_path: Path) -> None:
    ct, _ = oblique
    probability = ct.with_array(1.0 / (1.0 + np.exp(-ct.array.astype(np.float64) / 200.0)))
    write_float_volume(probability, tmp_path / "p.nrrd")
    back = read_image(tmp_path / "p.nrrd")
    assert back.array.dtype == np.float32
    assert_same_image(back, probability.with_array(probability.array.astype(np.float32)))


def test_labelmap_reads_integer_labels(shared_data: Path) -> None:
    path = shared_data / "chest_ct" / "lung1_label.nrrd"
    label = read_labelmap(path)
    reference = sitk.ReadImage(str(path))
    assert label.array.dtype == np.uint8
    assert_geometry(label, reference.GetSpacing(), reference.GetOrigin(), reference.GetDirection())
    np.testing.assert_array_equal(label.array, sitk.GetArrayFromImage(reference))


def test_jpg_and_png_are_2d_grey(shared_data: Path) -> None:
    train = shared_data / "covid_semiseg" / "train"
    jpg = sorted((train / "images").glob("*.jpg"))[0]
    image = read_image(jpg)
    assert image.ndim == 2 and image.spacing == (1.0, 1.0) and image.origin == (0.0, 0.0)
    np.testing.assert_array_equal(image.array, np.asarray(PILImage.open(jpg).convert("L")))
    mask = read_labelmap(train / "masks" / f"{jpg.stem}.png")
    assert mask.array.shape == image.array.shape and set(np.unique(mask.array)) <= {0, 255}


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_png_becomes_grey(shared_data: Path, tmp_path: Path, mode: str) -> None:
    jpg = sorted((shared_data / "covid_semiseg" / "train" / "images").glob("*.jpg"))[0]
    grey = np.asarray(PILImage.open(jpg).convert("L"))
    channels = [grey, np.flipud(grey), 255 - grey] + ([np.full_like(grey, 128)] if mode == "RGBA" else [])
    PILImage.fromarray(np.stack(channels, axis=-1), mode=mode).save(tmp_path / "colour.png")
    image = read_image(tmp_path / "colour.png")
    assert image.ndim == 2 and image.spacing == (1.0, 1.0)
    luma = 0.299 * channels[0] + 0.587 * channels[1].astype(float) + 0.114 * channels[2]
    assert np.abs(image.array.astype(float) - luma).max() <= 1.0


def test_2d_png_round_trip(shared_data: Path, tmp_path: Path) -> None:
    mask = read_labelmap(sorted((shared_data / "covid_semiseg" / "train" / "masks").glob("*.png"))[0])
    write_labelmap(mask, tmp_path / "mask.png")
    assert_same_image(read_labelmap(tmp_path / "mask.png"), mask)
