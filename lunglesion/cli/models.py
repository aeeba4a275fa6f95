"""List the registered models with their task, accuracy and weight file."""

from __future__ import annotations

import argparse
import json

from lunglesion.registry import list_models, models_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the registry entries as JSON")


def run(args: argparse.Namespace) -> int:
    entries = list_models()
    if args.json:
        print(json.dumps([e.__dict__ for e in entries], indent=2))
        return 0
    if not entries:
        print(f"no trained models registered in {models_dir() / 'models.json'}")
        return 0
    print(f"{'name':<20} {'task':<20} {'val dice':>8}  {'MB':>5}  description")
    for e in entries:
        dice = next((v for k, v in e.metrics.items() if "dice" in k and isinstance(v, float)), None)
        shown = "-" if dice is None else f"{dice:.4f}"
        files = e.weight_files()
        size_mb = sum(f.stat().st_size for f in files) / 1e6 if all(f.is_file() for f in files) else float("nan")
        mark = "*" if e.default else ""
        description = e.description if len(e.description) <= 90 else e.description[:87] + "..."
        print(f"{e.name + mark:<20} {e.task:<20} {shown:>8}  {size_mb:5.1f}  {description}")
    print("(* = default for its task)")
    return 0
