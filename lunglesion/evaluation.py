"""Score a registered model on a labelled 2D set or on a volume with its label map."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lunglesion.data.labelled2d import list_pairs, read_grey_unit, read_label_png
from lunglesion.errors import InputError
from lunglesion.inference.pipeline import segment_image
from lunglesion.inference.predictor import Predictor
from lunglesion.io import read_image, read_labelmap
from lunglesion.io.atomic import atomic_output
from lunglesion.io.validation import require_3d
from lunglesion.metrics import evaluate_pair, summarise

CLASS_NAMES = {1: "ground-glass opacity", 2: "consolidation"}


@dataclass
class EvaluationReport:
    """Per-case metric rows and their means (``summary``; per class for multi-class)."""

    model: str
    data: str
    rows: list[dict[str, float | str]]
    summary: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def headline_dice(self) -> float:
        """Mean Dice (over images; for multi-class, the mean over the lesion classes)."""
        if self.per_class:
            return float(np.mean([m["dice"] for m in self.per_class.values()]))
        return float(self.summary["dice"])

    def write(self, stem: Path) -> tuple[Path, Path]:
        """``stem.json`` (summary + rows) and ``stem.csv`` (rows), written atomically."""
        stem = Path(stem)
        json_path, csv_path = stem.with_suffix(".json"), stem.with_suffix(".csv")
        payload = {"model": self.model, "data": self.data, "summary": self.summary,
                   "per_class": self.per_class, "dice": self.headline_dice, "cases": self.rows}
        with atomic_output(json_path) as tmp:
            tmp.write_text(json.dumps(payload, indent=1))
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        with atomic_output(csv_path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        return json_path, csv_path


def evaluate_labelled_set(model: str, data: Path, multiclass: bool = False, threshold: float = 0.5,
                          device: str = "auto", minmax: bool = False,
                          stems: list[str] | None = None, mask_folder: str = "masks",
                          tta: bool | None = None) -> EvaluationReport:
    """Metrics on ``data/images`` + ``data/masks`` (binary, or classes {0, 1, 2} with ``multiclass``).

    ``stems`` restricts the evaluation to those image names (e.g. a validation split).
    """
    pairs = list_pairs(Path(data), mask_folder)
    if stems is not None:
        wanted = set(stems)
        missing = wanted - {stem for stem, _, _ in pairs}
        if missing:
            raise InputError(f"images not found in {data}: {', '.join(sorted(missing))}")
        pairs = [pair for pair in pairs if pair[0] in wanted]
    predictor = Predictor(model, device, tta=tta)
    images = [read_grey_unit(image_path) for _, image_path, _ in pairs]
    masks = [read_label_png(mask_path, multiclass=multiclass) for _, _, mask_path in pairs]
    probs = predictor.predict(images)
    rows: list[dict[str, float | str]] = []
    per_class: dict[str, dict[str, float]] = {}
    if multiclass and predictor.classes > 1:
        for cls, name in CLASS_NAMES.items():
            class_rows = [evaluate_pair(p[cls], m == cls, threshold, minmax=minmax) for p, m in zip(probs, masks)]
            per_class[name] = summarise(class_rows)
            rows += [{"case": stem, "class": name, **r} for (stem, _, _), r in zip(pairs, class_rows)]
        lesion = [evaluate_pair(1 - p[0], m > 0, threshold, minmax=minmax) for p, m in zip(probs, masks)]
        summary = summarise(lesion)
    else:
        if multiclass:
            masks = [(m > 0).astype(np.uint8) for m in masks]
        lesion = [evaluate_pair(p, m, threshold, minmax=minmax) for p, m in zip(probs, masks)]
        rows = [{"case": stem, **r} for (stem, _, _), r in zip(pairs, lesion)]
        summary = summarise(lesion)
    return EvaluationReport(model, str(data), rows, summary, per_class)


def evaluate_volume(model: str, image_path: Path, label_path: Path, threshold: float = 0.5,
                    device: str = "auto", tta: bool | None = None) -> EvaluationReport:
    """Metrics (with HD95 and ASD in mm) of ``segment`` on a CT volume against its label map."""
    image = require_3d(read_image(image_path), f"volume {Path(image_path).name}")
    label = read_labelmap(label_path)
    result = segment_image(image, model=model, device=device, threshold=threshold, keep_probability=True,
                           tta=tta)
    spacing = tuple(reversed(image.spacing))
    metrics = evaluate_pair(result.probability.array, label.array > 0, threshold, spacing=spacing)
    row = {"case": Path(image_path).name, **metrics}
    return EvaluationReport(model, str(image_path), [row], {k: float(v) for k, v in metrics.items()})
