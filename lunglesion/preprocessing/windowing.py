"""Intensity conventions: map HU CT, 8-bit slices and z-scored slices to one [0, 1] domain.

Every 2D network sees the covid_semiseg domain: the 8-bit training slices divided by 255.
Real HU CT is windowed with :data:`COVID_SEMISEG_WINDOW`, which was fitted to the
covid_semiseg grey-level histograms (evidence in ``docs/intensity_convention.md``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from lunglesion.errors import InputError

COVID_SEMISEG_WINDOW: tuple[float, float] = (-1150.0, 250.0)
LUNG_WINDOW_HU: tuple[float, float] = (-1350.0, 150.0)  # W1500 / L-600, the radiologists' lung window
"""HU window [low, high] that reproduces the covid_semiseg 8-bit slices (fitted, see docs)."""

LUNG_PEAK_HU = -885.0
"""HU of the lung parenchyma histogram peak of the reference scan (chest_ct lung1)."""

SOFT_TISSUE_PEAK_HU = 43.0
"""HU of the soft-tissue histogram peak of the reference scan (chest_ct lung1)."""

Source = Literal["hu", "uint8", "zscore"]


def hu_to_unit(hu: np.ndarray, window: tuple[float, float] = COVID_SEMISEG_WINDOW) -> np.ndarray:
    """Window Hounsfield units linearly to float32 in [0, 1] (``low`` -> 0, ``high`` -> 1)."""
    low, high = window
    if not high > low:
        raise InputError(f"window high ({high}) must be greater than low ({low})")
    out = (np.asarray(hu, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(out, 0.0, 1.0)


def uint8_to_unit(x: np.ndarray) -> np.ndarray:
    """8-bit grey levels (0-255) to float32 in [0, 1]."""
    x = np.asarray(x)
    if x.size and (x.min() < 0 or x.max() > 255):
        raise InputError(f"8-bit image values must lie in [0, 255], got [{x.min()}, {x.max()}]")
    return x.astype(np.float32) / np.float32(255.0)


def _zscore_landmarks(values: np.ndarray) -> tuple[float, float]:
    """Lung peak and soft-tissue peak (z units) of the in-mask values of one slice."""
    hist, edges = np.histogram(values, bins=200, range=(-1.0, 4.0))
    centres = (edges[:-1] + edges[1:]) / 2
    smooth = ndi.gaussian_filter1d(hist.astype(np.float64), 2)
    lung = float(centres[np.argmax(smooth)])
    upper = centres > lung + 0.6
    tissue = float(centres[upper][np.argmax(smooth[upper])])
    return lung, tissue


def zscore_to_unit(x: np.ndarray, background: float = 0.0,
                   window: tuple[float, float] = COVID_SEMISEG_WINDOW) -> np.ndarray:
    """Per-slice z-scored slices with zeroed outside-lung voxels (lidc_slices) to [0, 1].

    Each 2D slice (the last two axes) is mapped back to approximate HU with an affine map
    that sends its lung peak to :data:`LUNG_PEAK_HU` and its soft-tissue peak (the chest-wall
    rim kept by the lung mask) to :data:`SOFT_TISSUE_PEAK_HU`, then windowed with ``window``.
    Voxels equal to ``background`` (outside the lung mask) become soft tissue, as in real CT.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        raise InputError(f"z-scored input must be a 2D slice or a stack of slices, got {x.ndim}D")
    slices = x.reshape(-1, *x.shape[-2:])
    hu = np.empty_like(slices)
    for i, s in enumerate(slices):
        inside = s != background
        if inside.sum() < 100:
            hu[i] = SOFT_TISSUE_PEAK_HU
            continue
        lung, tissue = _zscore_landmarks(s[inside])
        scale = (SOFT_TISSUE_PEAK_HU - LUNG_PEAK_HU) / (tissue - lung)
        hu[i] = np.where(inside, LUNG_PEAK_HU + (s - lung) * scale, SOFT_TISSUE_PEAK_HU)
    return hu_to_unit(hu.reshape(x.shape), window)


def to_network_domain(array: np.ndarray, source: Source) -> np.ndarray:
    """Map an image array in the convention ``source`` to the networks' [0, 1] float32 domain."""
    if source == "hu":
        return hu_to_unit(array)
    if source == "uint8":
        return uint8_to_unit(array)
    if source == "zscore":
        return zscore_to_unit(array)
    raise InputError(f"unknown intensity source {source!r}; expected 'hu', 'uint8' or 'zscore'")
