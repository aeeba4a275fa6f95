"""Few-shot pipeline on real data: slices, registration, baselines, episodes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lunglesion.errors import DimensionError, InputError
from lunglesion.fewshot.baselines import copy_nearest, fill_between
from lunglesion.fewshot.episodes import EpisodeSampler, _volume_classes, split_classes
from lunglesion.fewshot.registration import register_masks
from lunglesion.fewshot.segment import segment_with_support
from lunglesion.fewshot.slices import LAYOUT, axial_arrays, image_kind, normalise_intensity, roi_box
from lunglesion.image import image_2d
from lunglesion.io import read_image
from lunglesion.metrics import dice as _dice
from lunglesion.preprocessing.slicing import axial_view




def test_axial_round_trip_and_orientation(shared_data) -> None:
    image = read_image(shared_data / "totalseg" / "ct_sm.nii.gz")
    assert image.direction[0, 0] < 0  # stored right-to-left: a flip is needed
    axial = axial_arrays(image)
    assert np.array_equal(axial_view(image, LAYOUT).to_image_array(axial), image.array)
    # axial axes (0, 1, 2) must run toward patient superior, posterior and left (LPS +z, +y, +x),
    # the orientation the registered few-shot weights were trained in
    index = axial_arrays(image.with_array(np.arange(image.array.size).reshape(image.array.shape)))

    def point(flat: int) -> np.ndarray:
        k, j, i = np.unravel_index(flat, image.array.shape)
        return image.index_to_physical(np.array([i, j, k], dtype=float))

    origin = point(index[0, 0, 0])
    for axis, step in ((0, (0, 0, 1)), (1, (0, 1, 0)), (2, (1, 0, 0))):
        assert (point(index[step]) - origin)[axis] > 0


def test_intensity_kinds(shared_data, lung1) -> None:
    mr = read_image(shared_data / "mr" / "brain1_image.nrrd")
    assert image_kind(lung1[0].array) == "ct" and image_kind(mr.array) == "minmax"
    assert image_kind(np.zeros((4, 4), np.uint8)) == "8bit"
    ct = normalise_intensity(lung1[0].array)
    assert ct.min() == -1.0 and ct.max() <= 1.0
    air, tissue = ct[24, 5, 5], ct[24, 256, 256]
    assert air < tissue  # outside-body air darker than mediastinum


def test_registration_recovers_a_shift(lung1) -> None:
    image, label = lung1
    img = torch.from_numpy(normalise_intensity(image.array)[33, 300:428, 150:278].copy())
    msk = torch.from_numpy(label.array[33, 300:428, 150:278].astype(np.float32))
    assert msk.sum() > 100
    moved_img, moved_msk = torch.roll(img, (6, -5), (0, 1)), torch.roll(msk, (6, -5), (0, 1))
    before = _dice(msk.numpy() > 0, moved_msk.numpy() > 0)
    warped = register_masks(img[None], msk[None], moved_img[None])[0].numpy() > 0
    assert _dice(warped, moved_msk.numpy() > 0) > max(0.75, before + 0.2)


def test_baselines_on_the_nodule(lung1) -> None:
    label = lung1[1].array > 0
    filled = fill_between({32: label[32], 34: label[34]}, label.shape[0])
    assert _dice(filled[33], label[33]) > 0.6 and not filled[:32].any() and not filled[35:].any()
    copied = copy_nearest({33: label[33]}, label.shape[0], max_distance=1)
    assert copied[32:35].any((1, 2)).all() and not copied[:32].any() and not copied[35:].any()


def test_roi_box_around_small_structure(lung1) -> None:
    y0, y1, x0, x1 = roi_box(lung1[1].array[33] > 0)
    assert 48 <= y1 - y0 < 200 and y1 - y0 == x1 - x0
    assert (lung1[1].array[33, y0:y1, x0:x1] > 0).sum() == (lung1[1].array[33] > 0).sum()


def test_episodes_hold_out_classes(shared_data) -> None:
    maps = json.loads((shared_data / "totalseg" / "class_maps.json").read_text())
    classes = _volume_classes(shared_data / "totalseg" / "ct_sm.nii.gz",
                              shared_data / "totalseg" / "ct_sm_seg_total_v2.nii.gz", "totalseg/ct_sm",
                              {int(k): v for k, v in maps["total"].items()})
    train, held = split_classes(classes)
    assert {"liver", "spleen", "kidney_left", "kidney_right"} == {c.name for c in held}
    assert len(train) >= 10 and not {c.name for c in train} & {c.name for c in held}
    episode = EpisodeSampler(train, size=64, seed=3).batch(3)
    assert episode.support_images.shape == (3, 1, 1, 64, 64) and episode.query.shape == (3, 1, 64, 64)
    assert (episode.support_masks.sum((1, 2, 3)) > 0).all()


def test_bad_input_is_refused(lung1) -> None:
    image, label = lung1
    with pytest.raises(InputError, match="label 2 is absent"):
        segment_with_support(image, [(image, label)], label=2)
    slice2d = image_2d(image.array[33])
    with pytest.raises(DimensionError, match="same dimensionality"):
        segment_with_support(slice2d, [(image, label)])
    with pytest.raises(DimensionError, match="differ"):
        segment_with_support(slice2d, [(slice2d, image_2d(label.array[33, :100]))])
    with pytest.raises(InputError, match="no support"):
        segment_with_support(image, [])
