"""Held-out-class evaluation: RP-Net vs prototype baseline vs copy-nearest / fill-between.

``python -m lunglesion.fewshot.evaluate --out runs/rpnet/eval`` writes ``heldout.csv``,
``summary.json`` and prints the table. Classes liver, spleen, kidney_left/right are never
trained on. Two protocols, both through :func:`segment_with_support`:

* ``same``: k slices of the volume labelled (centres of k equal chunks of the structure's
  extent), the volume itself is the query; Dice over every other slice of the volume,
  so stopping where the structure ends is part of the score;
* ``cross``: k labelled slices of the totalseg/ct volume, the query is another CT volume's
  labelled extent (the paper's protocol, Roy et al.); Dice over it (networks only).

``--interactive`` adds the chest_ct nodule labelled on its central slice.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from lunglesion.fewshot.baselines import copy_nearest, fill_between
from lunglesion.fewshot.episodes import HELD_OUT_CLASSES
from lunglesion.fewshot.segment import segment_with_support
from lunglesion.fewshot.slices import LAYOUT, axial_arrays
from lunglesion.image import Image
from lunglesion.io import read_image, read_labelmap
from lunglesion.metrics import dice
from lunglesion.preprocessing.slicing import axial_view

CROSS_SUPPORT = "totalseg/ct"  # cross-volume episodes take their support from this volume
VOLUMES = (  # (source, image, labels, class map)
    ("totalseg/ct", "totalseg/ct.nii.gz", "totalseg/ct_seg_total_v1.nii.gz", "total_v1"),
    ("totalseg/ct_sm", "totalseg/ct_sm.nii.gz", "totalseg/ct_sm_seg_total_v2.nii.gz", "total"),
    ("totalseg/mr_sm", "totalseg/mr_sm.nii.gz", "totalseg/mr_sm_seg_total_mr.nii.gz", "total_mr"),
    ("dicom/totalseg", "dicom/totalseg_ct_series", "dicom/totalseg_ct_series_seg.nii.gz", "total"),
)


def chunk_centres(slices: np.ndarray, k: int) -> list[int]:
    """Centre slice of each of k equal chunks of the labelled extent (Roy et al.)."""
    lo, hi = int(slices.min()), int(slices.max()) + 1
    edges = np.linspace(lo, hi, k + 1)
    return sorted({int(np.clip(round((a + b - 1) / 2), lo, hi - 1)) for a, b in zip(edges[:-1], edges[1:])})


def keep_slices(mask_axial: np.ndarray, keep: list[int], like: Image) -> Image:
    """A label Image holding only the ``keep`` axial slices of ``mask_axial``."""
    partial = np.zeros_like(mask_axial)
    partial[keep] = mask_axial[keep]
    return like.with_array(axial_view(like, LAYOUT).to_image_array(partial.astype(np.uint8)))


def _baseline_rows(m: np.ndarray, keep: list[int], rest: np.ndarray, info: dict) -> list[dict]:
    """copy-nearest (to every slice, and with the copy range tuned on the answer) and fill-between."""
    labelled = {z: m[z] for z in keep}
    rows = [{**info, "model": "copy-nearest", "dice": dice(copy_nearest(labelled, m.shape[0])[rest], m[rest])}]
    best = max(dice(copy_nearest(labelled, m.shape[0], d)[rest], m[rest]) for d in range(m.shape[0]))
    rows.append({**info, "model": "copy-nearest-oracle-range", "dice": best})
    if len(keep) > 1:
        rows.append({**info, "model": "fill-between", "dice": dice(fill_between(labelled, m.shape[0])[rest], m[rest])})
    return rows


def run(data: Path, models: list[str], shots: list[int], out: Path, interactive: bool,
        baselines: bool) -> dict:
    maps = json.loads((data / "totalseg" / "class_maps.json").read_text())
    cases = defaultdict(list)  # class name -> [(source, modality, image, axial mask)]
    for source, image_path, label_path, key in VOLUMES:
        image = read_image(data / image_path)
        lab = axial_arrays(read_labelmap(data / label_path))
        names = {name: int(n) for n, name in maps[key].items()}
        for cls in HELD_OUT_CLASSES:
            m = lab == names[cls]
            if m.any((1, 2)).sum() >= 3:
                cases[cls].append((source, "mr" if "mr" in source else "ct", image, m))
    rows = []
    for cls, vols in sorted(cases.items()):
        for source, modality, image, m in vols:
            present = np.nonzero(m.any((1, 2)))[0]
            for k in shots:
                keep = chunk_centres(present, k)
                support = [(image, keep_slices(m, keep, image))]
                rest = np.ones(m.shape[0], bool)
                rest[keep] = False
                for model in models:
                    pred = axial_arrays(segment_with_support(image, support, model=model)) > 0
                    rows.append({"protocol": "same", "class": cls, "query": source, "support": source, "k": k,
                                 "model": model, "dice": dice(pred[rest], m[rest])})
                if baselines:
                    rows += _baseline_rows(m, keep, rest, {"protocol": "same", "class": cls, "query": source,
                                                           "support": source, "k": k})
                for s_source, s_mod, s_image, s_m in vols:
                    if s_source != CROSS_SUPPORT or s_source == source or s_mod != modality:
                        continue
                    s_keep = chunk_centres(np.nonzero(s_m.any((1, 2)))[0], k)
                    s_support = [(s_image, keep_slices(s_m, s_keep, s_image))]
                    lo, hi = int(present.min()), int(present.max()) + 1
                    q_axial = axial_arrays(image)[lo:hi]
                    q = Image(q_axial, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
                    for model in models:
                        pred = segment_with_support(q, s_support, model=model).array > 0
                        rows.append({"protocol": "cross", "class": cls, "query": source, "support": s_source,
                                     "k": k, "model": model, "dice": dice(pred, m[lo:hi])})
        print(f"{cls}: {len(rows)} rows", flush=True)
    if interactive:
        image = read_image(data / "chest_ct" / "lung1_image.nrrd")
        m = axial_arrays(read_labelmap(data / "chest_ct" / "lung1_label.nrrd")) > 0
        present = np.nonzero(m.any((1, 2)))[0]
        keep = chunk_centres(present, 1)
        rest = np.ones(m.shape[0], bool)
        rest[keep] = False
        rows += _baseline_rows(m, keep, rest, {"protocol": "interactive", "class": "lung_nodule",
                                               "query": "chest_ct", "support": "chest_ct", "k": 1})
        for model in models:
            pred = axial_arrays(segment_with_support(image, [(image, keep_slices(m, keep, image))], model=model)) > 0
            rows.append({"protocol": "interactive", "class": "lung_nodule", "query": "chest_ct",
                         "support": "chest_ct", "k": 1, "model": model, "dice": dice(pred[rest], m[rest])})
    out.mkdir(parents=True, exist_ok=True)
    with (out / "heldout.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary: dict[str, float] = {}
    groups = defaultdict(list)
    for r in rows:
        groups[f"{r['protocol']}/{r['k']}-shot/{r['model']}"].append(r["dice"])
    for key, values in sorted(groups.items()):
        summary[key] = round(float(np.mean(values)), 4)
        print(f"{key:45s} Dice {np.mean(values):.3f}  (n={len(values)})")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    parser.add_argument("--models", nargs="*", default=["rpnet", "rpnet-proto"])
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 3])
    parser.add_argument("--out", type=Path, default=Path("runs/rpnet/eval"))
    parser.add_argument("--interactive", action="store_true")
    parser.add_argument("--baselines", action="store_true", help="add copy-nearest and fill-between rows")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    run(args.data, args.models, args.shots, args.out, args.interactive, args.baselines)


if __name__ == "__main__":
    main()
