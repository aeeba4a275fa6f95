"""Nodule patches in the held-out test's format (8-bit PNG images/ + masks/), scored by evaluate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lunglesion.evaluation import evaluate_labelled_set

SCRIPT = Path(__file__).resolve().parents[2] / "Resources" / "Scripts" / "export_nodule_patches.py"


def test_lung1_patches_hold_the_nodule_and_dsnet_finds_it(shared_data: Path, tmp_path: Path) -> None:
    ct = shared_data / "chest_ct"
    done = subprocess.run([sys.executable, str(SCRIPT), "volume", str(ct / "lung1_image.nrrd"),
                           str(ct / "lung1_label.nrrd"), str(tmp_path), "--sizes", "50,100"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    masks = sorted((tmp_path / "masks").glob("*.png"))
    assert len(masks) == 6  # three labelled slices x two sizes
    for path in masks:
        mask = np.asarray(Image.open(path))
        assert mask.shape[0] in (50, 100) and set(np.unique(mask)) == {0, 255}
        assert mask[mask.shape[0] // 2 - 2: mask.shape[0] // 2 + 3].any()  # centred on the nodule
    report = evaluate_labelled_set("dsnet", tmp_path, device="cpu")
    assert report.summary["dice"] > 0.5
