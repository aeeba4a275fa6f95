"""Merging labelled and pseudo-labelled COVID-SemiSeg slices for semi-supervised training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lunglesion.data.labelled2d import list_pairs, read_label_png
from lunglesion.data.pseudo_labels import build_merged_set, mask_edges, teacher_masks
from lunglesion.errors import InputError


def test_mask_edges_is_the_inner_band() -> None:
    mask = np.zeros((9, 9), bool)
    mask[2:7, 2:7] = True  # 5x5 square: a 1-px band keeps the 16 border pixels
    band = mask_edges(mask, width=1)
    assert band.sum() == 16 and not band[4, 4] and band[2, 2]


def test_merged_set_holds_labelled_and_thresholded_pseudo_masks(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "covid_semiseg"
    n = build_merged_set(root / "train", root / "unlabeled", tmp_path, per_case=1, exclude={"0", "1"})
    pairs = list_pairs(tmp_path)
    assert n == len(pairs) and "0" not in {p[0] for p in pairs} and "2" in {p[0] for p in pairs}
    pseudo = [p for p in pairs if p[0].startswith("Data-")]
    assert 10 <= len(pseudo) <= 20  # at most one slice per unlabelled scan (20 scans)
    stem, _, mask_path = pseudo[0]
    soft = np.asarray(Image.open(root / "unlabeled" / "pseudo_masks" / f"{stem}.png").convert("L"))
    assert np.array_equal(read_label_png(mask_path), (soft >= 128).astype(np.uint8))
    assert (tmp_path / "edges" / f"{stem}.png").exists()


def test_teacher_masks_match_the_true_masks_of_labelled_slices(shared_data: Path) -> None:
    root = shared_data / "covid_semiseg" / "train"
    source = teacher_masks("unet")
    stems = ["2", "25", "43"]  # held-out validation slices of the shipped unet
    dice = []
    for stem, image_path, mask_path in list_pairs(root):
        if stem in stems:
            pred, true = source(stem, image_path), read_label_png(mask_path).astype(bool)
            dice.append(2 * (pred & true).sum() / (pred.sum() + true.sum()))
    assert len(dice) == 3 and np.mean(dice) > 0.6


def test_merged_set_with_a_teacher_writes_its_predictions(shared_data: Path, tmp_path: Path) -> None:
    unlabeled = tmp_path / "unlabeled"
    (unlabeled / "images").mkdir(parents=True)
    for image in sorted((shared_data / "covid_semiseg" / "unlabeled" / "images").glob("*_org_001_1[0-4].jpg")):
        (unlabeled / "images" / image.name).symlink_to(image)
    source = teacher_masks("unet")
    out = tmp_path / "merged"
    n = build_merged_set(shared_data / "covid_semiseg" / "train", unlabeled, out, per_case=2, masks=source)
    pseudo = [p for p in list_pairs(out) if p[0].startswith("Data-")]
    assert n == 50 + len(pseudo) and 1 <= len(pseudo) <= 2
    stem, image_path, mask_path = pseudo[0]
    assert np.array_equal(read_label_png(mask_path).astype(bool), source(stem, image_path))
    assert read_label_png(mask_path).mean() >= 0.01


def test_a_multiclass_teacher_is_refused() -> None:
    with pytest.raises(InputError, match="multi-class"):
        teacher_masks("ncovsegnet-light-multiclass")
