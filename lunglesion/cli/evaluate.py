"""Score a model on a labelled set; the last printed line is ``dice=<mean Dice>``."""

from __future__ import annotations

import argparse
from pathlib import Path

from lunglesion.errors import InputError
from lunglesion.evaluation import EvaluationReport, evaluate_labelled_set, evaluate_volume

SHOWN = ("dice", "iou", "sensitivity", "specificity", "precision", "mae", "s_alpha", "e_phi", "hd95", "asd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--data", default=None, help="folder with images/ + masks/ (same stems)")
    parser.add_argument("--image", default=None, help="CT volume (instead of --data)")
    parser.add_argument("--label", default=None, help="label map of --image")
    parser.add_argument("--stems", default=None,
                        help="comma-separated image names to score (e.g. a model card's validation split)")
    parser.add_argument("--masks", default="masks",
                        help="name of the label folder beside images/ (e.g. multiclass for COVID-SemiSeg)")
    parser.add_argument("--multiclass", action="store_true", help="masks hold {0 bg, 1 GGO, 2 consolidation}")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--minmax", action="store_true",
                        help="paper-faithful per-image min-max normalisation before thresholding")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                        help="left-right flip test-time augmentation (default: as the model is registered)")
    parser.add_argument("--report", default=None, help="report stem: writes STEM.json and STEM.csv")


def _print(report: EvaluationReport) -> None:
    print(f"model {report.model} on {report.data}: {len(report.rows)} rows")
    header = "".join(f"{k:>12}" for k in SHOWN if k in report.summary)
    print(f"{'':<22}{header}")
    for name, metrics in report.per_class.items():
        print(f"{name:<22}" + "".join(f"{metrics[k]:>12.4f}" for k in SHOWN if k in metrics))
    print(f"{'all lesion' if report.per_class else 'mean over cases':<22}"
          + "".join(f"{report.summary[k]:>12.4f}" for k in SHOWN if k in report.summary))


def run(args: argparse.Namespace) -> int:
    if args.data:
        stems = args.stems.split(",") if args.stems else None
        report = evaluate_labelled_set(args.model, Path(args.data), args.multiclass, args.threshold,
                                       args.device, args.minmax, stems, args.masks, args.tta)
    elif args.image and args.label:
        report = evaluate_volume(args.model, Path(args.image), Path(args.label), args.threshold, args.device,
                                 args.tta)
    else:
        raise InputError("give --data DIR (images/ + masks/) or --image VOLUME --label LABELMAP")
    json_path, csv_path = report.write(Path(args.report or f"evaluation_{args.model}"))
    _print(report)
    print(f"report: {json_path} {csv_path}")
    print(f"dice={report.headline_dice:.4f}")
    return 0
