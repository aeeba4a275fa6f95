"""ECA-ResNet backbone (Wang et al., CVPR 2020) as used by nCoVSegNet: ResNet-50 + ECA, k=3.

Each bottleneck is conv1x1-BN-ReLU, conv3x3(stride)-BN-ReLU, conv1x1-BN, efficient channel
attention (global average pool -> Conv1d over channels -> sigmoid -> rescale), plus the
shortcut, then ReLU. Depths and widths are configurable so that a narrower backbone of the
same design can run on CPUs. Module names follow torchvision's ``resnet50``.
"""

from __future__ import annotations

import torch
from torch import nn


class EfficientChannelAttention(nn.Module):
    """ECA: ``x * sigmoid(conv1d_k(GAP(x)))``, the 1D convolution sliding over channels."""

    def __init__(self, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))                       # (N, C)
        weights = torch.sigmoid(self.conv(pooled[:, None]))[:, 0]
        return x * weights[:, :, None, None]


class ECABottleneck(nn.Module):
    """ResNet bottleneck (expansion 4) with ECA on the residual branch."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 eca_kernel: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.eca = EfficientChannelAttention(eca_kernel)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.eca(self.bn3(self.conv3(out)))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class ECAResNet(nn.Module):
    """ECA-ResNet feature extractor returning the four stage outputs (strides 4, 8, 16, 32).

    Defaults are ECA-ResNet-50: 7x7 stem of 64 channels, stages of (3, 4, 6, 3) bottlenecks
    with (64, 128, 256, 512) planes -> (256, 512, 1024, 2048) output channels.
    """

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), planes: tuple[int, ...] = (64, 128, 256, 512),
                 stem_width: int = 64, in_channels: int = 1, eca_kernel: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stem_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = stem_width
        self.layer1 = self._make_stage(planes[0], layers[0], 1, eca_kernel)
        self.layer2 = self._make_stage(planes[1], layers[1], 2, eca_kernel)
        self.layer3 = self._make_stage(planes[2], layers[2], 2, eca_kernel)
        self.layer4 = self._make_stage(planes[3], layers[3], 2, eca_kernel)
        self.out_channels = tuple(p * ECABottleneck.expansion for p in planes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_stage(self, planes: int, blocks: int, stride: int, eca_kernel: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * ECABottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * ECABottleneck.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * ECABottleneck.expansion),
            )
        layers = [ECABottleneck(self.inplanes, planes, stride, downsample, eca_kernel)]
        self.inplanes = planes * ECABottleneck.expansion
        layers += [ECABottleneck(self.inplanes, planes, eca_kernel=eca_kernel) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        return [x1, x2, x3, self.layer4(x3)]
