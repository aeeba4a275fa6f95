"""Segment lesions in a CT volume or slice and write the labelmap (and probabilities) atomically."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from lunglesion.cli.progress import progress_bar
from lunglesion.errors import InputError
from lunglesion.inference.pipeline import SegmentationResult, segment_image
from lunglesion.io import read_image, write_float_volume, write_image, write_labelmap
from lunglesion.io.atomic import atomic_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="CT volume (NIfTI, NRRD, MHA, DICOM folder or file) or a 2D slice")
    parser.add_argument("-o", "--output", required=True, help="labelmap: .seg.nrrd, .nrrd, .nii.gz, .png (2D)")
    parser.add_argument("--model", default=None, help="registered model (default: the task's default)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                        help="left-right flip test-time augmentation (default: as the model is registered)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--prob", default=None, help="also write the lesion probability map here")
    parser.add_argument("--all-slices", action="store_true", help="do not restrict lesions to the lungs")
    parser.add_argument("--multiclass", action="store_true", help="GGO and consolidation as separate segments")
    parser.add_argument("--overlay", default=None, help="PNG montage of axial slices with outlines")
    parser.add_argument("--stats", default=None, help="CSV of lesion volume and lung involvement")
    parser.add_argument("--seed", default=None, help="nodule click 'X,Y,Z' (with --model dsnet)")
    parser.add_argument("--seed-space", choices=("ras", "ijk"), default="ras",
                        help="seed in RAS millimetres (Slicer's coordinates) or voxel index i,j,k")


def _print_statistics(result: SegmentationResult) -> None:
    for row in result.statistics:
        parts = [f"{row['segment']}: {row['volume_ml']:.2f} mL"]
        for key, label in (("percent_right_lung", "right lung"), ("percent_left_lung", "left lung"),
                           ("percent_lungs", "both lungs")):
            if key in row:
                parts.append(f"{row[key]:.2f} % of {label}")
        print(", ".join(parts))


def _write_labels(result: SegmentationResult, output: Path) -> None:
    if result.labelmap.ndim == 2 and output.suffix.lower() in (".png", ".jpg", ".bmp"):
        scaled = (result.labelmap.array * (255 // max(1, result.labelmap.array.max(initial=1)))).astype(np.uint8)
        write_image(result.labelmap.with_array(scaled), output)
    else:
        write_labelmap(result.labelmap, output, result.segments)


def _write_statistics(result: SegmentationResult, path: Path) -> None:
    keys = list(dict.fromkeys(k for row in result.statistics for k in row))
    with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(result.statistics)


def run(args: argparse.Namespace) -> int:
    image = read_image(args.input)
    output = Path(args.output)
    if args.seed is not None:
        return _run_seeded(args, image, output)
    with progress_bar("segment") as progress:
        result = segment_image(image, model=args.model, device=args.device, threshold=args.threshold,
                               restrict_to_lungs=not args.all_slices, keep_probability=args.prob is not None,
                               multiclass=args.multiclass, progress=progress, tta=args.tta)
    if args.prob:
        write_float_volume(result.probability, Path(args.prob))
    _write_labels(result, output)
    if args.stats:
        _write_statistics(result, Path(args.stats))
    if args.overlay:
        from lunglesion.visualize import overlay_montage

        overlay_montage(image, result.labelmap, result.segments, args.overlay, title=Path(args.input).name)
    print(f"wrote {output}")
    _print_statistics(result)
    return 0


def _run_seeded(args: argparse.Namespace, image, output: Path) -> int:
    from lunglesion.inference.nodule import segment_nodule_at
    from lunglesion.terminology import NODULE

    try:
        seed = tuple(float(v) for v in args.seed.split(","))
    except ValueError as exc:
        raise InputError(f"--seed must be three numbers 'X,Y,Z', got '{args.seed}'") from exc
    if len(seed) != 3:
        raise InputError(f"--seed must be three numbers 'X,Y,Z', got '{args.seed}'")
    soft, hard = segment_nodule_at(image, seed, seed_space=args.seed_space, model=args.model or "dsnet")
    if args.prob:
        write_float_volume(soft, Path(args.prob))
    write_labelmap(hard, output, [NODULE])
    volume_ml = float(hard.array.astype(bool).sum() * hard.voxel_volume_mm3 / 1000.0)
    print(f"wrote {output}")
    print(f"nodule: {volume_ml:.3f} mL")
    return 0
