"""Res2Net v1b backbone (Gao et al., TPAMI 2019) as used by BSNet: 26w x 4s by default.

v1b = deep three-conv stem and average-pool downsampling in the shortcuts. Widths are
configurable so that a narrower backbone of the same design can run on CPUs.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Bottle2neck(nn.Module):
    """Res2Net bottleneck: the 3x3 stage is split into ``scale`` hierarchical groups."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 base_width: int = 26, scale: int = 4, first_of_stage: bool = False) -> None:
        super().__init__()
        width = int(math.floor(planes * base_width / 64.0))
        self.width, self.scale, self.first_of_stage = width, scale, first_of_stage
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(scale - 1))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale - 1))
        self.pool = nn.AvgPool2d(3, stride, 1) if first_of_stage else None
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        splits = torch.split(out, self.width, dim=1)
        pieces = []
        sp = splits[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = splits[i] if i == 0 or self.first_of_stage else sp + splits[i]
            sp = self.relu(bn(conv(sp)))
            pieces.append(sp)
        last = splits[self.scale - 1]
        pieces.append(self.pool(last) if self.pool is not None else last)
        out = self.bn3(self.conv3(torch.cat(pieces, dim=1)))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class Res2NetV1b(nn.Module):
    """Res2Net v1b feature extractor returning the four stage outputs (strides 4, 8, 16, 32)."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), planes: tuple[int, ...] = (64, 128, 256, 512),
                 stem_width: int = 32, base_width: int = 26, scale: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_width, 3, 2, 1, bias=False), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, stem_width, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, planes[0], 3, 1, 1, bias=False), nn.BatchNorm2d(planes[0]), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        self.inplanes = planes[0]
        self.stages = nn.ModuleList(
            self._make_stage(p, n, stride=1 if i == 0 else 2, base_width=base_width, scale=scale)
            for i, (p, n) in enumerate(zip(planes, layers))
        )
        self.out_channels = tuple(p * Bottle2neck.expansion for p in planes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_stage(self, planes: int, blocks: int, stride: int, base_width: int, scale: int) -> nn.Sequential:
        downsample = nn.Sequential(
            nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(self.inplanes, planes * Bottle2neck.expansion, 1, bias=False),
            nn.BatchNorm2d(planes * Bottle2neck.expansion),
        )
        layers = [Bottle2neck(self.inplanes, planes, stride, downsample, base_width, scale, first_of_stage=True)]
        self.inplanes = planes * Bottle2neck.expansion
        layers += [Bottle2neck(self.inplanes, planes, 1, None, base_width, scale) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
