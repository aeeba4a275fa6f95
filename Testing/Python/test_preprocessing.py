"""Windowing, resampling, cropping and axial slicing on the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image as PILImage
from scipy import ndimage as ndi

from lunglesion.errors import DimensionError, InputError
from lunglesion.image import Image
from lunglesion.io.convert import from_sitk
from lunglesion.preprocessing import (COVID_SEMISEG_WINDOW, axial_view, crop_to_mask_bbox, hu_to_unit,
                                      paste_into, resample_image, resample_to_reference, to_network_domain,
                                      uint8_to_unit, zscore_to_unit)


def _read(path: Path) -> Image:
    return from_sitk(sitk.ReadImage(str(path)))


def _peaks(values: np.ndarray) -> tuple[float, float]:
    """Dark (< 128) and bright (128-254) peaks of a smoothed 8-bit histogram."""
    h = ndi.gaussian_filter1d(np.bincount(values.ravel(), minlength=256).astype(float), 3)
    return float(np.argmax(h[:128])), float(128 + np.argmax(h[128:255]))


def test_hu_window_reproduces_covid_semiseg_peaks(shared_data: Path, lung1: tuple[Image, Image]) -> None:
    lo, hi = COVID_SEMISEG_WINDOW
    assert hu_to_unit(np.array([lo, hi, (lo + hi) / 2, -3000, 3000])).tolist() == [0, 1, 0.5, 0, 1]
    covid = np.array([_peaks(np.asarray(PILImage.open(f).convert("L")))
                      for f in sorted((shared_data / "covid_semiseg/train/images").glob("*.jpg"))])
    image, _ = lung1
    chest = image.array[10:40]
    inside = np.stack([ndi.binary_fill_holes(s > -500) for s in chest])  # body, lungs filled in
    hu = chest[inside].astype(np.int64)
    hist = ndi.gaussian_filter1d(np.bincount(hu - hu.min()).astype(float), 10)
    values = np.arange(hist.size) + hu.min()
    lung_hu = values[np.argmax(np.where((values > -980) & (values < -500), hist, 0))]
    tissue_hu = values[np.argmax(np.where((values > -50) & (values < 200), hist, 0))]
    target = np.median(covid, axis=0)  # measured: 44 (lung), 217 (soft tissue)
    for window, close in ((COVID_SEMISEG_WINDOW, True), ((-1000.0, 400.0), False), ((-1250.0, 250.0), False)):
        grey = hu_to_unit(np.array([lung_hu, tissue_hu]), window) * 255
        assert (np.abs(grey - target).max() < 8) == close, (window, grey, target)


def test_uint8_and_dispatch(shared_data: Path) -> None:
    jpg = np.asarray(PILImage.open(shared_data / "covid_semiseg/train/images/0.jpg").convert("L"))
    unit = to_network_domain(jpg, "uint8")
    assert unit.dtype == np.float32 and unit.max() == pytest.approx(jpg.max() / 255)
    assert np.array_equal(to_network_domain(np.array([-1150.0]), "hu"), hu_to_unit(np.array([-1150.0])))
    with pytest.raises(InputError):
        uint8_to_unit(np.array([300]))
    with pytest.raises(InputError):
        to_network_domain(jpg, "mr")  # type: ignore[arg-type]


def test_zscore_lidc_maps_to_lung_window(shared_data: Path, lung1: tuple[Image, Image]) -> None:
    data = np.load(shared_data / "lidc_slices/lidc_108slices.npz")
    z = data["images"][::12].astype(np.float32)
    masks = data["masks"][::12]
    unit = zscore_to_unit(z)
    assert unit.shape == z.shape and unit.min() >= 0 and unit.max() <= 1
    inside = z != 0
    image, _ = lung1
    chest = image.array[20:30]
    body = np.stack([ndi.binary_fill_holes(s > -500) for s in chest])
    real_lung = hu_to_unit(chest[body & (chest < -500)])
    lidc_lung = unit[inside & (unit < 0.5)]  # the in-mask voxels minus the chest-wall rim
    assert abs(np.median(lidc_lung) - np.median(real_lung)) < 0.05, (np.median(lidc_lung), np.median(real_lung))
    assert np.allclose(unit[~inside], hu_to_unit(np.array(43.0)))  # background -> soft tissue
    assert unit[masks].mean() > np.median(unit[inside]) + 0.2  # nodules are denser than lung


def test_resample_keeps_physical_positions(lung1: tuple[Image, Image]) -> None:
    image, label = lung1
    centre = label.index_to_physical(np.array(ndi.center_of_mass(label.array))[::-1])
    coarse = resample_image(label, (1.5, 1.5, 5.0), order=0)
    assert coarse.array.dtype == label.array.dtype and coarse.array.shape[1] == round(512 * 0.5703125 / 1.5)
    moved = coarse.index_to_physical(np.array(ndi.center_of_mass(coarse.array))[::-1])
    assert np.linalg.norm(moved - centre) < 1.0
    angle = np.deg2rad(25)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    oblique_ref = Image(array=np.zeros((48, 200, 200), np.uint8), spacing=(1.5, 1.5, 5.0),
                        origin=tuple(centre - rot @ np.array([150.0, 150.0, 120.0])), direction=rot)
    oblique = resample_to_reference(label, oblique_ref, order=0)
    assert oblique.same_geometry(oblique_ref) and oblique.array.sum() > 0
    moved = oblique.index_to_physical(np.array(ndi.center_of_mass(oblique.array))[::-1])
    assert np.linalg.norm(moved - centre) < 1.5
    with pytest.raises(InputError):
        resample_image(image, (1.0, 1.0), order=1)


def test_crop_and_paste(lung1: tuple[Image, Image]) -> None:
    image, label = lung1
    cropped, slices = crop_to_mask_bbox(image, label, margin_mm=10.0)
    start = np.array([s.start for s in slices][::-1], dtype=float)
    assert np.allclose(cropped.index_to_physical(np.zeros(3)), image.index_to_physical(start))
    assert cropped.array.shape[2] >= label.array.any(axis=(0, 1)).sum() + 2 * 17
    blank = image.with_array(np.zeros_like(image.array))
    pasted = paste_into(blank, cropped, slices)
    assert np.array_equal(pasted.array[slices], image.array[slices]) and pasted.array.sum() == cropped.array.sum()
    with pytest.raises(InputError):
        crop_to_mask_bbox(image, np.zeros((2, 2, 2)))


def _reoriented(image: Image) -> Image:
    """Same voxels and physical positions; array axes permuted (y, z, x) and x flipped."""
    d, sp = image.direction, image.spacing
    array = np.transpose(image.array, (1, 0, 2))[:, :, ::-1]  # numpy axes: old y, old z, old x reversed
    last_x = image.index_to_physical(np.array([image.array.shape[2] - 1, 0, 0]))
    direction = np.stack([-d[:, 0], d[:, 2], d[:, 1]], axis=1)  # new i = -old x, j = old z, k = old y
    return Image(array=np.ascontiguousarray(array), spacing=(sp[0], sp[2], sp[1]), origin=tuple(last_x),
                 direction=direction)


def test_axial_view_is_orientation_independent(shared_data: Path, lung1: tuple[Image, Image]) -> None:
    image, label = lung1
    small = Image(array=image.array[::4, ::8, ::8].copy(), spacing=(4.5625, 4.5625, 20.0),
                  origin=image.origin, direction=image.direction)
    view = axial_view(small)
    assert np.array_equal(view.array, small.array)  # identity direction: already radiological
    other = _reoriented(small)
    assert np.allclose(other.index_to_physical(np.array([3, 2, 5])), small.index_to_physical(np.array([63 - 3, 5, 2])))
    other_view = axial_view(other)
    assert np.array_equal(other_view.array, view.array) and other_view.spacing == view.spacing
    assert np.array_equal(other_view.to_image_array(other_view.array), other.array)
    stack = np.stack([s > -500 for s in other_view.slices])
    assert np.array_equal(other_view.to_image_array(stack), other.array > -500)
    semiseg = axial_view(other, layout="covid_semiseg")
    assert np.array_equal(semiseg.array, np.swapaxes(view.array, 1, 2))
    assert np.array_equal(semiseg.to_image_array(semiseg.array), other.array)
    tilt = np.deg2rad(20)
    oblique = Image(array=small.array, spacing=small.spacing, origin=small.origin,
                    direction=np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]]))
    assert np.array_equal(axial_view(oblique).array, view.array)  # nearest axes, no resampling
    with pytest.raises(DimensionError):
        axial_view(Image(array=np.zeros((4, 4)), spacing=(1, 1), origin=(0, 0), direction=np.eye(2)))


def test_axial_view_puts_right_lung_on_image_left(shared_data: Path) -> None:
    seg = _read(shared_data / "totalseg/ct_seg_total_v1.nii.gz")  # direction diag(-1, -1, 1)
    view = axial_view(seg)
    right = np.nonzero(np.isin(view.array, [15, 16, 17]))
    left = np.nonzero(np.isin(view.array, [13, 14]))
    assert right[2].mean() < left[2].mean()
    liver = np.nonzero(view.array == 5)  # the liver is on the patient's right, anterior to the spine
    spine = np.nonzero(np.isin(view.array, list(range(18, 25))))  # vertebrae L5..T11
    assert liver[2].mean() < view.array.shape[2] / 2 and liver[1].mean() < spine[1].mean()
    assert np.nonzero(view.array == 18)[0].mean() < np.nonzero(view.array == 24)[0].mean()  # L5 below T11
