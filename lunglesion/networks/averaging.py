"""Probability averaging at inference: model ensembles and horizontal-flip test-time augmentation.

:class:`ProbabilityAverage` wraps trained 2D slice networks and behaves like one of them in
eval mode: it returns logits whose activation (sigmoid, or softmax for multi-class) is the
mean of the members' probabilities over the original and, with ``flip``, the left-right
mirrored slice. Members trained at different input sizes each see the batch resized to their
own ``sizes`` entry; their probabilities are resized back before averaging. Because it is an
ordinary module, prediction, ``segment``, ``evaluate``, ``bench`` and the Slicer module use it
without knowing it is more than one network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

EPSILON = 1e-6


def final_map(output: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """The final logit map of a network output (deeply supervised nets may return a list)."""
    return output if isinstance(output, torch.Tensor) else output[-1]


class ProbabilityAverage(nn.Module):
    """Mean probability of ``members`` (and of their mirrored views when ``flip``), as logits.

    ``sizes`` (one per member, optional) is the square side each member sees; ``None`` feeds
    every member the batch as it comes.
    """

    def __init__(self, members: Sequence[nn.Module], flip: bool = False, multiclass: bool = False,
                 sizes: Sequence[int] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("ProbabilityAverage needs at least one member network")
        if sizes is not None and len(sizes) != len(members):
            raise ValueError(f"{len(sizes)} input sizes for {len(members)} member networks")
        self.members = nn.ModuleList(members)
        self.flip = flip
        self.multiclass = multiclass
        self.sizes = list(sizes) if sizes is not None else [None] * len(members)

    def _probability(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1) if self.multiclass else torch.sigmoid(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [x, x.flip(-1)] if self.flip else [x]
        total = torch.zeros((), device=x.device)
        for member, size in zip(self.members, self.sizes):
            for i, view in enumerate(views):
                square = None if size is None else (size, size)
                probability = self._probability(final_map(member(_resized(view, square))).float())
                probability = _resized(probability, tuple(x.shape[-2:]))
                total = total + (probability.flip(-1) if i else probability)
        mean = total / (len(self.members) * len(views))
        if self.multiclass:
            return torch.log(mean.clamp_min(EPSILON))
        return torch.logit(mean, eps=EPSILON)


def _resized(x: torch.Tensor, shape: tuple[int, int] | None) -> torch.Tensor:
    """``x`` resized (bilinear) to ``shape`` (height, width); as it is when ``shape`` is None or already fits."""
    if shape is None or tuple(x.shape[-2:]) == shape:
        return x
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
