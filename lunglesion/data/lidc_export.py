"""Export the LIDC nodule slices as labelled 2D sets in the covid_semiseg input convention.

Stage 1 of nCoVSegNet's two-stage transfer trains on LIDC-IDRI. ``lidc_108slices.npz``
holds per-slice z-scored slices with the outside of the lungs set to 0; each slice goes
through :func:`lunglesion.preprocessing.windowing.zscore_to_unit` (approximate HU, then the
covid_semiseg window), is cropped to a square around the lungs (covid_semiseg slices are
body-cropped, lungs filling the frame) and written as an 8-bit PNG. Masks become {0, 255}.

The split is by patient: ``OUT/val`` holds every slice of ``val_patients``, ``OUT/train``
the rest, each laid out as ``images/`` + ``masks/``, and ``OUT/split.json`` records it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from lunglesion.data.lidc import NPZ_NAME
from lunglesion.errors import InputError
from lunglesion.io.atomic import atomic_output
from lunglesion.preprocessing.windowing import zscore_to_unit

DEFAULT_VAL_PATIENTS: tuple[str, ...] = ("0004", "0005", "0006")
"""Held-out patients (20 of 108 slices); the other five patients (88 slices) train."""


def lung_crop_box(image: np.ndarray, margin: int = 16, background: float = 0.0) -> tuple[int, int, int, int]:
    """Square ``(top, left, bottom, right)`` around the non-background (lung) pixels plus ``margin``.

    The square is centred on the lungs' bounding box, clamped to the image; a slice without
    lung pixels keeps its full extent.
    """
    ys, xs = np.nonzero(image != background)
    height, width = image.shape
    if ys.size == 0:
        return 0, 0, height, width
    side = min(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 + 2 * margin, height, width)
    top = int(np.clip((ys.min() + ys.max() + 1 - side) // 2, 0, height - side))
    left = int(np.clip((xs.min() + xs.max() + 1 - side) // 2, 0, width - side))
    return top, left, top + side, left + side


def _write_png(array: np.ndarray, path: Path) -> None:
    with atomic_output(path) as tmp:
        PILImage.fromarray(array).save(tmp, format="PNG")


def export_lidc(source: Path, out_dir: Path, val_patients: tuple[str, ...] = DEFAULT_VAL_PATIENTS,
                margin: int = 16) -> dict[str, list[str]]:
    """Write ``out_dir/{train,val}/{images,masks}/<slice>.png``; returns the patient split."""
    path = Path(source) / NPZ_NAME if Path(source).is_dir() else Path(source)
    if not path.exists():
        raise InputError(f"LIDC slice file not found: {path}")
    data = np.load(path)
    names = [str(n).removesuffix(".npy") for n in data["image_names"]]
    patients = sorted({n[:4] for n in names})
    unknown = sorted(set(val_patients) - set(patients))
    if unknown or not set(patients) - set(val_patients):
        raise InputError(f"validation patients {list(val_patients)} must be a proper subset of {patients}")
    out_dir = Path(out_dir)
    for name, image, mask in zip(names, data["images"], data["masks"]):
        image = image.astype(np.float32)
        top, left, bottom, right = lung_crop_box(image, margin)
        unit = zscore_to_unit(image)[top:bottom, left:right]
        subset = out_dir / ("val" if name[:4] in val_patients else "train")
        _write_png(np.round(unit * 255).astype(np.uint8), subset / "images" / f"{name}.png")
        _write_png(np.where(mask[top:bottom, left:right], 255, 0).astype(np.uint8), subset / "masks" / f"{name}.png")
    split = {"val": sorted(val_patients), "train": sorted(set(patients) - set(val_patients))}
    with atomic_output(out_dir / "split.json") as tmp:
        tmp.write_text(json.dumps({"source": str(path), "margin": margin, "patients": split}, indent=1))
    return split


def main(argv: list[str] | None = None) -> int:
    """``python -m lunglesion.data.lidc_export SOURCE OUT [--val-patients 0004 0005 0006]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="lidc_slices folder or lidc_108slices.npz")
    parser.add_argument("out", help="output folder (train/ and val/ are written inside)")
    parser.add_argument("--val-patients", nargs="+", default=list(DEFAULT_VAL_PATIENTS))
    parser.add_argument("--margin", type=int, default=16, help="pixels kept around the lungs")
    args = parser.parse_args(argv)
    split = export_lidc(Path(args.source), Path(args.out), tuple(args.val_patients), args.margin)
    print(f"train patients {split['train']}, validation patients {split['val']} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
