"""nCoVSegNet: COVID-19 lung infection segmentation with two-stage cross-domain transfer.

Liu et al., Medical Image Analysis 74:102205, 2021. Layout follows the official model code
(``Jiannan-Liu/nCoVSegNet``, see ``docs/ncovsegnet.md`` and ``methods.md``):

* ECA-ResNet-50 backbone -> x1 (1/4), x2 (1/8), x3 (1/16), x4 (1/32);
* global-context-aware (large receptive field) blocks: GCA_1 (kernels 3, 5, 7) on x1..x3,
  GCA_2 (kernels 3, 5) on x4, halving the channels;
* three attention-aware fusion (DAF) modules decode 1/32 -> 1/16 -> 1/8 -> 1/4, each
  gating the low-level path by channel attention and spatial attention from the high level;
* a 1x1 head on GCA_2 and on every DAF output; all four maps are deeply supervised.

Training mode returns ``[map_4, map_3, map_2, map_1]`` (1/32 ... 1/4, upsampled to the
input size, logits), the final map last; evaluation mode returns ``map_1`` only.
``out_channels`` > 1 gives class logits (background / GGO / consolidation). Input: one grey
channel in [0, 1] (the covid_semiseg domain). Height and width must be multiples of 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lunglesion.errors import InputError
from lunglesion.networks.blocks import ReceptiveFieldBlock
from lunglesion.networks.eca_resnet import ECAResNet


class AttentionAwareFusion(nn.Module):
    """DAF: fuse a high-level map (upsampled x2) with a low-level map gated by attention.

    ``a_c = sigmoid(BN(conv1x1(GAP(h))))`` (channel attention, C_high -> C_low),
    ``a_s = sigmoid(max_c(ConvT(h)))`` (spatial attention, one channel at the low resolution),
    ``out = ReLU(BN(ConvT(h)) + BN(conv3x3(l)) * a_c * a_s)`` with 4x4 stride-2 transposed convs.
    """

    def __init__(self, high_channels: int, low_channels: int) -> None:
        super().__init__()
        self.channel_conv = nn.Conv2d(high_channels, low_channels, 1, bias=False)
        self.channel_bn = nn.BatchNorm2d(low_channels)
        self.low_conv = nn.Conv2d(low_channels, low_channels, 3, padding=1, bias=False)
        self.low_bn = nn.BatchNorm2d(low_channels)
        self.spatial_up = nn.ConvTranspose2d(high_channels, high_channels, 4, 2, 1, bias=False)
        self.up = nn.ConvTranspose2d(high_channels, low_channels, 4, 2, 1, bias=False)
        self.up_bn = nn.BatchNorm2d(low_channels)

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        channel = torch.sigmoid(self.channel_bn(self.channel_conv(high.mean(dim=(2, 3), keepdim=True))))
        spatial = torch.sigmoid(self.spatial_up(high).amax(dim=1, keepdim=True))
        gated = self.low_bn(self.low_conv(low)) * channel * spatial
        return F.relu(self.up_bn(self.up(high)) + gated)


class NCoVSegNet(nn.Module):
    """nCoVSegNet with a configurable ECA-ResNet backbone (paper: ECA-ResNet-50).

    ``gca_channels`` are the GCA output widths at 1/4, 1/8, 1/16, 1/32 (paper: 128, 256,
    512, 1024, half the backbone widths); each DAF maps level i+1 onto level i's width.
    """

    size_divisor = 32

    def __init__(self, in_channels: int = 1, out_channels: int = 1, layers: tuple[int, ...] = (3, 4, 6, 3),
                 planes: tuple[int, ...] = (64, 128, 256, 512), stem_width: int = 64, eca_kernel: int = 3,
                 gca_channels: tuple[int, ...] = (128, 256, 512, 1024)) -> None:
        super().__init__()
        self.backbone = ECAResNet(tuple(layers), tuple(planes), stem_width, in_channels, eca_kernel)
        c1, c2, c3, c4 = self.backbone.out_channels
        g1, g2, g3, g4 = gca_channels
        self.gca1 = ReceptiveFieldBlock(c1, g1)
        self.gca2 = ReceptiveFieldBlock(c2, g2)
        self.gca3 = ReceptiveFieldBlock(c3, g3)
        self.gca4 = ReceptiveFieldBlock(c4, g4, kernels=(3, 5))
        self.daf3 = AttentionAwareFusion(g4, g3)
        self.daf2 = AttentionAwareFusion(g3, g2)
        self.daf1 = AttentionAwareFusion(g2, g1)
        self.head4 = nn.Conv2d(g4, out_channels, 1)
        self.head3 = nn.Conv2d(g3, out_channels, 1)
        self.head2 = nn.Conv2d(g2, out_channels, 1)
        self.head1 = nn.Conv2d(g1, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = x.shape[-2:]
        if size[0] % self.size_divisor or size[1] % self.size_divisor:
            raise InputError(f"nCoVSegNet needs height and width divisible by {self.size_divisor}, "
                             f"got {tuple(size)}")
        x1, x2, x3, x4 = self.backbone(x)
        g4 = self.gca4(x4)
        d3 = self.daf3(g4, self.gca3(x3))
        d2 = self.daf2(d3, self.gca2(x2))
        d1 = self.daf1(d2, self.gca1(x1))
        final = F.interpolate(self.head1(d1), size=size, mode="bilinear", align_corners=False)
        if not self.training:
            return final
        side = [F.interpolate(head(f), size=size, mode="bilinear", align_corners=False)
                for head, f in ((self.head4, g4), (self.head3, d3), (self.head2, d2))]
        return side + [final]
