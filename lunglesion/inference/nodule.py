"""Nodule segmentation from a click: ROI around a seed point, DSNet, soft + hard mask pasted back.

The nodule networks see square ROIs through :func:`lunglesion.data.lidc.normalize_patch`
(robust min-max), so a 2D patch may come from an 8-bit PNG, a HU volume or a z-scored slice.
HU volumes are first clipped to the lung window W1500/L-600 (the window of 8-bit lung-window
patches), so bone does not set the patch's range.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from lunglesion.data.lidc import crop_square, normalize_patch
from lunglesion.errors import DimensionError, EmptyInputError, InputError
from lunglesion.image import LPS_TO_RAS, Image
from lunglesion.preprocessing.windowing import LUNG_WINDOW_HU

ROI_MM = 40.0


def predict_patch(model: torch.nn.Module, image_2d: np.ndarray, input_size: int = 48) -> np.ndarray:
    """Nodule probability (float32 in [0, 1]) for a 2D ROI, returned at the ROI's own size.

    ``image_2d`` may be in any intensity unit (e.g. an 8-bit patch / 255); it is normalised
    with :func:`normalize_patch`, resized to ``input_size`` and the output resized back.
    Works for DSNet (first output = soft-mask logits) and for plain logit networks.
    """
    image_2d = np.asarray(image_2d, dtype=np.float32)
    if image_2d.ndim != 2:
        raise DimensionError(f"predict_patch needs a 2D patch, got shape {image_2d.shape}")
    x = torch.from_numpy(normalize_patch(image_2d))[None, None]
    x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False)
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(x.to(device))
        logits = out[0] if isinstance(out, (tuple, list)) else out
        prob = torch.sigmoid(logits.float().cpu())
    prob = F.interpolate(prob, size=image_2d.shape, mode="bilinear", antialias=True, align_corners=False)
    return prob[0, 0].clamp(0, 1).numpy()


def seed_to_index(image: Image, seed: Sequence[float], seed_space: Literal["ras", "ijk"]) -> np.ndarray:
    """Seed as a voxel index in array order (``[z, y, x]`` or ``[y, x]``), rounded and checked."""
    seed = np.asarray(seed, dtype=np.float64)
    if seed.shape != (image.ndim,):
        raise InputError(f"seed needs {image.ndim} coordinates, got {len(seed)}")
    if seed_space == "ras":
        ijk = image.physical_to_index(LPS_TO_RAS[:image.ndim, :image.ndim] @ seed)  # RAS -> LPS
    elif seed_space == "ijk":
        ijk = seed
    else:
        raise InputError(f"seed space must be 'ras' or 'ijk', got '{seed_space}'")
    index = np.round(ijk[::-1]).astype(int)
    if np.any(index < 0) or np.any(index >= image.array.shape):
        raise InputError(f"seed {tuple(seed)} ({seed_space}) lies outside the image")
    return index


def _segment_slice(model: torch.nn.Module, plane: np.ndarray, centre: tuple[float, float], size: int,
                   input_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Probability of one ROI and its top-left corner in the plane."""
    prob = predict_patch(model, crop_square(plane, centre, size, fill=float(plane.min())), input_size)
    return prob, (int(round(centre[0] - size / 2)), int(round(centre[1] - size / 2)))


def _paste(target: np.ndarray, patch: np.ndarray, corner: tuple[int, int]) -> None:
    """Write ``patch`` into ``target`` at ``corner`` (clipped at the borders), keeping the maximum."""
    y0, x0 = max(corner[0], 0), max(corner[1], 0)
    y1 = min(corner[0] + patch.shape[0], target.shape[0])
    x1 = min(corner[1] + patch.shape[1], target.shape[1])
    region = patch[y0 - corner[0]:y1 - corner[0], x0 - corner[1]:x1 - corner[1]]
    target[y0:y1, x0:x1] = np.maximum(target[y0:y1, x0:x1], region)


def segment_nodule_at(image: Image, seed: Sequence[float], seed_space: Literal["ras", "ijk"] = "ras",
                      model: str = "dsnet", threshold: float = 0.5, roi_mm: float = ROI_MM,
                      max_extent_mm: float = 40.0) -> tuple[Image, Image]:
    """Soft (float32) and hard (uint8) nodule masks around ``seed``, on ``image``'s grid.

    ``image`` is a HU CT volume (or a 2D slice); ``seed`` is ``(R, A, S)`` in mm or an
    ``(i, j, k)`` voxel index. The axial slice through the seed is segmented in a square ROI
    of ``roi_mm``; neighbouring slices follow, each ROI centred on the previous slice's mask,
    until the nodule ends or ``max_extent_mm`` is reached. The hard mask is the connected
    component of ``soft >= threshold`` that contains (or is nearest to) the seed.
    """
    from lunglesion.registry import load_model

    network, entry = load_model(model)
    input_size = int(entry.input.get("size", 48))
    volume = np.clip(np.asarray(image.array, dtype=np.float32), *LUNG_WINDOW_HU)
    index = seed_to_index(image, seed, seed_space)
    planes = volume[None] if image.ndim == 2 else volume
    start = (0, *index) if image.ndim == 2 else tuple(index)
    size = int(np.clip(round(roi_mm / min(image.spacing[:2])), 32, 256))
    soft = np.zeros(planes.shape, dtype=np.float32)
    step_mm = image.spacing[2] if image.ndim == 3 else np.inf
    max_steps = int(max_extent_mm / 2 / step_mm) if np.isfinite(step_mm) else 0
    for direction in (1, -1):
        centre = (float(start[1]), float(start[2]))
        for step in range(0 if direction == 1 else 1, max_steps + 1):
            z = start[0] + direction * step
            if not 0 <= z < planes.shape[0]:
                break
            prob, corner = _segment_slice(network, planes[z], centre, size, input_size)
            found = prob >= threshold
            if not found.any():
                break
            _paste(soft[z], prob, corner)
            ys, xs = np.nonzero(found)
            centre = (corner[0] + ys.mean(), corner[1] + xs.mean())
    labels, count = ndimage.label(soft >= threshold)
    if count == 0:
        raise EmptyInputError(f"no nodule found at seed {tuple(seed)} ({seed_space})")
    seed_label = labels[tuple(start)]
    if seed_label == 0:
        _, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        seed_label = labels[tuple(n[tuple(start)] for n in nearest)]
    hard = labels == seed_label
    soft = np.where(ndimage.binary_dilation(hard, iterations=2), soft, 0.0).astype(np.float32)
    if image.ndim == 2:
        soft, hard = soft[0], hard[0]
    return image.with_array(soft), image.with_array(hard.astype(np.uint8))
