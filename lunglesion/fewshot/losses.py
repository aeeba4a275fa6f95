"""RP-Net's loss: Dice + cross-entropy on every refinement step plus prototype alignment."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lunglesion.losses import soft_dice_loss
from lunglesion.networks.rpnet import FewShotOutput


def dice_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2-class cross-entropy plus soft Dice of the foreground; logits (B, 2, H, W), target (B, H, W)."""
    return F.cross_entropy(logits, target.long()) + soft_dice_loss(logits.softmax(1)[:, 1], target)


def fewshot_loss(output: FewShotOutput, query_mask: torch.Tensor, support_masks: torch.Tensor,
                 align_weight: float = 1.0) -> torch.Tensor:
    """Mean Dice+CE over the refinement steps + ``align_weight`` x alignment CE on the support."""
    loss = torch.stack([dice_ce(lg, query_mask) for lg in output.logits]).mean()
    if output.align_logits is not None and align_weight > 0:
        loss = loss + align_weight * F.cross_entropy(output.align_logits, support_masks.flatten(0, 1).long())
    return loss
