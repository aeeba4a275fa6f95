"""RP-Net (Tang et al., ICCV 2021): few-shot segmentation by recurrent mask refinement.

Reimplemented from the paper's description (the official code is CC BY-NC-SA and was not
copied). One 2D U-Net encoder with its decoder stopped at 1/4 resolution is shared by
support and query; a Context Relation Encoder (CRE) turns features split by a mask into
features that carry the local relation between foreground and background; a prototype
head labels query pixels by cosine similarity (x20) to the support's masked-average
prototypes; the query mask is refined recurrently, each hard mask fed back into the CRE.

:class:`PrototypeNet` is the PANet-style baseline: same encoder, no CRE, no recurrence.
Both return :class:`FewShotOutput` from ``forward(support_images, support_masks, query)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lunglesion.networks.unet import conv_block

PAPER_WIDTHS = (64, 128, 256, 512, 1024)
LIGHT_WIDTHS = (16, 32, 64, 128, 256)


@dataclass
class FewShotOutput:
    """Logits (B, 2, H, W) of every refinement step (last = prediction) and, when
    training, the logits of the support segmented back from the query (alignment)."""

    logits: list[torch.Tensor]
    align_logits: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class UNetEncoder(nn.Module):
    """U-Net encoder (5 levels) with the decoder stopped at 1/4 resolution."""

    def __init__(self, widths: tuple[int, ...] = PAPER_WIDTHS, in_channels: int = 1) -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        self.blocks = nn.ModuleList([conv_block(i, o) for i, o in
                                     zip((in_channels, w1, w2, w3, w4), widths)])
        self.up5 = _up_conv(w5, w4)
        self.dec5 = conv_block(2 * w4, w4)
        self.up4 = _up_conv(w4, w3)
        self.dec4 = conv_block(2 * w3, w3)
        self.out_channels = w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.blocks):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = self.dec5(torch.cat([self.up5(x), skips[3]], 1))
        return self.dec4(torch.cat([self.up4(x), skips[2]], 1))


def _up_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def local_correlation(key: torch.Tensor, query: torch.Tensor, radius: int) -> torch.Tensor:
    """``<key(x), query(x + d)> / sqrt(C)`` for every offset ``d`` in ``[-r, r]^2``.

    Equal to the product of ``key`` with ``F.unfold(query, 2r+1, padding=r)`` (zero outside
    the image), never the full HW x HW matrix; computed offset by offset on the padded
    query, which avoids the (2r+1)^2-times larger unfolded tensor (4x faster on CPU).
    Returns (B, (2r+1)^2, H, W), offsets in row-major (dy, dx) order.
    """
    b, c, h, w = key.shape
    padded = F.pad(query, (radius, radius, radius, radius))
    size = 2 * radius + 1
    return torch.stack([(key * padded[:, :, dy:dy + h, dx:dx + w]).sum(1)
                        for dy in range(size) for dx in range(size)], 1) / c ** 0.5


class ContextRelationEncoder(nn.Module):
    """CRE(fg, bg): key from the foreground features, query from the background ones,
    local correlation of radius ``radius`` concatenated with the key, 1x1 conv out."""

    def __init__(self, channels: int, out_channels: int = 64, radius: int = 5,
                 relation_channels: int | None = None) -> None:
        super().__init__()
        self.radius = radius
        rc = relation_channels or channels  # the paper keeps C; the light config narrows it
        self.key = nn.Sequential(nn.Conv2d(channels, rc, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(rc), nn.ReLU(inplace=True))
        self.query = nn.Sequential(nn.Conv2d(channels, rc, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(rc), nn.ReLU(inplace=True))
        self.out = nn.Sequential(nn.Conv2d((2 * radius + 1) ** 2 + rc, out_channels, 1, bias=False),
                                 nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``features`` (B, C, h, w), ``mask`` (B, 1, h, w) in [0, 1] at feature size."""
        key = self.key(features * mask)
        query = self.query(features * (1 - mask))
        return self.out(torch.cat([local_correlation(key, query, self.radius), key], 1))


