"""Segment a CT volume or a 2D slice with a registered 2D network.

For a HU volume: check it is a CT, mask the lungs classically, reorder it to axial slices
in the training layout, window HU to the training intensity domain, crop every slice to
the in-plane lung bounding box (the training slices are lung-cropped), predict the slices
that contain lung, paste the probabilities back, keep lesions inside the lungs, and
measure lesion volume and the percentage of each lung.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lunglesion.errors import Cancelled, EmptyInputError
from lunglesion.image import Image
from lunglesion.inference.predictor import Predictor
from lunglesion.io.validation import require_ct, require_nonempty
from lunglesion.lungmask import segment_lungs
from lunglesion.preprocessing.slicing import axial_view
from lunglesion.preprocessing.windowing import hu_to_unit, to_network_domain
from lunglesion.registry import default_model_name
from lunglesion.terminology import CONSOLIDATION, GROUND_GLASS_OPACITY, INFECTION, NODULE, SegmentInfo

LUNG_CROP_MARGIN_MM = 8.0
SLICE_LAYOUT = "covid_semiseg"

ProgressCallback = Callable[[float, str], None]


@dataclass
class SegmentationResult:
    """Labelmap, its segments, optional probabilities and lungs, and lesion statistics."""

    labelmap: Image
    segments: list[SegmentInfo]
    probability: Image | None = None
    lungs: Image | None = None
    statistics: list[dict[str, float | str]] = field(default_factory=list)


def _output_segments(task: str, multiclass: bool) -> list[SegmentInfo]:
    if multiclass:
        return [GROUND_GLASS_OPACITY, CONSOLIDATION]
    return [NODULE] if "nodule" in task else [INFECTION]


def _lung_bbox(lungs_view: np.ndarray, spacing_rc: tuple[float, float]) -> tuple[slice, slice]:
    rows = np.flatnonzero(lungs_view.any(axis=(0, 2)))
    cols = np.flatnonzero(lungs_view.any(axis=(0, 1)))
    mr, mc = (int(round(LUNG_CROP_MARGIN_MM / s)) for s in spacing_rc)
    h, w = lungs_view.shape[1:]
    return (slice(max(rows[0] - mr, 0), min(rows[-1] + mr + 1, h)),
            slice(max(cols[0] - mc, 0), min(cols[-1] + mc + 1, w)))


def _lung_regions(lungs: Image) -> list[tuple[str, np.ndarray]]:
    """Right, left and both lungs; for volumes also the upper/middle/lower third of each lung
    (the regions weak labels score, see :mod:`lunglesion.weak.regions`)."""
    regions = [("right_lung", lungs.array == 1), ("left_lung", lungs.array == 2), ("lungs", lungs.array > 0)]
    if lungs.ndim == 3 and lungs.array.any():
        from lunglesion.weak.regions import regions_from_lungs

        thirds, names = regions_from_lungs(lungs)
        regions += [(names[value], thirds.array == value) for value in sorted(names)]
    return regions


def lesion_statistics(labelmap: Image, segments: list[SegmentInfo], lungs: Image | None) -> list[dict[str, float | str]]:
    """Volume (mL) of each segment and its percentage of each lung, both lungs and each lung third."""
    voxel_ml = labelmap.voxel_volume_mm3 / 1000.0
    regions = _lung_regions(lungs) if lungs is not None else []
    rows = []
    for seg in segments:
        mask = labelmap.array == seg.label_value
        row: dict[str, float | str] = {"segment": seg.name, "volume_ml": float(mask.sum() * voxel_ml)}
        if regions:
            for name, region in regions:
                n = int(region.sum())
                row[f"percent_{name}"] = float(100.0 * (mask & region).sum() / n) if n else float("nan")
        rows.append(row)
    return rows


def segment_image(image: Image, model: str | None = None, device: str = "auto", threshold: float = 0.5,
                  restrict_to_lungs: bool = True, keep_probability: bool = False, multiclass: bool = False,
                  progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None,
                  batch_size: int = 8, tta: bool | None = None) -> SegmentationResult:
    """Segment lesions in ``image`` (HU CT volume, or a 2D slice) with registered ``model``
    (``tta``: flip test-time augmentation on/off; ``None`` = as the model is registered)."""
    require_nonempty(image)
    report = progress or (lambda fraction, message: None)
    report(0.0, "loading model")
    predictor = Predictor(model or default_model_name(), device, batch_size, tta)
    multiclass = multiclass and predictor.classes > 1
    if predictor.classes > 1 and not multiclass:
        raise EmptyInputError(f"model '{predictor.entry.name}' is multi-class; pass multiclass=True")
    segments = _output_segments(predictor.entry.task, multiclass)
    if image.ndim == 2:
        return _segment_slice(image, predictor, threshold, keep_probability, multiclass, segments, report)
    require_ct(image)
    report(0.02, "masking the lungs")
    lungs = segment_lungs(image)
    if predictor.entry.input.get("segment"):
        return _segment_with_volume_model(image, lungs, predictor, threshold, keep_probability, segments, report)
    view = axial_view(image, SLICE_LAYOUT)
    lungs_view = axial_view(lungs, SLICE_LAYOUT).array > 0
    if not lungs_view.any():
        raise EmptyInputError("no lung found in the CT volume (is it a chest CT?)")
    rows, cols = _lung_bbox(lungs_view, view.spacing[1:])
    indices = np.flatnonzero(lungs_view.any(axis=(1, 2))) if restrict_to_lungs else np.arange(len(view))
    crops = [hu_to_unit(view.array[k, rows, cols]) for k in indices]
    n_out = len(segments) + 1 if multiclass else 1
    prob_view = np.zeros((n_out,) + view.array.shape, dtype=np.float32)
    if multiclass:
        prob_view[0] = 1.0  # unpredicted voxels are background

    def on_batch(done: int) -> None:
        if cancel is not None and cancel():
            raise Cancelled("segmentation cancelled")
        report(0.05 + 0.9 * done / len(crops), f"segmenting slice {done}/{len(crops)}")

    probs = predictor.predict(crops, progress=on_batch)
    for k, p in zip(indices, probs):
        prob_view[:, k, rows, cols] = p if multiclass else p[None]
    if restrict_to_lungs:
        prob_view *= lungs_view[None]
        if multiclass:
            prob_view[0][~lungs_view] = 1.0
    report(0.96, "writing results")
    label_view = _labels_from_probabilities(prob_view, threshold, multiclass)
    labelmap = image.with_array(view.to_image_array(label_view).astype(np.uint8))
    probability = None
    if keep_probability:
        lesion_prob = 1.0 - prob_view[0] if multiclass else prob_view[0]
        probability = image.with_array(view.to_image_array(lesion_prob.astype(np.float32)))
    result = SegmentationResult(labelmap, segments, probability, lungs, lesion_statistics(labelmap, segments, lungs))
    report(1.0, "done")
    return result


def _segment_with_volume_model(image: Image, lungs: Image, predictor: Predictor, threshold: float,
                               keep_probability: bool, segments: list[SegmentInfo],
                               report: ProgressCallback) -> SegmentationResult:
    """3D networks that segment region chunks themselves (``dram3d``): regions = lung thirds."""
    import importlib

    from lunglesion.weak.regions import regions_from_lungs

    module_name, function_name = predictor.entry.input["segment"].split(":")
    segment_volume = getattr(importlib.import_module(module_name), function_name)
    regions, names = regions_from_lungs(lungs)
    report(0.1, "segmenting lung regions")
    probability = segment_volume(predictor.network, image, regions, names, int(predictor.entry.input["chunk"]))
    prob = probability.array * (lungs.array > 0)
    labelmap = image.with_array((prob >= threshold).astype(np.uint8))
    result = SegmentationResult(labelmap, segments, image.with_array(prob.astype(np.float32)) if keep_probability
                                else None, lungs, lesion_statistics(labelmap, segments, lungs))
    report(1.0, "done")
    return result


def _labels_from_probabilities(prob: np.ndarray, threshold: float, multiclass: bool) -> np.ndarray:
    """Binary: ``p >= threshold`` -> 1. Multi-class: argmax where lesion probability passes."""
    if not multiclass:
        return (prob[0] >= threshold).astype(np.uint8)
    lesion = (1.0 - prob[0]) >= threshold
    return np.where(lesion, prob[1:].argmax(axis=0) + 1, 0).astype(np.uint8)


def _segment_slice(image: Image, predictor: Predictor, threshold: float, keep_probability: bool,
                   multiclass: bool, segments: list[SegmentInfo],
                   report: ProgressCallback) -> SegmentationResult:
    source = "uint8" if image.array.min() >= 0 and image.array.max() <= 255 else "hu"
    unit = to_network_domain(image.array, source)
    prob = predictor.predict([unit])[0]
    prob = prob if multiclass else prob[None]
    labelmap = image.with_array(_labels_from_probabilities(prob, threshold, multiclass))
    probability = None
    if keep_probability:
        probability = image.with_array((1.0 - prob[0] if multiclass else prob[0]).astype(np.float32))
    report(1.0, "done")
    return SegmentationResult(labelmap, segments, probability, None, lesion_statistics(labelmap, segments, None))
