"""Segment lung lesions in every CT of a folder, headless.

In Slicer::

    Slicer --no-main-window --python-script batch_segment.py --input DIR_OR_FILE --output DIR --model NAME

or with plain Python and the ``slicer-core`` wheel::

    python batch_segment.py --input DIR_OR_FILE --output DIR [--model NAME] [--device cpu]

Every CT found (NIfTI, NRRD, MHA file or DICOM series folder, searched recursively) gives
``<output>/<case>.seg.nrrd`` and one row of ``<output>/statistics.csv``; a case that fails
is reported on stderr and in the CSV (``status`` = error) and the run goes on. The exit
status is 0 only when every case succeeded, 1 otherwise (2 for bad arguments); an
exception never leaves Slicer running.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve()
for candidate in (HERE.parents[2], HERE.parents[2] / "LungLesionSeg"):  # installed tree, source tree
    if (candidate / "LungLesionSegLib").is_dir() or (candidate / "lunglesion").is_dir():
        sys.path.insert(0, str(candidate))

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def _is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(VOLUME_SUFFIXES) and not name.endswith(".seg.nrrd")


def _is_dicom_folder(folder: Path) -> bool:
    import SimpleITK as sitk

    return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def find_cases(root: Path) -> list[Path]:
    """CT volume files and DICOM series folders under ``root`` (or ``root`` itself)."""
    from lunglesion.errors import InputError

    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(f"input not found: {root}")
    cases = []
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        files = sorted(p for p in folder.iterdir() if p.is_file())
        cases += [p for p in files if _is_volume_file(p)]
        if any(not _is_volume_file(p) for p in files) and _is_dicom_folder(folder):
            cases.append(folder)
    if not cases:
        raise InputError(f"no CT volume (NIfTI, NRRD, MHA) or DICOM series found in {root}")
    return cases


def case_name(path: Path, root: Path) -> str:
    """A file-name-safe case name: the path below ``root`` without volume suffixes."""
    relative = path.relative_to(root) if path != root and root.is_dir() else Path(path.name)
    name = "_".join(relative.parts)
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def flatten_statistics(statistics: list[dict]) -> dict[str, object]:
    """One CSV row from per-segment statistics: ``<segment> <measure>`` columns."""
    row: dict[str, object] = {}
    for entry in statistics:
        segment = entry.get("segment", "segment")
        row.update({f"{segment} {key}": value for key, value in entry.items() if key != "segment"})
    return row


def run(argv: list[str] | None = None) -> int:
    """Process every case; returns the exit status."""
    parser = argparse.ArgumentParser(description="Segment lung lesions in every CT of a folder.")
    parser.add_argument("--input", required=True, type=Path, help="CT file, or folder searched recursively")
    parser.add_argument("--output", required=True, type=Path, help="folder for .seg.nrrd files and statistics.csv")
    parser.add_argument("--model", default="", help="registry model name (default: the registry's default)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--no-restrict-to-lungs", dest="restrict_to_lungs", action="store_false")
    parser.add_argument("--multiclass", action="store_true")
    args = parser.parse_args(argv)

    import slicer

    from LungLesionSegLib import headless, mrml_bridge
    from LungLesionSegLib.logic import SegmentationLogic, SegmentationOptions, write_statistics_csv
    from lunglesion.errors import LungLesionError
    from lunglesion.io import read_image

    options = SegmentationOptions(args.model, args.device, args.threshold, False, args.restrict_to_lungs,
                                  args.multiclass)
    try:
        cases = find_cases(args.input)
    except LungLesionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    scene = headless.ensure_scene()
    logic = SegmentationLogic(scene)
    rows: list[dict[str, object]] = []
    failures = 0
    for number, path in enumerate(cases, start=1):
        name = case_name(path, args.input)
        print(f"[{number}/{len(cases)}] {name}", flush=True)
        start = time.monotonic()
        row: dict[str, object] = {"case": name, "input": str(path), "model": args.model or "default"}
        try:
            scene.Clear(0)
            volume = mrml_bridge.image_to_volume_node(read_image(path), scene, name)
            outputs = logic.process(volume, options)
            output = mrml_bridge.save_segmentation(outputs.segmentation, args.output / f"{name}.seg.nrrd")
            statistics = mrml_bridge.table_node_to_rows(outputs.table)
            row.update(status="ok", device=outputs.device, seconds=round(time.monotonic() - start, 2),
                       segmentation=str(output), **flatten_statistics(statistics))
        except Exception as error:  # one bad case must not stop the cohort
            failures += 1
            message = str(error) if isinstance(error, LungLesionError) else f"{type(error).__name__}: {error}"
            print(f"error: case {name} ({path}) failed: {message}", file=sys.stderr, flush=True)
            if not isinstance(error, LungLesionError):
                traceback.print_exc()
            row.update(status="error", message=message)
        rows.append(row)
        write_statistics_csv(rows, args.output / "statistics.csv")
        if hasattr(slicer, "app"):
            slicer.app.processEvents()
    print(f"{len(cases) - failures} of {len(cases)} cases segmented; statistics in "
          f"{args.output / 'statistics.csv'}", flush=True)
    return 0 if failures == 0 else 1


def main() -> None:
    """Run and always exit (Slicer would otherwise stay open after an uncaught exception)."""
    status = 1
    try:
        status = run(sys.argv[1:])
    except SystemExit as stop:  # argparse errors / --help
        status = stop.code if isinstance(stop.code, int) else 2
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.exit(status)


if __name__ == "__main__":
    main()
