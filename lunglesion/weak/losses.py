"""dRAM losses: interval-hinge regression with the intensity prior K, and the refinement loss.

Follows the official code (methods.md section 4): the target interval of a region is the
weak-label interval narrowed towards r_K (the fraction of the region's pixels brighter
than 0.75 x Otsu within the region), loss = max(0, (p - mid)^2 - half^2) / clamp(freq, 0.2, 0.8);
refinement = class-balanced BCE on the refined map against (sigma(dRAM) > t) & K & region
(t = 0.5, or lower while the map is soft: see :func:`fraction_threshold`)
with 10 % bootstrapping, plain BCE towards 0 outside the region.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lunglesion.weak.regions import otsu_threshold


def intensity_prior(image: np.ndarray, region: np.ndarray, scale: float = 0.75) -> np.ndarray:
    """K: region pixels whose (windowed, [0, 1]) intensity exceeds ``scale`` x Otsu within the region."""
    values = image[region]
    if values.size == 0:
        return np.zeros(image.shape, bool)
    return region & (image > scale * otsu_threshold(values))


def target_interval(low: float, high: float, r_k: float, bandwidth: float = 0.01) -> tuple[float, float]:
    """The weak-label interval narrowed to ``r_K +- bandwidth`` where they overlap (official code)."""
    lo, hi = max(low, r_k - bandwidth), min(high, r_k + bandwidth)
    if lo <= hi:
        return lo, hi
    if r_k < low:
        return max(0.0, r_k - bandwidth), r_k + bandwidth
    return low, high


def interval_hinge_loss(pred: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
                        class_freq: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over the batch of ``max(0, (p - mid)^2 - half^2) / clamp(freq, 0.2, 0.8)``; zero inside [low, high]."""
    mid, half = (low + high) / 2, (high - low) / 2
    loss = torch.clamp((pred - mid) ** 2 - half**2, min=0)
    if class_freq is not None:
        loss = loss / class_freq.clamp(0.2, 0.8)
    return loss.sum()


def fraction_threshold(values: torch.Tensor, fraction: float) -> torch.Tensor:
    """``min(0.5, t)`` where a share ``fraction`` of ``values`` lies at or above ``t``.

    Deviation from the official code (documented in the card): while the dense map is still
    soft (short training), ``> 0.5`` marks nothing; the top ``fraction`` of the region (the
    fraction the map itself regresses) is taken instead, and ``> 0.5`` once the map is sharp.
    """
    if values.numel() == 0 or fraction <= 0:
        return values.new_tensor(0.5, dtype=torch.float32)
    t = torch.quantile(values.float(), max(0.0, 1.0 - fraction))
    return torch.clamp(t, max=0.5)


def interval_threshold(values: torch.Tensor, low: float, high: float, threshold: float = 0.5) -> torch.Tensor:
    """The threshold nearest ``threshold`` at which the share of ``values`` at or above it lies in
    ``[low, high]`` (a region's weak-label interval): ``threshold`` itself when it already does, else
    the quantile that marks the nearer bound; above every value when ``high`` is 0."""
    t = torch.as_tensor(threshold, dtype=torch.float32, device=values.device)
    if values.numel() == 0:
        return t
    if high <= 0:
        return values.max().float() + 1
    share = float((values >= t).float().mean())
    if low <= share <= high:
        return t
    target = low if share < low else high
    return torch.quantile(values.float(), 1.0 - target)


def refinement_loss(refined_logits: torch.Tensor, dram_logits: torch.Tensor, region: torch.Tensor,
                    prior: torch.Tensor, zero_label: torch.Tensor, bootstrap: float = 0.1) -> torch.Tensor:
    """Class-balanced BCE with bootstrapping on the refined map (mean over the batch).

    ``region`` and ``prior`` are float masks shaped like the logits; ``zero_label`` [B] is 1
    where the weak label says the region holds no lesion (then Y = 0 everywhere).
    """
    dims = tuple(range(1, refined_logits.ndim))
    view = (-1,) + (1,) * (refined_logits.ndim - 1)
    with torch.no_grad():
        prob = torch.sigmoid(dram_logits)
        threshold = torch.stack([fraction_threshold(p[r > 0], float(p[r > 0].mean()) if r.any() else 0.0)
                                 for p, r in zip(prob, region)]).view(view)
        target = (prob >= threshold).float() * prior * region
        target = target * (1 - zero_label.float()).view(view)
        n_region = region.sum(dims).clamp(min=1)
        alpha = (1 - target.sum(dims) / n_region).clamp(0.25, 0.75).view(view)
        hard = (torch.sigmoid(refined_logits) > 0.5).float()
    log_p = F.logsigmoid(refined_logits)
    log_not_p = F.logsigmoid(-refined_logits)
    balanced = -(alpha * target * log_p + (1 - alpha) * (1 - target) * log_not_p)
    boot = -(hard * log_p + (1 - hard) * log_not_p)
    inside = (((1 - bootstrap) * balanced + bootstrap * boot) * region).sum(dims) / n_region
    outside_mask = 1 - region
    outside = (-log_not_p * outside_mask).sum(dims) / outside_mask.sum(dims).clamp(min=1)
    return (inside + outside).mean()


def region_fraction(logits: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Lobe pooling: mean sigmoid of the map over each sample's region -> [B]."""
    dims = tuple(range(1, logits.ndim))
    return (torch.sigmoid(logits) * region).sum(dims) / region.sum(dims).clamp(min=1)
