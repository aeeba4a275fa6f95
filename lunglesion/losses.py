"""Segmentation losses shared by the networks (all take logits)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def boundary_weights(target: torch.Tensor, kernel: int = 31, strength: float = 5.0) -> torch.Tensor:
    """``1 + strength * |avgpool_k(G) - G|``: heavier weight near lesion boundaries (PraNet/Inf-Net)."""
    local_mean = F.avg_pool2d(target, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    return 1 + strength * (local_mean - target).abs()


def _weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-image BCE averaged with ``weight`` (shape B x C)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (weight * bce).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))


def structure_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weighted BCE + weighted IoU (the BSNet / Inf-Net / PraNet side-output loss)."""
    weight = boundary_weights(target)
    wbce = _weighted_bce(logits, target, weight)
    prob = torch.sigmoid(logits)
    inter = (prob * target * weight).sum(dim=(2, 3))
    union = ((prob + target) * weight).sum(dim=(2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


def weighted_bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Edge-weighted BCE + weighted Dice (nCoVSegNet, with the weighting the paper intends)."""
    weight = boundary_weights(target)
    wbce = _weighted_bce(logits, target, weight)
    prob = torch.sigmoid(logits)
    inter = (weight * prob * target).sum(dim=(2, 3))
    total = (weight * (prob + target)).sum(dim=(2, 3))
    wdice = 1 - (2 * inter + 1) / (total + 1)
    return (wbce + wdice).mean()


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - soft Dice`` per sample (all dimensions but the batch, 2D or 3D, hard or soft
    targets), averaged over the batch."""
    dims = tuple(range(1, prob.ndim))
    inter = (prob * target).sum(dim=dims)
    return (1 - (2 * inter + 1) / (prob.sum(dim=dims) + target.sum(dim=dims) + 1)).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain BCE + soft Dice of a one-channel map (the U-Net baseline's loss, 2D or 3D)."""
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(torch.sigmoid(logits), target)


def multiclass_dice_ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + mean soft Dice over foreground classes; ``target`` holds class indices."""
    ce = F.cross_entropy(logits, target)
    prob = torch.softmax(logits, dim=1)
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    inter = (prob * one_hot).sum(dim=(2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum(dim=(2, 3)) + one_hot.sum(dim=(2, 3)) + 1)
    return ce + dice[:, 1:].mean()


def edge_loss(logits: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """BCE of the edge branch against boundary maps."""
    return F.binary_cross_entropy_with_logits(logits, edges)