def masked_average(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked average pooling: (B, C, h, w) x (B, 1, h, w) -> (B, C)."""
    return (features * mask).sum((2, 3)) / (mask.sum((2, 3)) + 1e-5)


def prototype_logits(features: torch.Tensor, prototypes: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * cos(features, prototype)`` for [bg, fg] prototypes (B, 2, C) -> (B, 2, h, w)."""
    return scale * F.cosine_similarity(features.unsqueeze(1), prototypes[..., None, None], dim=2)


def support_prototypes(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """[bg, fg] prototypes averaged over shots: features (B, S, C, h, w), masks (B, S, 1, h, w)."""
    b, s, c, h, w = features.shape
    f, m = features.reshape(b * s, c, h, w), masks.reshape(b * s, 1, h, w)
    protos = torch.stack([masked_average(f, 1 - m), masked_average(f, m)], 1)  # (B*S, 2, C)
    return protos.view(b, s, 2, c).mean(1)


def _pool_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Full-resolution mask (N, H, W) -> soft mask (N, 1, h, w) by area pooling."""
    return F.adaptive_avg_pool2d(mask.float().unsqueeze(1), size)


class _FewShotBase(nn.Module):
    def __init__(self, widths: tuple[int, ...], scale: float) -> None:
        super().__init__()
        self.encoder = UNetEncoder(tuple(widths))
        self.scale = scale
        self.size_divisor = 16

    def _encode(self, support_images: torch.Tensor, support_masks: torch.Tensor,
                query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features of support (B*S, C, h, w), its pooled masks and query (B, C, h, w).

        A support batch of 1 with a larger query batch is encoded once and shared.
        """
        b, s = support_images.shape[:2]
        fs = self.encoder(support_images.flatten(0, 1))
        fq = self.encoder(query)
        ms = _pool_mask(support_masks.flatten(0, 1), fs.shape[-2:])
        if b == 1 and query.shape[0] > 1:
            fs, ms = fs.repeat(query.shape[0], 1, 1, 1), ms.repeat(query.shape[0], 1, 1, 1)
        return fs, ms, fq

    def _align(self, fq: torch.Tensor, q_logits: torch.Tensor, fs: torch.Tensor, b: int, s: int) -> torch.Tensor:
        """PANet alignment: prototypes from the query's prediction segment the support."""
        pred = q_logits.argmax(1, keepdim=True).float()
        pred = F.adaptive_avg_pool2d(pred, fq.shape[-2:])
        protos = torch.stack([masked_average(fq, 1 - pred), masked_average(fq, pred)], 1)
        protos = protos.repeat_interleave(s, 0)
        return prototype_logits(fs, protos, self.scale)


class PrototypeNet(_FewShotBase):
    """PANet-style prototype network: encoder features, masked average pooling, cosine x 20."""

    def __init__(self, widths: tuple[int, ...] = PAPER_WIDTHS, scale: float = 20.0) -> None:
        super().__init__(widths, scale)

    def forward(self, support_images: torch.Tensor, support_masks: torch.Tensor, query: torch.Tensor,
                initial_mask: torch.Tensor | None = None, iterations: int | None = None) -> FewShotOutput:
        """support_images (B, S, 1, H, W), support_masks (B, S, H, W), query (B, 1, H, W)."""
        b, s = query.shape[0], support_images.shape[1]
        fs, ms, fq = self._encode(support_images, support_masks, query)
        protos = support_prototypes(fs.view(b, s, *fs.shape[1:]), ms.view(b, s, *ms.shape[1:]))
        logits = F.interpolate(prototype_logits(fq, protos, self.scale), size=query.shape[-2:],
                               mode="bilinear", align_corners=False)
        align = None
        if self.training:
            align = F.interpolate(self._align(fq, logits, fs, b, s), size=query.shape[-2:],
                                  mode="bilinear", align_corners=False)
        return FewShotOutput([logits], align)


class RPNet(_FewShotBase):
    """RP-Net: encoder + Context Relation Encoder + prototype head + recurrent refinement.

    ``initial_mask`` (B, H, W) is the first query mask (the registered support label);
    without it the mask of a plain prototype pass on the encoder features is used.
    """

    def __init__(self, widths: tuple[int, ...] = PAPER_WIDTHS, cre_channels: int = 64, radius: int = 5,
                 relation_channels: int | None = None, scale: float = 20.0, train_iterations: int = 4,
                 test_iterations: int = 10) -> None:
        super().__init__(widths, scale)
        self.cre = ContextRelationEncoder(self.encoder.out_channels, cre_channels, radius, relation_channels)
        self.train_iterations = train_iterations
        self.test_iterations = test_iterations

    def forward(self, support_images: torch.Tensor, support_masks: torch.Tensor, query: torch.Tensor,
                initial_mask: torch.Tensor | None = None, iterations: int | None = None) -> FewShotOutput:
        """support_images (B, S, 1, H, W), support_masks (B, S, H, W), query (B, 1, H, W)."""
        b, s = query.shape[0], support_images.shape[1]
        steps = iterations or (self.train_iterations if self.training else self.test_iterations)
        fs, ms, fq = self._encode(support_images, support_masks, query)
        size = fq.shape[-2:]
        support_cre = self.cre(fs, ms)
        protos = support_prototypes(support_cre.view(b, s, *support_cre.shape[1:]),
                                    ms.view(b, s, *ms.shape[1:]))
        if initial_mask is None:
            raw = support_prototypes(fs.view(b, s, *fs.shape[1:]), ms.view(b, s, *ms.shape[1:]))
            mask = (prototype_logits(fq, raw, self.scale).argmax(1, keepdim=True)).float()
        else:
            mask = _pool_mask(initial_mask, size)
        all_logits, query_cre = [], fq
        for _ in range(steps):
            query_cre = self.cre(fq, mask)
            low = prototype_logits(query_cre, protos, self.scale)
            all_logits.append(F.interpolate(low, size=query.shape[-2:], mode="bilinear", align_corners=False))
            mask = _pool_mask((all_logits[-1].softmax(1)[:, 1] > 0.5).detach(), size)
        align = None
        if self.training:
            align = F.interpolate(self._align(query_cre, all_logits[-1], support_cre, b, s),
                                  size=query.shape[-2:], mode="bilinear", align_corners=False)
        return FewShotOutput(all_logits, align)
