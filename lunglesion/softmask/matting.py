"""Soft Mask annotation: an intensity-driven alpha matte in a thin band around a hard mask.

Our reconstruction of the DSNet pipeline (Wang et al., TNNLS 2023; see the DSNet card).
For each lesion (connected component of the hard mask), on its bounding box only:

1. ``mu_F`` = median intensity of the eroded lesion, ``mu_B`` = median of a parenchyma ring
   just outside the band (other lesions and masked-out voxels excluded);
2. ``alpha = clip((I - mu_B) / (mu_F - mu_B), 0, 1)``, optionally Gaussian-smoothed in-plane
   (off by default: smoothing blurs the partial-volume estimate of the edge voxels);
3. inside the band (``band`` pixels each side of the edge) the value is ``alpha`` clamped to
   a per-ring range: the inner edge ring never drops below 0.5 and the outer ring never
   reaches 0.5, so the 0.5 level sits on the consensus boundary (threshold 0.5 gives the
   hard mask back) while the value within a ring estimates the partial-volume fraction
   (and with it how many readers would include the voxel). Deeper rings get tighter ranges.

Everything is computed in-plane (axial), matching how readers draw contours slice by slice.
The matte is invariant to affine intensity maps, so HU, 8-bit and z-scored inputs only
differ in which voxels count as "masked out" (z-scored LIDC slices store outside-lung as 0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from lunglesion.errors import DimensionError, InputError
from lunglesion.image import Image

Domain = Literal["hu", "uint8", "zscore"]
DOMAINS: tuple[str, ...] = ("hu", "uint8", "zscore")
_EPS = 1e-3


def _inplane_structure(ndim: int) -> np.ndarray:
    """4-connected cross in the last two axes; no connection across slices in 3D."""
    cross = ndimage.generate_binary_structure(2, 1)
    if ndim == 2:
        return cross
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = cross
    return structure


def _ring_ranges(band: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Allowed (low, high) values for inner rings 1..band and outer rings 1..band."""
    inner = [(0.5 + _EPS + (0.5 - _EPS) * (k - 1) / band, 1.0) for k in range(1, band + 1)]
    outer = [(0.0, (0.5 - _EPS) * (1 - (k - 1) / band)) for k in range(1, band + 1)]
    return inner, outer


def soft_mask_array(image: np.ndarray, mask: np.ndarray, domain: Domain = "hu", band: int = 2,
                    sigma: float = 0.0) -> np.ndarray:
    """Soft mask (float32 in [0, 1]) of a 2D ``[y, x]`` or 3D ``[z, y, x]`` hard mask."""
    if domain not in DOMAINS:
        raise InputError(f"unknown intensity domain '{domain}' (choose one of {', '.join(DOMAINS)})")
    if image.shape != mask.shape:
        raise InputError(f"image shape {image.shape} and mask shape {mask.shape} differ")
    if image.ndim not in (2, 3):
        raise DimensionError(f"soft masks need a 2D or 3D image, got {image.ndim}D")
    if band < 1:
        raise InputError(f"band width must be at least 1 pixel, got {band}")
    hard = np.asarray(mask) != 0
    soft = hard.astype(np.float32)
    if not hard.any():
        return soft
    structure = _inplane_structure(image.ndim)
    labels, _ = ndimage.label(hard, structure=ndimage.generate_binary_structure(image.ndim, 1))
    pad = band + 4
    inner_ranges, outer_ranges = _ring_ranges(band)
    smooth_sigma = (0.0, sigma, sigma) if image.ndim == 3 else (sigma, sigma)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        box = tuple(slice(max(s.start - (pad if ax >= image.ndim - 2 else 0), 0),
                          min(s.stop + (pad if ax >= image.ndim - 2 else 0), n))
                    for ax, (s, n) in enumerate(zip(box, image.shape)))
        lesion = labels[box] == index
        others = hard[box] & ~lesion
        values = np.asarray(image[box], dtype=np.float32)
        valid = ~(values == 0) if domain == "zscore" else np.ones_like(lesion)
        dilations = [lesion]
        for _ in range(band + 3):
            dilations.append(ndimage.binary_dilation(dilations[-1], structure))
        erosions = [lesion]
        for _ in range(band):
            erosions.append(ndimage.binary_erosion(erosions[-1], structure))
        core = erosions[1] if erosions[1].any() else lesion
        ring = dilations[band + 3] & ~dilations[band] & ~others & valid
        if not ring.any():
            ring = dilations[band + 3] & ~lesion & ~others
        mu_f = float(np.median(values[core]))
        mu_b = float(np.median(values[ring])) if ring.any() else mu_f
        if mu_f - mu_b > 1e-6:
            alpha = np.clip((values - mu_b) / (mu_f - mu_b), 0.0, 1.0)
        else:  # lesion not brighter than its surroundings: no intensity cue, use the rings only
            alpha = np.full(values.shape, 0.5, dtype=np.float32)
        alpha = np.where(valid, alpha, 0.0).astype(np.float32)
        if sigma > 0:
            alpha = ndimage.gaussian_filter(alpha, smooth_sigma)
        target = soft[box]
        for k, (low, high) in enumerate(inner_ranges, start=1):
            sel = erosions[k - 1] & ~erosions[k]
            target[sel] = np.clip(alpha[sel], low, high)
        for k, (low, high) in enumerate(outer_ranges, start=1):
            sel = dilations[k] & ~dilations[k - 1] & ~hard[box]
            target[sel] = np.maximum(target[sel], np.clip(alpha[sel], low, high))
    return soft


def make_soft_mask(image: Image, mask: Image, domain: Domain = "hu", band: int = 2,
                   sigma: float = 0.0) -> Image:
    """Soft mask of ``mask`` on ``image`` as a float32 ``Image`` with the image's geometry.

    ``domain`` names the intensity convention: ``"hu"`` (CT in Hounsfield units), ``"uint8"``
    (8-bit windowed slices) or ``"zscore"`` (z-scored slices whose masked-out voxels are 0).
    ``band`` is the half-width in pixels of the edge band; ``sigma`` the in-plane smoothing.
    """
    if image.array.shape != mask.array.shape:
        raise InputError(f"image {image.array.shape} and mask {mask.array.shape} have different shapes")
    if not np.allclose(image.spacing, mask.spacing, atol=1e-3) or not np.allclose(
            image.origin, mask.origin, atol=1e-2):
        raise InputError("image and mask do not share the same geometry (spacing/origin differ)")
    return image.with_array(soft_mask_array(image.array, mask.array, domain, band, sigma))
