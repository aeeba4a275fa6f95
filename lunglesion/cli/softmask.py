"""Make a Soft Mask (float [0, 1], partial-volume edges) from an image and its hard mask."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lunglesion.io import read_image, read_labelmap, write_float_volume, write_image
from lunglesion.softmask import make_soft_mask


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="CT volume (HU), 8-bit slice, or z-scored slice")
    parser.add_argument("mask", help="hard mask / label map with the image's geometry")
    parser.add_argument("-o", "--output", required=True,
                        help="float volume (.nrrd, .nii.gz, .mha); .png writes 8-bit soft mask x 255")
    parser.add_argument("--domain", choices=("auto", "hu", "uint8", "zscore"), default="auto",
                        help="intensity convention of IMAGE (auto: HU if it holds values below -200)")
    parser.add_argument("--band", type=int, default=2, help="half-width of the edge band in pixels")
    parser.add_argument("--sigma", type=float, default=0.0, help="in-plane smoothing inside the band")


def _domain(array: np.ndarray, requested: str) -> str:
    if requested != "auto":
        return requested
    if array.min() < -200:
        return "hu"
    return "uint8" if array.min() >= 0 and array.max() <= 255 else "zscore"


def run(args: argparse.Namespace) -> int:
    image, mask = read_image(args.image), read_labelmap(args.mask)
    soft = make_soft_mask(image, mask.with_array(mask.array > 0), _domain(image.array, args.domain),
                          args.band, args.sigma)
    output = Path(args.output)
    if output.suffix.lower() == ".png":
        write_image(soft.with_array(np.round(soft.array * 255).astype(np.uint8)), output)
    else:
        write_float_volume(soft, output)
    hard_voxels = int((mask.array > 0).sum())
    print(f"wrote {output}: soft sum {float(soft.array.sum()):.1f} vs {hard_voxels} hard voxels")
    return 0
