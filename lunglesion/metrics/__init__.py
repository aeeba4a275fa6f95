"""Segmentation metrics per image and their mean over images (as in the COVID-SemiSeg papers)."""

from __future__ import annotations

import numpy as np

from lunglesion.errors import InputError
from lunglesion.metrics.overlap import confusion, dice, iou, mae, precision, sensitivity, specificity
from lunglesion.metrics.structure import e_phi, s_alpha
from lunglesion.metrics.surface import asd, hd95

__all__ = ["asd", "confusion", "dice", "e_phi", "evaluate_pair", "hd95", "iou", "mae", "minmax_normalise",
           "precision", "s_alpha", "sensitivity", "specificity", "summarise"]


def minmax_normalise(prob: np.ndarray) -> np.ndarray:
    """The toolbox's per-image (x - min) / (max - min); a constant map becomes all zeros."""
    prob = np.asarray(prob, dtype=np.float64)
    span = prob.max() - prob.min() if prob.size else 0.0
    return (prob - prob.min()) / span if span > 0 else np.zeros_like(prob)


def evaluate_pair(prob: np.ndarray, target: np.ndarray, threshold: float = 0.5,
                  spacing: tuple[float, ...] | None = None, minmax: bool = False) -> dict[str, float]:
    """All metrics of one probability map (in [0, 1]) against a binary target.

    Overlap metrics use ``prob > threshold``; MAE, S-alpha and mean E-phi use the probabilities
    (2D only; min-max normalised first when ``minmax``, the paper-faithful mode). ``spacing``
    (array axis order, mm) turns on HD95 and ASD.
    """
    prob = np.asarray(prob, dtype=np.float64)
    target = np.asarray(target).astype(bool)
    if prob.shape != target.shape:
        raise InputError(f"prediction shape {prob.shape} differs from target shape {target.shape}")
    if prob.size and (prob.min() < 0 or prob.max() > 1):
        raise InputError("probabilities must lie in [0, 1]")
    if minmax:
        prob = minmax_normalise(prob)
    pred = prob > threshold
    out = {"dice": dice(pred, target), "iou": iou(pred, target), "sensitivity": sensitivity(pred, target),
           "specificity": specificity(pred, target), "precision": precision(pred, target),
           "mae": mae(prob, target)}
    if prob.ndim == 2:
        out["s_alpha"] = s_alpha(prob, target)
        out["e_phi"] = e_phi(prob, target)
    if spacing is not None:
        out["hd95"] = hd95(pred, target, spacing)
        out["asd"] = asd(pred, target, spacing)
    return out


def summarise(results: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over images, leaving out NaN (undefined) values."""
    if not results:
        raise InputError("no results to summarise")
    keys = [k for k in results[0] if all(k in r for r in results)]
    means = {}
    for k in keys:
        values = np.array([r[k] for r in results], dtype=np.float64)
        finite = values[~np.isnan(values)]
        means[k] = float(finite.mean()) if finite.size else float("nan")
    return means
