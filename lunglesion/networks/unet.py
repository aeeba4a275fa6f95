"""The plain 2D U-Net (Ronneberger et al. 2015): the classic baseline beside every network."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU layers."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` poolings and ``base * 2**level`` channels; returns logits.

    Input height and width must be multiples of ``2**depth``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, base: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = [base * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoders.append(conv_block(previous, width))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.upsamplers.append(nn.ConvTranspose2d(previous, width, 2, stride=2))
            self.decoders.append(conv_block(2 * width, width))
            previous = width
        self.head = nn.Conv2d(previous, out_channels, 1)
        self.size_divisor = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else self.pool(x))
            skips.append(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips[:-1])):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        return self.head(x)
