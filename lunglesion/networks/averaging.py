"""Probability averaging at inference: model ensembles and horizontal-flip test-time augmentation.

:class:`ProbabilityAverage` wraps trained 2D slice networks and behaves like one of them in
eval mode: it returns logits whose activation (sigmoid, or softmax for multi-class) is the
mean of the members' probabilities over the original and, with ``flip``, the left-right
mirrored slice. Because it is an ordinary module, prediction, ``segment``, ``evaluate``,
``bench`` and the Slicer module use it without knowing it is more than one network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EPSILON = 1e-6


def final_map(output: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """The final logit map of a network output (deeply supervised nets may return a list)."""
    return output if isinstance(output, torch.Tensor) else output[-1]


class ProbabilityAverage(nn.Module):
    """Mean probability of ``members`` (and of their mirrored views when ``flip``), as logits."""

    def __init__(self, members: Sequence[nn.Module], flip: bool = False, multiclass: bool = False) -> None:
        super().__init__()
        if not members:
            raise ValueError("ProbabilityAverage needs at least one member network")
        self.members = nn.ModuleList(members)
        self.flip = flip
        self.multiclass = multiclass

    def _probability(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1) if self.multiclass else torch.sigmoid(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [x, x.flip(-1)] if self.flip else [x]
        total = torch.zeros((), device=x.device)
        for member in self.members:
            for i, view in enumerate(views):
                probability = self._probability(final_map(member(view)).float())
                total = total + (probability.flip(-1) if i else probability)
        mean = total / (len(self.members) * len(views))
        if self.multiclass:
            return torch.log(mean.clamp_min(EPSILON))
        return torch.logit(mean, eps=EPSILON)
