"""Batched CT slice augmentation on tensors (geometry by one affine warp, then intensity).

Geometry: scale, rotation, translation, horizontal flip (left/right lungs are mirror
images), applied to image and label channels with the same affine grid. Intensity: gamma,
contrast/brightness (window jitter), Gaussian blur or noise, as CT slices from other
scanners and windows differ in exactly these ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Ranges of the random transforms (0 disables one)."""

    scale: tuple[float, float] = (0.8, 1.25)
    rotation_deg: float = 20.0
    translation: float = 0.1
    flip_probability: float = 0.5
    gamma: tuple[float, float] = (0.7, 1.5)
    contrast: tuple[float, float] = (0.8, 1.2)
    brightness: float = 0.08
    noise_std: float = 0.03
    blur_probability: float = 0.2


def random_affine(batch: int, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch`` random 2x3 affine matrices for ``F.affine_grid`` (output -> input coords)."""
    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator)

    scale = torch.exp(uniform(math.log(cfg.scale[0]), math.log(cfg.scale[1])))
    angle = uniform(-cfg.rotation_deg, cfg.rotation_deg) * math.pi / 180
    flip = torch.where(torch.rand(batch, generator=generator) < cfg.flip_probability, -1.0, 1.0)
    tx, ty = uniform(-cfg.translation, cfg.translation), uniform(-cfg.translation, cfg.translation)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    return theta


def augment_batch(images: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment ``images`` (B,1,H,W in [0,1]) and float ``labels`` (B,C,H,W) together.

    Labels are warped bilinearly and stay soft at their edges; callers threshold them
    when they need hard targets.
    """
    theta = random_affine(images.shape[0], cfg, generator)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    labels = F.grid_sample(labels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return augment_intensity(images, cfg, generator), labels


def augment_intensity(images: torch.Tensor, cfg: AugmentConfig,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Gamma, contrast, brightness, blur and noise on images in [0, 1]."""
    b = images.shape[0]
    shape = (b, 1, 1, 1)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator)

    images = images.clamp(0, 1) ** torch.exp(uniform(math.log(cfg.gamma[0]), math.log(cfg.gamma[1])))
    mean = images.mean(dim=(2, 3), keepdim=True)
    images = (images - mean) * uniform(*cfg.contrast) + mean + uniform(-cfg.brightness, cfg.brightness)
    if cfg.blur_probability > 0:
        blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        pick = torch.rand(shape, generator=generator) < cfg.blur_probability
        images = torch.where(pick, blurred, images)
    if cfg.noise_std > 0:
        images = images + torch.randn(images.shape, generator=generator) * uniform(0, cfg.noise_std)
    return images.clamp(0, 1)
