"""Write nodule ROI patches as 8-bit lung-window PNGs (``images/`` + ``masks/``), the layout the
held-out nodule test uses, so that ``lunglesion evaluate --model dsnet --data OUT`` scores them.

    python Resources/Scripts/export_nodule_patches.py lidc ../shared/data/lidc_slices OUT --patients 0005,0006
    python Resources/Scripts/export_nodule_patches.py volume CT.nrrd LABEL.nrrd OUT --sizes 50,75,100

LIDC slices (z-scored) go through ``zscore_to_unit``; HU volumes through the lung window
W1500/L-600. LIDC patches take the deterministic size ``validation_patch_size`` (twice the
nodule, within 50-100 px); volume patches one per labelled axial slice and size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lunglesion.data.lidc import crop_square, load_lidc_slices, validation_patch_size  # noqa: E402
from lunglesion.io import read_image, read_labelmap  # noqa: E402
from lunglesion.preprocessing.slicing import axial_view  # noqa: E402
from lunglesion.preprocessing.windowing import LUNG_WINDOW_HU, hu_to_unit, zscore_to_unit  # noqa: E402


def _save(out: Path, stem: str, unit: np.ndarray, mask: np.ndarray) -> None:
    PILImage.fromarray(np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)).save(out / "images" / f"{stem}.png")
    PILImage.fromarray(mask.astype(np.uint8) * 255).save(out / "masks" / f"{stem}.png")


def export_lidc(folder: Path, out: Path, patients: set[str]) -> int:
    """One patch per nodule component of the chosen patients' slices."""
    count = 0
    for record in load_lidc_slices(folder):
        if record.patient not in patients:
            continue
        size = validation_patch_size(record.extent)
        unit = crop_square(zscore_to_unit(record.image), record.centre, size)
        mask = crop_square(record.mask.astype(np.float32), record.centre, size) > 0.5
        _save(out, f"{record.name}_{count}", unit, mask)
        count += 1
    return count


def export_volume(image_path: Path, label_path: Path, out: Path, sizes: list[int]) -> int:
    """Patches of every size on every axial slice holding the label, centred on it."""
    image, label = axial_view(read_image(image_path)), axial_view(read_labelmap(label_path))
    count = 0
    for k in np.flatnonzero(label.array.any(axis=(1, 2))):
        mask = label.array[k] > 0
        centre = tuple(float(c) for c in np.argwhere(mask).mean(axis=0))
        unit = hu_to_unit(image.array[k], LUNG_WINDOW_HU)
        for size in sizes:
            _save(out, f"{image_path.name.split('.')[0]}_{k}_{size}", crop_square(unit, centre, size),
                  crop_square(mask.astype(np.float32), centre, size) > 0.5)
            count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("lidc", "volume"))
    parser.add_argument("paths", nargs="+", help="lidc: FOLDER OUT; volume: CT LABEL OUT")
    parser.add_argument("--patients", default="0005,0006")
    parser.add_argument("--sizes", default="50,75,100")
    args = parser.parse_args()
    out = Path(args.paths[-1])
    for folder in ("images", "masks"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    if args.kind == "lidc":
        n = export_lidc(Path(args.paths[0]), out, set(args.patients.split(",")))
    else:
        n = export_volume(Path(args.paths[0]), Path(args.paths[1]), out, [int(s) for s in args.sizes.split(",")])
    print(f"wrote {n} patches to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
