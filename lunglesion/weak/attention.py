"""dRAM attention refinement over the 18-neighbourhood (3D) or 8-neighbourhood (2D), pure PyTorch.

Each pixel i attends to its neighbours j (no self loop; neighbours outside the grid are
left out, as in a graph): a_ij = softmax_j(ReLU(theta(f_i) . phi(f_j)) / sqrt(n)),
refined_i = r(sum_j a_ij G(cam_j)) with G = Linear(1 -> 8), r = Linear(8 -> 1), as the
official DGL graph attention; here with padded shifted views instead of a graph library.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


def neighbour_offsets(ndim: int) -> list[tuple[int, ...]]:
    """18 offsets (3D: faces + edges of the 3x3x3 cube) or 8 offsets (2D: the 3x3 ring)."""
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]
    if ndim == 3:
        offsets = [o for o in offsets if sum(map(abs, o)) <= 2]
    return offsets


def shifted(x: torch.Tensor, offset: tuple[int, ...]) -> torch.Tensor:
    """View of ``x`` (zero-padded by 1) at spatial position i + offset, same shape as ``x``."""
    ndim = len(offset)
    padded = F.pad(x, (1, 1) * ndim)
    index = [slice(None), slice(None)] + [slice(1 + o, 1 + o + n) for o, n in zip(offset, x.shape[2:])]
    return padded[tuple(index)]


class NeighbourAttention(nn.Module):
    """One iteration of graph attention on the pixel grid; returns refined logits ``[B, 1, *S]``."""

    def __init__(self, ndim: int, in_features: int = 17, key_features: int = 8, value_features: int = 8) -> None:
        super().__init__()
        self.offsets = neighbour_offsets(ndim)
        self.theta = nn.Linear(in_features, key_features)
        self.phi = nn.Linear(in_features, key_features)
        self.value = nn.Linear(1, value_features)
        self.out = nn.Linear(value_features, 1)

    def _channels(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return layer(x.movedim(1, -1)).movedim(-1, 1)

    def forward(self, features: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        theta = self._channels(self.theta, features)
        phi = self._channels(self.phi, features)
        ones = torch.ones_like(cam)
        scale = math.sqrt(len(self.offsets))
        scores, values = [], []
        for offset in self.offsets:
            valid = shifted(ones, offset)
            score = F.relu((theta * shifted(phi, offset)).sum(1, keepdim=True)) / scale
            scores.append(score.masked_fill(valid == 0, float("-inf")))
            values.append(shifted(cam, offset))
        attention = torch.softmax(torch.stack(scores), dim=0)
        neighbours = torch.stack(values)
        gathered = (attention.unsqueeze(-1) * self.value(neighbours.unsqueeze(-1))).sum(0)
        return self.out(gathered).squeeze(-1)
