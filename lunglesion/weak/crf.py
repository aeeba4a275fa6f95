"""Pure-PyTorch mean-field dense CRF (Kraehenbuehl & Koltun 2011) for binary lesion maps, 2D or 3D.

Pairwise potentials are Potts with an appearance (bilateral) kernel
``w_b exp(-|p_i - p_j|^2 / 2 sa^2 - |I_i - I_j|^2 / 2 sb^2)`` and a smoothness (Gaussian)
kernel ``w_g exp(-|p_i - p_j|^2 / 2 sg^2)``. Approximation (documented): both kernels are
evaluated exactly but only within a local window of ``radius`` pixels (voxels) instead of
over the full image; the permutohedral lattice of pydensecrf is not used.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from lunglesion.errors import InputError


def _shift(x: torch.Tensor, offset: tuple[int, ...], radius: int) -> torch.Tensor:
    padded = F.pad(x, (radius, radius) * len(offset), mode="replicate")
    index = [slice(None), slice(None)] + [slice(radius + o, radius + o + n)
                                          for o, n in zip(offset, x.shape[2:])]
    return padded[tuple(index)]


def dense_crf(probability: torch.Tensor, image: torch.Tensor, iterations: int = 5, radius: int = 5,
              spatial_sigma: float = 3.0, intensity_sigma: float = 0.08, smooth_sigma: float = 1.0,
              bilateral_weight: float = 4.0, smooth_weight: float = 2.0,
              spacing: tuple[float, ...] | None = None) -> torch.Tensor:
    """Mean-field refinement of a foreground probability; ``probability``, ``image``: ``[*S]`` (2D/3D).

    ``image`` is in [0, 1]; ``spacing`` (per array axis) scales distances, default 1 per pixel.
    Returns the refined foreground probability, same shape.
    """
    if probability.shape != image.shape or probability.ndim not in (2, 3):
        raise InputError(f"CRF needs a 2D/3D probability and image of the same shape, got "
                         f"{tuple(probability.shape)} and {tuple(image.shape)}")
    ndim = probability.ndim
    spacing = spacing or (1.0,) * ndim
    p = probability.float().clamp(1e-5, 1 - 1e-5)[None, None]
    img = image.float()[None, None]
    unary = torch.cat([-torch.log1p(-p), -torch.log(p)], dim=1)  # energy of labels 0 and 1
    kernels = []
    for offset in itertools.product(range(-radius, radius + 1), repeat=ndim):
        if not any(offset):
            continue
        d2 = sum((o * s) ** 2 for o, s in zip(offset, spacing))
        bilateral = bilateral_weight * torch.exp(-d2 / (2 * spatial_sigma**2)
                                                 - (img - _shift(img, offset, radius)) ** 2 / (2 * intensity_sigma**2))
        smooth = smooth_weight * torch.exp(torch.tensor(-d2 / (2 * smooth_sigma**2)))
        kernels.append((offset, bilateral + smooth))
    q = torch.softmax(-unary, dim=1)
    for _ in range(iterations):
        message = torch.zeros_like(q)
        for offset, weight in kernels:
            message = message + weight * _shift(q, offset, radius)
        # Potts: a label pays for the mass of the other label among its neighbours
        q = torch.softmax(-(unary + message.flip(1)), dim=1)
    return q[0, 1]
