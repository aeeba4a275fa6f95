"""Weak labels: per-region lesion scores (``case,region,score``) or intervals (``case,region,low,high``).

Deriving them from a labelled set is how a weakly labelled cohort is simulated, and the
only place in the dRAM pipeline where masks are read. Intervals are in percent.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image
from lunglesion.io.atomic import atomic_output
from lunglesion.weak import ctss
from lunglesion.weak.lungfield import slice_regions
from lunglesion.weak.regions import lung2d_names


@dataclass(frozen=True)
class WeakLabel:
    """Lesion-fraction interval ``[low, high]`` (fractions) of one region; ``score`` if given as CTSS."""

    low: float
    high: float
    score: int | None = None


def region_rows(case: str, regions: np.ndarray, names: dict[int, str], mask: np.ndarray,
                table: str = "standard") -> list[dict[str, object]]:
    """One row per non-empty region: case, region, fraction (in [0, 1]), its CTSS score, and the
    lesion pixels in the region (``lesion``) and in the whole case (``case_lesion``)."""
    if regions.shape != mask.shape:
        raise InputError(f"case {case}: region map {regions.shape} and mask {mask.shape} differ in size")
    lesion = mask > 0
    rows = []
    for value, name in names.items():
        region = regions == value
        if region.any():
            fraction = float(lesion[region].mean())
            rows.append({"case": case, "region": name, "fraction": fraction,
                         "score": ctss.fraction_to_score(fraction, table), "lesion": int(lesion[region].sum()),
                         "case_lesion": int(lesion.sum())})
    return rows


def lesion_coverage(rows: Sequence[dict[str, object]]) -> float | None:
    """Share of the lesion pixels of the cases of ``rows`` (:func:`region_rows`) that lie in a scored
    region; the rest is invisible to the weak labels. None without lesion."""
    total = sum(int(r["case_lesion"]) for r in {str(r["case"]): r for r in rows}.values())
    return sum(int(r["lesion"]) for r in rows) / total if total else None


def rows_2d(folder: Path, table: str = "standard", stems: Sequence[str] | None = None,
            mask_folder: str = "masks", lung_parts: int = 1, lung_field: str = "classical"
            ) -> list[dict[str, object]]:
    """Region rows (:func:`region_rows`) of a 2D folder: the two lungs (or ``lung_parts`` bands of
    each; :func:`~lunglesion.weak.lungfield.slice_regions` with ``lung_field``) of every slice of
    ``images/``, lesion fractions from ``mask_folder/`` (pixels > 127),
    optionally only ``stems``."""
    from lunglesion.data.labelled2d import list_pairs, read_grey_unit, read_label_png

    wanted = set(stems) if stems is not None else None
    rows: list[dict[str, object]] = []
    for stem, image_path, mask_path in list_pairs(folder, mask_folder):
        if wanted is None or stem in wanted:
            regions = slice_regions(read_grey_unit(image_path), lung_parts, lung_field)
            rows += region_rows(stem, regions, lung2d_names(lung_parts), read_label_png(mask_path), table)
    return rows


def labelled_volumes(volumes: Path | str, masks: Path | str, regions: Path | str | None = None
                     ) -> Iterator[tuple[str, Image, Image, dict[int, str]]]:
    """``(case, regions, label map, names)`` of every volume in ``volumes`` with a label map of the
    same name in ``masks`` (lesion = label > 0). Regions: the lobe map of the same name in
    ``regions`` (values 1-5), else the lung thirds of the classical lung mask."""
    from lunglesion.io import read_image, read_labelmap
    from lunglesion.weak.pipeline import volume_files
    from lunglesion.weak.regions import volume_regions

    images, labels = volume_files(Path(volumes)), volume_files(Path(masks))
    lobes = volume_files(Path(regions)) if regions else {}
    cases = sorted(set(images) & set(labels))
    if not cases:
        raise EmptyInputError(f"no volume in {volumes} has a label map of the same name in {masks}")
    for case in cases:
        image, label = read_image(images[case]), read_labelmap(labels[case])
        if not image.same_geometry(label):
            raise InputError(f"case {case}: the label map's grid differs from the volume's")
        region_map, names = volume_regions(image, lobes.get(case))
        yield case, region_map, label, names


def _check_format(table: str, kind: str) -> None:
    """Fail on an unknown CTSS table or CSV kind."""
    if kind not in ("score", "interval"):
        raise InputError(f"weak-label kind must be 'score' or 'interval', got '{kind}'")
    ctss.table(table)


def derive_weak_labels(labelled: Path | str | Iterable[tuple[str, Image, Image, dict[int, str]]],
                       out_csv: Path | str, table: str = "standard", kind: str = "score",
                       stems: Sequence[str] | None = None, lung_parts: int = 1, lung_field: str = "classical"
                       ) -> list[dict[str, object]]:
    """Write the weak-label CSV of a labelled set; returns its rows.

    ``labelled`` is a 2D folder (``images/`` + ``masks/``; regions = the two lungs of each
    slice, or ``lung_parts`` bands of each, of the ``lung_field``; optionally only ``stems``) or an
    iterable of ``(case, regions, label_map, names)``
    for volumes (regions from :mod:`lunglesion.weak.regions`). ``kind`` is ``score``
    (``case,region,score``, CTSS of ``table``) or ``interval`` (``case,region,low,high``
    in percent: the score's interval).
    """
    _check_format(table, kind)  # before the masks are read
    if isinstance(labelled, (str, Path)):
        rows = rows_2d(Path(labelled), table, stems, lung_parts=lung_parts, lung_field=lung_field)
    else:
        rows = []
        for case, regions, label_map, names in labelled:
            rows += region_rows(case, np.asarray(regions.array), names, np.asarray(label_map.array), table)
    write_weak_labels(rows, out_csv, table, kind)
    return rows


def write_weak_labels(rows: Sequence[dict[str, object]], out_csv: Path | str, table: str = "standard",
                      kind: str = "score") -> None:
    """Write region rows as a score or interval CSV (atomically)."""
    _check_format(table, kind)
    if not rows:
        raise EmptyInputError("no region with voxels found: no weak labels to write")
    with atomic_output(Path(out_csv)) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        if kind == "score":
            writer.writerow(["case", "region", "score"])
            writer.writerows([r["case"], r["region"], r["score"]] for r in rows)
        else:
            writer.writerow(["case", "region", "low", "high"])
            for r in rows:
                low, high = ctss.score_to_interval(int(r["score"]), table)
                writer.writerow([r["case"], r["region"], f"{100 * low:g}", f"{100 * high:g}"])


def read_weak_labels(path: Path | str, table: str = "standard") -> dict[tuple[str, str], WeakLabel]:
    """Read a score or interval CSV into ``{(case, region): WeakLabel}`` (fractions)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weak-label file not found: {path}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = set(reader.fieldnames or [])
        if not ({"case", "region", "score"} <= fields or {"case", "region", "low", "high"} <= fields):
            raise InputError(f"{path}: columns must be case,region,score or case,region,low,high")
        labels: dict[tuple[str, str], WeakLabel] = {}
        for line, row in enumerate(reader, start=2):
            key = (row["case"].strip(), row["region"].strip())
            try:
                if {"case", "region", "score"} <= fields:
                    score = int(row["score"])
                    labels[key] = WeakLabel(*ctss.score_to_interval(score, table), score=score)
                else:
                    low, high = float(row["low"]) / 100, float(row["high"]) / 100
                    if not 0 <= low <= high <= 1:
                        raise ValueError(f"interval [{row['low']}, {row['high']}] is not within 0-100 %")
                    labels[key] = WeakLabel(low, high)
            except (ValueError, InputError) as exc:
                raise InputError(f"{path} line {line}: {exc}") from exc
    if not labels:
        raise EmptyInputError(f"{path} holds no weak labels")
    return labels
