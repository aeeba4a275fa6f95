"""Merging labelled and pseudo-labelled COVID-SemiSeg slices for semi-supervised training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lunglesion.data.labelled2d import list_pairs, read_label_png
from lunglesion.data.pseudo_labels import build_merged_set, mask_edges


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
