"""Few-shot segmentation: label a structure on a few slices, segment it in the query."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lunglesion.cli.progress import progress_bar
from lunglesion.data.labelled2d import IMAGE_SUFFIXES
from lunglesion.errors import EmptyInputError
from lunglesion.io import read_image, read_labelmap, write_image, write_labelmap
from lunglesion.terminology import segment_for_structure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="volume, 2D image, or folder of 2D images to segment")
    parser.add_argument("--support", nargs=2, action="append", required=True, metavar=("IMAGE", "MASK"),
                        help="labelled support: image and its label map (repeatable)")
    parser.add_argument("-o", "--output", required=True, help="labelmap file, or folder of PNG masks")
    parser.add_argument("--model", default="rpnet", help="rpnet, rpnet-proto, copy-nearest, fill-between")
    parser.add_argument("--label", type=int, default=1, help="label value of the structure in the masks")
    parser.add_argument("--iterations", type=int, default=10, help="recurrent refinement steps")
    parser.add_argument("--name", default="structure", help="segment name in the output")


def _as_label(mask, label: int):
    """8-bit masks stored as {0, 255} (the images/ + masks/ convention) mean ``label``."""
    values = np.unique(mask.array)
    if label not in values and set(values.tolist()) <= {0, 255}:
        return mask.with_array(np.where(mask.array == 255, label, 0).astype(np.uint8))
    return mask


def run(args: argparse.Namespace) -> int:
    from lunglesion.fewshot.segment import segment_with_support

    support = [(read_image(image), _as_label(read_labelmap(mask), args.label)) for image, mask in args.support]
    query_path = Path(args.query)
    output = Path(args.output)
    if query_path.is_dir() and not any(query_path.glob("*.dcm")) and any(
            p.suffix.lower() in IMAGE_SUFFIXES for p in query_path.iterdir()):
        files = sorted(p for p in query_path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EmptyInputError(f"no 2D images in {query_path}")
        output.mkdir(parents=True, exist_ok=True)
        for path in files:
            labels = segment_with_support(read_image(path), support, args.model, args.iterations, args.label)
            write_image(labels.with_array((labels.array > 0).astype(np.uint8) * 255), output / f"{path.stem}.png")
        print(f"wrote {len(files)} masks to {output}")
        return 0
    query = read_image(query_path)
    with progress_bar("fewshot") as progress:
        labels = segment_with_support(query, support, args.model, args.iterations, args.label, progress=progress)
    if query.ndim == 2 and output.suffix.lower() == ".png":
        write_image(labels.with_array((labels.array > 0).astype(np.uint8) * 255), output)
    else:
        write_labelmap(labels, output, [segment_for_structure(args.name, args.label)])
    n = int((labels.array > 0).sum())
    print(f"wrote {output}: {n} voxels, {n * labels.voxel_volume_mm3 / 1000:.2f} mL")
    return 0
