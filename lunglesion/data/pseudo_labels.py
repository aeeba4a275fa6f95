"""Merge a labelled set with pseudo-labelled slices (semi-supervised training data).

The masks of the unlabelled slices come from one of two sources, and every model trained
on the merged folder must say which in its card:

* ``unlabeled/pseudo_masks``: COVID-SemiSeg's soft outputs of another published model
  (thresholded at 0.5), NOT ground truth;
* ``--teacher MODEL``: a registered model of this project run on ``unlabeled/images``
  (self-training / distillation, as Semi-Inf-Net does with its own network).

``python -m lunglesion.data.pseudo_labels LABELLED UNLABELED OUT [--per-case N] [--teacher MODEL]``
writes ``OUT/images``, ``OUT/masks``, ``OUT/edges`` and ``OUT/provenance.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage as ndi

from lunglesion.data.labelled2d import files_by_stem, list_pairs, read_grey_unit
from lunglesion.errors import InputError

MaskSource = Callable[[str, Path], np.ndarray]


def mask_edges(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """Boundary band of a binary mask (inner morphological gradient of ``width`` pixels)."""
    return mask & ~ndi.binary_erosion(mask, iterations=width)


def shipped_pseudo_masks(unlabeled: Path) -> MaskSource:
    """Masks from ``unlabeled/pseudo_masks`` (another model's soft output) thresholded at 0.5."""
    masks = files_by_stem(unlabeled / "pseudo_masks")

    def source(stem: str, image_path: Path) -> np.ndarray:
        return np.asarray(PILImage.open(masks[stem]).convert("L")) >= 128

    return source


def teacher_masks(model: str, device: str = "auto", threshold: float = 0.5) -> MaskSource:
    """Masks predicted by the registered ``model`` (as registered, TTA included)."""
    from lunglesion.inference.predictor import Predictor

    predictor = Predictor(model, device)
    if predictor.classes != 1:
        raise InputError(f"teacher {model!r} is multi-class; pseudo labels need a binary lesion model")

    def source(stem: str, image_path: Path) -> np.ndarray:
        return predictor.predict([read_grey_unit(image_path)])[0] >= threshold

    return source


def _make_set_folders(out: Path) -> None:
    for folder in ("images", "masks", "edges"):
        (out / folder).mkdir(parents=True, exist_ok=True)


def build_merged_set(labelled: Path, unlabeled: Path, out: Path, per_case: int = 12,
                     min_fraction: float = 0.01, seed: int = 0, exclude: set[str] | None = None,
                     masks: MaskSource | None = None) -> int:
    """Copy the labelled pairs (minus ``exclude``) and up to ``per_case`` pseudo-labelled slices per
    scan whose pseudo lesion covers at least ``min_fraction`` of the slice; returns the count.

    ``masks`` gives the pseudo mask of an unlabelled slice (default: the shipped ``pseudo_masks``).
    """
    masks = masks or shipped_pseudo_masks(unlabeled)
    _make_set_folders(out)
    count = 0
    for stem, image_path, mask_path in list_pairs(labelled):
        if exclude and stem in exclude:
            continue
        shutil.copy(image_path, out / "images" / image_path.name)
        shutil.copy(mask_path, out / "masks" / mask_path.name)
        shutil.copy(next((labelled / "edges").glob(stem + ".*")), out / "edges" / f"{stem}.png")
        count += 1
    return count + add_pseudo_labelled(files_by_stem(unlabeled / "images"), out, masks, per_case, min_fraction, seed)


def add_pseudo_labelled(images: dict[str, Path], out: Path, masks: MaskSource, per_case: int = 12,
                        min_fraction: float = 0.01, seed: int = 0) -> int:
    """Write up to ``per_case`` of ``images`` (``{stem: path}``) per scan (stem without its trailing
    ``_N``), each with its pseudo mask and edges, into ``out/images|masks|edges``, skipping slices
    whose mask covers less than ``min_fraction``; returns the count."""
    _make_set_folders(out)
    count = 0
    by_case: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for stem, image_path in images.items():
        by_case[re.sub(r"_\d+$", "", stem)].append((stem, image_path))
    rng = np.random.default_rng(seed)
    for case in sorted(by_case):
        chosen = 0
        for i in rng.permutation(len(by_case[case])):
            stem, image_path = by_case[case][i]
            mask = masks(stem, image_path)
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
    parser.add_argument("--teacher", help="registered model whose predictions become the pseudo masks "
                                          "(default: the shipped pseudo_masks of another model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    exclude = set(filter(None, args.exclude.split(",")))
    source = teacher_masks(args.teacher) if args.teacher else None
    n = build_merged_set(args.labelled, args.unlabeled, args.out, args.per_case, seed=args.seed,
                         exclude=exclude, masks=source)
    provenance = {"labelled": str(args.labelled), "unlabeled": str(args.unlabeled), "excluded": sorted(exclude),
                  "per_case": args.per_case, "seed": args.seed,
                  "pseudo_masks": f"teacher model {args.teacher}" if args.teacher else "unlabeled/pseudo_masks"}
    (args.out / "provenance.json").write_text(json.dumps(provenance, indent=1))
    print(f"wrote {n} pairs to {args.out}")


if __name__ == "__main__":
    main()
