"""BSNet: boundary-guided semantic learning for COVID-19 lung infection segmentation.

Cong et al., IEEE Trans. Consumer Electronics 2022 (arXiv 2209.02934). Layout follows the
official model code (see ``docs`` and ``methods.md``):

* Res2Net-50 v1b backbone -> x1 (1/4), x2 (1/8), x3 (1/16), x4 (1/32);
* receptive-field blocks reduce x2..x4 to ``rfb_channels``;
* edge branch on x1 -> edge guidance features and an edge map;
* dual-branch semantic enhancement: DSEL (top-level semantic preservation with spatial
  attention) + DSER (progressive semantic integration, valid dilated convs) -> S5 at 1/8;
* three mirror-symmetric boundary guidance modules (MBG) decode S4, S3, S2 at 1/4 with a
  shared 1x1 head; every side output and the edge map are deeply supervised.

Training mode returns ``[S5, S4, S3, S2, edge]`` at input resolution (logits); evaluation
mode returns S2 only. Input: one grey channel in [0, 1] (trained from scratch; no ImageNet
RGB normalisation). Height and width must be multiples of 32 and at least 160.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lunglesion.networks.blocks import ReceptiveFieldBlock, conv_bn_relu
from lunglesion.networks.res2net import Res2NetV1b


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SpatialAttention(nn.Module):
    """``s = sigmoid(conv3x3([mean_c, max_c]))``; returns ``s * f + f``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1, bias=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([f.mean(dim=1, keepdim=True), f.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled)) * f + f


class DualSemanticEnhancement(nn.Module):
    """DSE: DSEL keeps top-level semantics, DSER integrates x2..x4 progressively; sum -> S5 at 1/8."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attention = SpatialAttention()
        self.left_head = nn.Conv2d(channels, 1, 1)
        self.valid2 = conv_bn_relu(channels, channels, 3, padding=0, dilation=8)
        self.valid3 = conv_bn_relu(channels, channels, 3, padding=0, dilation=4)
        self.valid4 = conv_bn_relu(channels, channels, 3, padding=0, dilation=2)
        self.right_head = nn.Conv2d(3 * channels, 1, 1)

    def forward(self, r2: torch.Tensor, r3: torch.Tensor, r4: torch.Tensor) -> torch.Tensor:
        left = self.left_head(self.attention(_resize(r4, r2.shape[-2:])))
        v2, v3, v4 = self.valid2(r2), self.valid3(r3), self.valid4(r4)
        right = torch.cat([_resize(v4, v3.shape[-2:]), v3], dim=1)
        right = torch.cat([_resize(right, v2.shape[-2:]), v2], dim=1)
        return _resize(self.right_head(right), left.shape[-2:]) + left


class MirrorBoundaryGuidance(nn.Module):
    """MBG: edge features (L), backbone features (D) and the previous map (R) fused at 1/4."""

    def __init__(self, edge_channels: int, down_channels: int, channels: int) -> None:
        super().__init__()
        self.project_left = conv_bn_relu(edge_channels, channels)
        self.project_down = conv_bn_relu(down_channels, channels)
        self.project_right = conv_bn_relu(1, channels)
        self.conv_left = conv_bn_relu(channels, channels)
        self.conv_down = conv_bn_relu(channels, channels)
        self.conv_right = conv_bn_relu(channels, channels)
        self.fuse = conv_bn_relu(3 * channels, channels)

    def forward(self, edge: torch.Tensor, down: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        size = edge.shape[-2:]
        left = self.project_left(edge)
        down = self.project_down(down)
        z1 = F.relu(self.conv_left(left) * _resize(down, size))
        z2 = F.relu(_resize(self.conv_down(down), size) * left)
        z3 = F.relu(_resize(self.conv_right(self.project_right(right)), size))
        return self.fuse(torch.cat([z1, z2, z3], dim=1))


class BSNet(nn.Module):
    """BSNet with a configurable Res2Net v1b backbone (paper: 50 layers, 26w x 4s)."""

    def __init__(self, in_channels: int = 1, layers: tuple[int, ...] = (3, 4, 6, 3),
                 planes: tuple[int, ...] = (64, 128, 256, 512), stem_width: int = 32, base_width: int = 26,
                 scale: int = 4, rfb_channels: int = 32, edge_channels: int = 64, mbg_channels: int = 256) -> None:
        super().__init__()
        self.backbone = Res2NetV1b(tuple(layers), tuple(planes), stem_width, base_width, scale, in_channels)
        c1, c2, c3, c4 = self.backbone.out_channels
        self.rfb2 = ReceptiveFieldBlock(c2, rfb_channels)
        self.rfb3 = ReceptiveFieldBlock(c3, rfb_channels)
        self.rfb4 = ReceptiveFieldBlock(c4, rfb_channels)
        self.edge_guidance = nn.Sequential(
            conv_bn_relu(c1, edge_channels, 1, padding=0),
            conv_bn_relu(edge_channels, edge_channels), conv_bn_relu(edge_channels, edge_channels),
        )
        self.edge_head = nn.Conv2d(edge_channels, 1, 3, padding=1)
        self.dse = DualSemanticEnhancement(rfb_channels)
        self.mbg4 = MirrorBoundaryGuidance(edge_channels, c4, mbg_channels)
        self.mbg3 = MirrorBoundaryGuidance(edge_channels, c3, mbg_channels)
        self.mbg2 = MirrorBoundaryGuidance(edge_channels, c2, mbg_channels)
        self.head = nn.Conv2d(mbg_channels, 1, 1)
        self.size_divisor = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = x.shape[-2:]
        x1, x2, x3, x4 = self.backbone(x)
        edge = self.edge_guidance(x1)
        s5 = self.dse(self.rfb2(x2), self.rfb3(x3), self.rfb4(x4))
        f4 = self.head(self.mbg4(edge, x4, s5))
        s4 = f4 + _resize(s5, f4.shape[-2:])
        f3 = self.head(self.mbg3(edge, x3, f4))
        s3 = f3 + f4
        f2 = self.head(self.mbg2(edge, x2, f3))
        s2 = f2 + f3
        if not self.training:
            return _resize(s2, size)
        return [_resize(s, size) for s in (s5, s4, s3, s2)] + [_resize(self.edge_head(edge), size)]


