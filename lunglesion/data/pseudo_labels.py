"""Merge a labelled set with pseudo-labelled slices (semi-supervised training data).

COVID-SemiSeg's ``unlabeled/pseudo_masks`` are the soft outputs of another published model,
NOT ground truth: every model trained on the merged folder must say so in its card.
``python -m lunglesion.data.pseudo_labels LABELLED UNLABELED OUT [--per-case N]`` writes
``OUT/images``, ``OUT/masks`` (pseudo masks thresholded at 0.5) and ``OUT/edges``.
"""

from __future__ import annotations

import argparse
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage as ndi

from lunglesion.data.labelled2d import list_pairs


def mask_edges(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """Boundary band of a binary mask (inner morphological gradient of ``width`` pixels)."""
    return mask & ~ndi.binary_erosion(mask, iterations=width)


def build_merged_set(labelled: Path, unlabeled: Path, out: Path, per_case: int = 12,
                     min_fraction: float = 0.01, seed: int = 0, exclude: set[str] | None = None) -> int:
    """Copy the labelled pairs (minus ``exclude``) and up to ``per_case`` pseudo-labelled slices per
    scan whose pseudo lesion covers at least ``min_fraction`` of the slice; returns the count."""
    for folder in ("images", "masks", "edges"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    count = 0
    for stem, image_path, mask_path in list_pairs(labelled):
        if exclude and stem in exclude:
            continue
        shutil.copy(image_path, out / "images" / image_path.name)
        shutil.copy(mask_path, out / "masks" / mask_path.name)
        shutil.copy(next((labelled / "edges").glob(stem + ".*")), out / "edges" / f"{stem}.png")
        count += 1
    by_case: dict[str, list[tuple[str, Path, Path]]] = defaultdict(list)
    for stem, image_path, mask_path in list_pairs(unlabeled, "pseudo_masks"):
        by_case[re.sub(r"_\d+$", "", stem)].append((stem, image_path, mask_path))
    rng = np.random.default_rng(seed)
    for case in sorted(by_case):
        chosen = 0
        for i in rng.permutation(len(by_case[case])):
            stem, image_path, mask_path = by_case[case][i]
            mask = np.asarray(PILImage.open(mask_path).convert("L")) >= 128
            if mask.mean() < min_fraction:
                continue
            shutil.copy(image_path, out / "images" / image_path.name)
            PILImage.fromarray(mask.astype(np.uint8) * 255).save(out / "masks" / f"{stem}.png")
            PILImage.fromarray(mask_edges(mask).astype(np.uint8) * 255).save(out / "edges" / f"{stem}.png")
            chosen += 1
            count += 1
            if chosen == per_case:
                break
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labelled", type=Path)
    parser.add_argument("unlabeled", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-case", type=int, default=12)
    parser.add_argument("--exclude", default="", help="comma-separated labelled stems to leave out (validation)")
    args = parser.parse_args()
    exclude = set(filter(None, args.exclude.split(",")))
    n = build_merged_set(args.labelled, args.unlabeled, args.out, args.per_case, exclude=exclude)
    print(f"wrote {n} pairs to {args.out}")


if __name__ == "__main__":
    main()
