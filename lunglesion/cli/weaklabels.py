"""Derive weak labels (per-region lesion scores) from a labelled set: simulates a weakly labelled cohort."""

from __future__ import annotations

import argparse
from pathlib import Path

from lunglesion.weak.ctss import TABLES
from lunglesion.weak.lungfield import LUNG_FIELDS
from lunglesion.weak.regions import MAX_LUNG_PARTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labelled", help="2D set (images/ + masks/), or a folder of volumes (with --masks)")
    parser.add_argument("-o", "--output", required=True, help="CSV: case,region,score (or case,region,low,high)")
    parser.add_argument("--masks", default=None,
                        help="volumes: folder of label maps named like the volumes (lesion = label > 0)")
    parser.add_argument("--regions", default=None,
                        help="volumes: folder of lobe maps (1-5) named like the volumes "
                             "(default: lung thirds of the classical lung mask)")
    parser.add_argument("--table", choices=sorted(TABLES), default="standard",
                        help="CTSS table: the standard COVID table, or the dRAM code's table (paper_code)")
    parser.add_argument("--kind", choices=("score", "interval"), default="score",
                        help="score = CTSS 0-5; interval = the score's percentage interval (low, high)")
    parser.add_argument("--lung-parts", type=int, default=1, choices=range(1, MAX_LUNG_PARTS + 1),
                        help="2D: regions per lung (1 = whole lung, 2-4 = front-to-back bands)")
    parser.add_argument("--lung-field", choices=LUNG_FIELDS, default="classical",
                        help="2D: lungs from the dark pixels alone (classical), or extended by the bundled "
                             "lung-field network, which keeps dense consolidation (learned); train with the same "
                             "(--dram-settings '{\"lung_field\": \"learned\"}')")


def run(args: argparse.Namespace) -> int:
    from lunglesion.weak.weaklabels import derive_weak_labels, labelled_volumes, lesion_coverage

    labelled = (labelled_volumes(args.labelled, args.masks, args.regions) if args.masks
                else Path(args.labelled))
    rows = derive_weak_labels(labelled, Path(args.output), table=args.table, kind=args.kind,
                              lung_parts=args.lung_parts, lung_field=args.lung_field)
    cases = len({row["case"] for row in rows})
    print(f"wrote {args.output}: {len(rows)} regions of {cases} cases")
    coverage = lesion_coverage(rows)
    if coverage is not None:
        print(f"{100 * coverage:.0f} % of the lesion pixels lie in the scored regions; the rest (e.g. dense "
              "consolidation that the lung mask leaves out) is invisible to the weak labels")
    return 0
