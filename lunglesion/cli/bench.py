"""Benchmark models: slices/s, ms/slice, end-to-end volume time, memory, parameters, GFLOPs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lunglesion.bench import bench_models, bench_softmask

DEFAULT_VOLUME = Path(__file__).resolve().parents[2] / "Resources" / "SampleData" / "lung1_chest_ct.nrrd"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", default=None,
                        help="registered model to measure (repeatable; default bsnet-light), or an architecture "
                             "without weights (e.g. bsnet, ncovsegnet: network timed with random weights); "
                             "'unet' is always added as the reference")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="all = CPU, plus CUDA when present")
    parser.add_argument("--volume", default=str(DEFAULT_VOLUME), help="real CT tiled into the synthetic volume")
    parser.add_argument("--depth", type=int, default=300, help="slices of the synthetic volume")
    parser.add_argument("--no-volume", action="store_true", help="skip the end-to-end volume timing")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--softmask", action="store_true",
                        help="also time the Soft Mask pipeline on the volume with 30 drawn-in lesions")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")


def run(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys((args.model or ["bsnet-light"]) + ["unet"]))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "all" else [args.device]
    rows = bench_models(names, devices, None if args.no_volume else Path(args.volume), args.depth, args.batch,
                        args.repeats, args.threads)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    print("  ".join(f"{k:>14}" for k in keys))
    for row in rows:
        print("  ".join(f"{row.get(k, ''):>14.3f}" if isinstance(row.get(k), float) else f"{row.get(k, ''):>14}"
                        for k in keys))
    for device in devices:
        reference = next(r for r in rows if r["model"] == "unet" and r["device"].startswith(device))
        for row in rows:
            if row["device"].startswith(device) and row["model"] != "unet":
                ratio = row["slices_per_s_batched"] / reference["slices_per_s_batched"]
                print(f"{row['model']} vs unet on {device}: {ratio:.2f}x slices/s")
    if args.softmask:
        row = bench_softmask(Path(args.volume), args.depth)
        rows.append(row)
        print("softmask: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0
