"""dRAM networks (Xie et al., MedIA 2023): the 3-level U-Net producing dense regression activation maps.

``DRAMNet(ndim=3)`` is the paper's DC3D: blocks 2 x (conv3-BN-ReLU), encoder
1 -> 32 -> 64, 64 -> 64 -> 128, 128 -> 128 -> 256 (max-pool 2 after each), bottleneck
256 -> 256 -> 512, decoder (trilinear x2 + concat) 768 -> 256 -> 256, 384 -> 128 -> 128,
192 -> 64 -> 64, 1x1 head -> dRAM logits; widths scale with ``base`` (32 in the paper).
With ``attention`` it adds the neighbourhood attention refinement on a ``grid``^ndim
resampling of the map (node features: image + 8 channels each from enc1 and enc2, both
detached; the dRAM input to the attention is detached too, so the backbone learns from
the regression loss alone and its plain dRAM is the no-attention ablation).
``ndim=2`` is the same design on axial slices. ``CAMNet`` is the CAM baseline on the same
encoder: global average pooling of the bottleneck + a linear regressor of the fraction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lunglesion.weak.attention import NeighbourAttention


def _layers(ndim: int) -> tuple[type[nn.Module], type[nn.Module], type[nn.Module], str]:
    if ndim == 3:
        return nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, "trilinear"
    if ndim == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, "bilinear"
    raise ValueError(f"ndim must be 2 or 3, got {ndim}")


def _block(ndim: int, cin: int, cmid: int, cout: int) -> nn.Sequential:
    conv, norm, _, _ = _layers(ndim)
    return nn.Sequential(conv(cin, cmid, 3, padding=1, bias=False), norm(cmid), nn.ReLU(inplace=True),
                         conv(cmid, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True))


def _he_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")


class DRAMEncoder(nn.Module):
    """enc1, enc2, enc3 and bottleneck of the dRAM U-Net; returns the four feature maps."""

    def __init__(self, ndim: int, in_channels: int = 1, base: int = 32) -> None:
        super().__init__()
        b = base
        self.enc1 = _block(ndim, in_channels, b, 2 * b)
        self.enc2 = _block(ndim, 2 * b, 2 * b, 4 * b)
        self.enc3 = _block(ndim, 4 * b, 4 * b, 8 * b)
        self.bottleneck = _block(ndim, 8 * b, 8 * b, 16 * b)
        self.pool = _layers(ndim)[2](2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        return [e1, e2, e3, self.bottleneck(self.pool(e3))]


class DRAMNet(nn.Module):
    """Dense regression activation maps (+ optional attention refinement); input size divisible by 8.

    ``forward`` returns ``(dram_logits, refined_logits)`` while training or when ``attention``
    is on, and only the map used for segmentation (refined if available) in eval mode when
    ``segment_output`` is set (the registry/inference form).
    """

    def __init__(self, ndim: int = 3, in_channels: int = 1, base: int = 32, attention: bool = True,
                 grid: int = 64, segment_output: bool = False) -> None:
        super().__init__()
        self.ndim, self.grid, self.segment_output = ndim, grid, segment_output
        conv, norm, _, self.mode = _layers(ndim)
        b = base
        self.encoder = DRAMEncoder(ndim, in_channels, base)
        self.dec3 = _block(ndim, 16 * b + 8 * b, 8 * b, 8 * b)
        self.dec2 = _block(ndim, 8 * b + 4 * b, 4 * b, 4 * b)
        self.dec1 = _block(ndim, 4 * b + 2 * b, 2 * b, 2 * b)
        self.head = conv(2 * b, 1, 1)
        self.attention = None
        if attention:
            self.proj1 = nn.Sequential(conv(2 * b, 8, 1, bias=False), norm(8), nn.ReLU(inplace=True))
            self.proj2 = nn.Sequential(conv(4 * b, 8, 1, bias=False), norm(8), nn.ReLU(inplace=True))
            self.attention = NeighbourAttention(ndim, in_features=17)
        _he_init(self)

    def _up(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        return F.interpolate(x, size=size, mode=self.mode, align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        e1, e2, e3, bottom = self.encoder(x)
        d = self.dec3(torch.cat([self._up(bottom, e3.shape[2:]), e3], 1))
        d = self.dec2(torch.cat([self._up(d, e2.shape[2:]), e2], 1))
        d = self.dec1(torch.cat([self._up(d, e1.shape[2:]), e1], 1))
        dram = self._up(self.head(d), x.shape[2:])
        refined = None
        if self.attention is not None:
            grid = (self.grid,) * self.ndim
            features = torch.cat([self._up(x, grid), self._up(self.proj1(e1.detach()), grid),
                                  self._up(self.proj2(e2.detach()), grid)], 1)
            refined = self._up(self.attention(features, self._up(dram.detach(), grid)), x.shape[2:])
        if self.segment_output and not self.training:
            return refined if refined is not None else dram
        return dram, refined


class CAMNet(nn.Module):
    """CAM baseline: dRAM encoder, global average pooling, linear regressor of the lesion fraction.

    ``forward`` returns ``(fraction_logit [B], cam [B, 1, *S])`` with the CAM
    (classifier weights applied to the bottleneck features) upsampled to the input size.
    """

    def __init__(self, ndim: int = 2, in_channels: int = 1, base: int = 32) -> None:
        super().__init__()
        _, _, _, self.mode = _layers(ndim)
        self.encoder = DRAMEncoder(ndim, in_channels, base)
        self.fc = nn.Linear(16 * base, 1)
        _he_init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x)[-1]
        logit = self.fc(features.flatten(2).mean(-1)).squeeze(-1)
        cam = torch.einsum("bc...,c->b...", features, self.fc.weight[0]).unsqueeze(1)
        return logit, F.interpolate(cam, size=x.shape[2:], mode=self.mode, align_corners=False)
