"""Voxel-overlap metrics of a binary prediction against a binary target.

Conventions: ``dice`` and ``iou`` are 1 when both masks are empty; a ratio whose denominator
is zero otherwise (sensitivity with an empty target, specificity with an all-foreground
target, precision with an empty prediction) is NaN, and :func:`lunglesion.metrics.summarise`
leaves NaNs out of the mean.
"""

from __future__ import annotations

import numpy as np

from lunglesion.errors import InputError


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise InputError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    return pred.astype(bool), target.astype(bool)


def confusion(pred: np.ndarray, target: np.ndarray) -> tuple[int, int, int, int]:
    """Counts (TP, FP, FN, TN) of two binary masks."""
    p, t = _pair(pred, target)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return tp, fp, fn, p.size - tp - fp - fn


def _ratio(num: int, den: int) -> float:
    return float(num) / den if den else float("nan")


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """2|P∩T| / (|P| + |T|); 1 when both are empty."""
    tp, fp, fn, _ = confusion(pred, target)
    return 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2 * tp + fp + fn)


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """|P∩T| / |P∪T|; 1 when both are empty."""
    tp, fp, fn, _ = confusion(pred, target)
    return 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)


def sensitivity(pred: np.ndarray, target: np.ndarray) -> float:
    """TP / (TP + FN) (recall); NaN for an empty target."""
    tp, _, fn, _ = confusion(pred, target)
    return _ratio(tp, tp + fn)


def specificity(pred: np.ndarray, target: np.ndarray) -> float:
    """TN / (TN + FP); NaN when the target covers everything."""
    _, fp, _, tn = confusion(pred, target)
    return _ratio(tn, tn + fp)


def precision(pred: np.ndarray, target: np.ndarray) -> float:
    """TP / (TP + FP); NaN for an empty prediction."""
    tp, fp, _, _ = confusion(pred, target)
    return _ratio(tp, tp + fp)


def mae(prob: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error between probabilities in [0, 1] and the binary target."""
    prob, target = np.asarray(prob, dtype=np.float64), np.asarray(target)
    if prob.shape != target.shape:
        raise InputError(f"prediction shape {prob.shape} differs from target shape {target.shape}")
    return float(np.mean(np.abs(prob - target.astype(bool))))
