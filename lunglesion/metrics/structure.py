"""S-alpha (structure measure) and mean E-phi (enhanced alignment), 2D, as in the Inf-Net toolbox.

Ports of ``StructureMeasure.m`` (Fan et al., ICCV 2017, alpha = 0.5) and ``Enhancedmeasure.m``
(Fan et al., IJCAI 2018) of the COVID-SemiSeg / Inf-Net MATLAB evaluation toolbox. The
prediction must already be in [0, 1] (the toolbox min-max normalises it first; see
:func:`lunglesion.metrics.evaluate_pair`). Standard deviations are MATLAB's (N - 1).
"""

from __future__ import annotations

import numpy as np

from lunglesion.errors import DimensionError, InputError

_EPS = np.finfo(np.float64).eps


def _check(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target).astype(bool)
    if pred.shape != target.shape:
        raise InputError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    if pred.ndim != 2:
        raise DimensionError(f"S-alpha and E-phi are 2D measures, got a {pred.ndim}D array")
    if pred.size and (pred.min() < 0 or pred.max() > 1):
        raise InputError("the prediction must lie in [0, 1] for S-alpha / E-phi")
    return pred, target


def _object(pred: np.ndarray, mask: np.ndarray) -> float:
    x = pred[mask]
    if x.size == 0:
        return 0.0
    mean = x.mean()
    std = x.std(ddof=1) if x.size > 1 else 0.0
    return float(2.0 * mean / (mean * mean + 1.0 + std + _EPS))


def _s_object(pred: np.ndarray, gt: np.ndarray) -> float:
    fg = _object(np.where(gt, pred, 0.0), gt)
    bg = _object(np.where(gt, 0.0, 1.0 - pred), ~gt)
    u = gt.mean()
    return float(u * fg + (1 - u) * bg)


def _ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    n = pred.size
    if n == 0:
        return 0.0
    gt = gt.astype(np.float64)
    x, y = pred.mean(), gt.mean()
    sx = ((pred - x) ** 2).sum() / (n - 1 + _EPS)
    sy = ((gt - y) ** 2).sum() / (n - 1 + _EPS)
    sxy = ((pred - x) * (gt - y)).sum() / (n - 1 + _EPS)
    alpha = 4 * x * y * sxy
    beta = (x * x + y * y) * (sx + sy)
    if alpha != 0:
        return float(alpha / (beta + _EPS))
    return 1.0 if beta == 0 else 0.0


def _s_region(pred: np.ndarray, gt: np.ndarray) -> float:
    rows, cols = gt.shape
    total = gt.sum()
    # MATLAB centroid: 1-based, round half up; quadrants are GT(1:Y, 1:X) etc.
    x = int(np.floor((gt.sum(axis=0) * np.arange(1, cols + 1)).sum() / total + 0.5))
    y = int(np.floor((gt.sum(axis=1) * np.arange(1, rows + 1)).sum() / total + 0.5))
    area = rows * cols
    w1, w2, w3 = x * y / area, (cols - x) * y / area, x * (rows - y) / area
    weights = (w1, w2, w3, 1.0 - w1 - w2 - w3)
    quads = ((slice(0, y), slice(0, x)), (slice(0, y), slice(x, cols)),
             (slice(y, rows), slice(0, x)), (slice(y, rows), slice(x, cols)))
    return float(sum(w * _ssim(pred[q], gt[q]) for w, q in zip(weights, quads)))


def s_alpha(pred: np.ndarray, target: np.ndarray, alpha: float = 0.5) -> float:
    """Structure measure: 1 - mean(pred) for an empty target, mean(pred) for a full one."""
    pred, gt = _check(pred, target)
    y = gt.mean()
    if y == 0:
        return float(1.0 - pred.mean())
    if y == 1:
        return float(pred.mean())
    q = alpha * _s_object(pred, gt) + (1 - alpha) * _s_region(pred, gt)
    return max(float(q), 0.0)


def e_phi_binary(fm: np.ndarray, target: np.ndarray) -> float:
    """Enhanced-alignment measure of a binary map (``Enhancedmeasure.m``; divides by N - 1)."""
    fm, gt = _check(np.asarray(fm).astype(np.float64), target)
    return _e_phi_counts(*_counts(fm.astype(bool), gt), gt.size)


def _counts(fm: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.count_nonzero(fm & gt))
    fp = int(np.count_nonzero(fm & ~gt))
    fn = int(np.count_nonzero(~fm & gt))
    return tp, fp, fn, fm.size - tp - fp - fn


def _e_phi_counts(tp: int, fp: int, fn: int, tn: int, n: int) -> float:
    """E-phi from the confusion counts: the enhanced matrix takes one value per (fm, gt) pair."""
    n_gt = tp + fn
    n_fm = tp + fp
    if n_gt == 0:
        total = float(tn + fn)  # 1 - FM summed
    elif n_gt == n:
        total = float(tp + fp)  # FM summed
    else:
        mu_fm, mu_gt = n_fm / n, n_gt / n
        total = 0.0
        for count, f, g in ((tp, 1, 1), (fp, 1, 0), (fn, 0, 1), (tn, 0, 0)):
            a, b = f - mu_fm, g - mu_gt
            align = 2 * a * b / (a * a + b * b + _EPS)
            total += count * (align + 1) ** 2 / 4
    return total / (n - 1 + _EPS)


def e_phi(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean E-phi: E-phi of ``pred > t`` averaged over the 256 thresholds t = 1, 254/255, ..., 0."""
    pred, gt = _check(pred, target)
    fg, bg = np.sort(pred[gt]), np.sort(pred[~gt])
    scores = []
    for t in np.linspace(1.0, 0.0, 256):
        tp = fg.size - int(np.searchsorted(fg, t, side="right"))
        fp = bg.size - int(np.searchsorted(bg, t, side="right"))
        scores.append(_e_phi_counts(tp, fp, fg.size - tp, bg.size - fp, pred.size))
    return float(np.mean(scores))
