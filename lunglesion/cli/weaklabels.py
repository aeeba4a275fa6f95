"""Derive weak labels (per-region lesion scores) from a labelled set: simulates a weakly labelled cohort."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labelled", help="2D set (images/ + masks/) or folder of volumes with label maps")
    parser.add_argument("-o", "--output", required=True, help="CSV: case,region,score (or low,high)")
    parser.add_argument("--table", choices=("standard", "dram-code"), default="standard",
                        help="CTSS table: standard COVID table, or the dRAM code's table")


def run(args: argparse.Namespace) -> int:
    from lunglesion.weak.weaklabels import derive_weak_labels

    derive_weak_labels(Path(args.labelled), Path(args.output), table=args.table)
    print(f"wrote {args.output}")
    return 0
