"""Building blocks shared by BSNet and nCoVSegNet."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int | tuple[int, int] = 3,
                 padding: int | tuple[int, int] = 1, dilation: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def conv_bn(in_channels: int, out_channels: int, kernel: int | tuple[int, int] = 3,
            padding: int | tuple[int, int] = 0, dilation: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm, no activation (the papers' ``BasicConv2d``)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_channels))


class ReceptiveFieldBlock(nn.Module):
    """Large-receptive-field block (BSNet ``R_modified``, nCoVSegNet ``GCA``).

    Branch 0 is a 1x1 conv; branch k is 1x1 -> 1xk -> kx1 -> 3x3 with dilation k, for k in
    ``kernels``; the concatenation is fused by a 3x3 conv and added to a 1x1 residual.
    """

    def __init__(self, in_channels: int, out_channels: int, kernels: tuple[int, ...] = (3, 5, 7)) -> None:
        super().__init__()
        self.branches = nn.ModuleList([conv_bn(in_channels, out_channels, 1)])
        for k in kernels:
            self.branches.append(nn.Sequential(
                conv_bn(in_channels, out_channels, 1),
                conv_bn(out_channels, out_channels, (1, k), padding=(0, k // 2)),
                conv_bn(out_channels, out_channels, (k, 1), padding=(k // 2, 0)),
                conv_bn(out_channels, out_channels, 3, padding=k, dilation=k),
            ))
        self.fuse = conv_bn(out_channels * len(self.branches), out_channels, 3, padding=1)
        self.residual = conv_bn(in_channels, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))
        return self.relu(fused + self.residual(x))
