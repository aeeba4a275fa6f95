"""DSNet (Wang et al., IEEE TNNLS 2023): nodule soft segmentation with detail representation transfer.

Our reconstruction (no official code exists; see the DSNet card):

* **DRTM** (detail representation transfer module): a super-resolution branch, conv ->
  residual blocks (no BN) -> pixel-shuffle x2, giving HR features ``F_sr``; an SR head
  reconstructs the x2 image (trained with L1 against the HR ROI).
* **Generator**: the project's U-Net (:class:`lunglesion.networks.unet.UNet`) applied to
  ``concat(F_sr, bilinear_x2(x))`` at the HR size; it returns soft-mask logits.
* **Discriminator**: PatchGAN on ``concat(HR image, mask)`` (training only, not registered).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lunglesion.networks.unet import UNet


class ResidualBlock(nn.Module):
    """conv-ReLU-conv with identity shortcut (EDSR style, no batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DRTM(nn.Module):
    """Super-resolution branch: LR image -> (HR features, HR image reconstruction)."""

    def __init__(self, channels: int = 64, blocks: int = 8, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)],
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.upsample = nn.Sequential(nn.Conv2d(channels, channels * scale**2, 3, padding=1),
                                      nn.PixelShuffle(scale), nn.ReLU(inplace=True))
        self.reconstruct = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shallow = self.head(x)
        features = self.upsample(shallow + self.body(shallow))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return features, base + self.reconstruct(features)


class DSNet(nn.Module):
    """LR nodule ROI ``(B,1,h,w)`` in [0,1] -> ``(soft-mask logits, SR image)`` at ``scale`` x size.

    ``h`` and ``w`` times ``scale`` must be multiples of ``2**depth``.
    """

    def __init__(self, sr_channels: int = 64, sr_blocks: int = 8, base: int = 32, depth: int = 4,
                 scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.drtm = DRTM(sr_channels, sr_blocks, scale)
        self.generator = UNet(in_channels=sr_channels + 1, out_channels=1, base=base, depth=depth)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, sr = self.drtm(x)
        upsampled = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.generator(torch.cat([features, upsampled], dim=1)), sr


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``concat(image, mask)`` -> map of real/fake scores (LSGAN, no sigmoid)."""

    def __init__(self, base: int = 64, layers: int = 3) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(2, base, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        channels = base
        for level in range(1, layers + 1):
            out = base * 2 ** min(level, 3)
            stride = 2 if level < layers else 1
            modules += [nn.Conv2d(channels, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out),
                        nn.LeakyReLU(0.2, True)]
            channels = out
        modules.append(nn.Conv2d(channels, 1, 4, padding=1))
        self.net = nn.Sequential(*modules)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, mask], dim=1))


PAPER_CONFIG = {"sr_channels": 64, "sr_blocks": 8, "base": 32, "depth": 4, "scale": 2}
LIGHT_CONFIG = {"sr_channels": 16, "sr_blocks": 2, "base": 12, "depth": 4, "scale": 2}
