#!/usr/bin/env python
"""Headless Soft Mask batch: a folder with images/ + masks/ (same stems) -> OUT/<stem>.nrrd.

Each soft mask is a float32 image with its source image's geometry (see
lunglesion.softmask). Example:

    python Resources/Scripts/softmask_folder.py ../shared/data/covid_semiseg/train out/soft --domain uint8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lunglesion.data.labelled2d import list_pairs
from lunglesion.errors import LungLesionError
from lunglesion.io import read_image, write_float_volume
from lunglesion.softmask import DOMAINS, make_soft_mask


def convert_folder(root: Path, out_dir: Path, domain: str, band: int = 2, sigma: float = 0.0,
                   suffix: str = ".nrrd") -> list[Path]:
    """Write one soft mask per image/mask pair of ``root``; returns the written paths."""
    written = []
    for stem, image_path, mask_path in list_pairs(root):
        image, mask = read_image(image_path), read_image(mask_path)
        hard = mask.with_array((mask.array > 0.5 * mask.array.max()).astype("uint8")) if mask.array.max() > 0 \
            else mask
        soft = make_soft_mask(image, hard, domain=domain, band=band, sigma=sigma)
        path = Path(out_dir) / f"{stem}{suffix}"
        write_float_volume(soft, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder holding images/ and masks/")
    parser.add_argument("output", type=Path, help="output folder for <stem>.nrrd soft masks")
    parser.add_argument("--domain", choices=DOMAINS, default="uint8", help="intensity convention")
    parser.add_argument("--band", type=int, default=2, help="edge band half-width in pixels")
    parser.add_argument("--sigma", type=float, default=0.0, help="in-plane smoothing (pixels)")
    parser.add_argument("--suffix", default=".nrrd", help="output file suffix (.nrrd, .mha, .nii.gz)")
    args = parser.parse_args(argv)
    try:
        paths = convert_folder(args.folder, args.output, args.domain, args.band, args.sigma, args.suffix)
    except LungLesionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} soft masks to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
