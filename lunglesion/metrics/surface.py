"""Surface distances in mm (2D or 3D): HD95 and average symmetric surface distance.

Surfaces are the mask voxels removed by one erosion (face connectivity); distances use
``scipy.ndimage.distance_transform_edt`` with the voxel ``spacing`` (array axis order).
Both masks empty: 0. Exactly one empty: NaN (undefined; left out of summary means).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from lunglesion.errors import InputError


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask, border_value=0)


def _distances(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Distances from the surface of ``a`` to that of ``b`` and back."""
    sa, sb = _surface(a), _surface(b)
    to_b = ndi.distance_transform_edt(~sb, sampling=spacing)
    to_a = ndi.distance_transform_edt(~sa, sampling=spacing)
    return to_b[sa], to_a[sb]


def _prepare(pred: np.ndarray, target: np.ndarray, spacing: tuple[float, ...] | None):
    p, t = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if p.shape != t.shape:
        raise InputError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    if spacing is not None and len(spacing) != p.ndim:
        raise InputError(f"spacing {tuple(spacing)} does not match a {p.ndim}D array (give it in array order)")
    return p, t


def _both_distances(pred: np.ndarray, target: np.ndarray, spacing: tuple[float, ...] | None
                    ) -> tuple[np.ndarray, np.ndarray] | float:
    """Directed surface distances both ways, or the convention value: 0 (both empty), NaN (one empty)."""
    p, t = _prepare(pred, target, spacing)
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("nan")
    return _distances(p, t, spacing)


def hd95(pred: np.ndarray, target: np.ndarray, spacing: tuple[float, ...] | None = None) -> float:
    """95th percentile Hausdorff distance: max of the two directed 95th percentiles (medpy's)."""
    distances = _both_distances(pred, target, spacing)
    if isinstance(distances, float):
        return distances
    d_pt, d_tp = distances
    return float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)))


def asd(pred: np.ndarray, target: np.ndarray, spacing: tuple[float, ...] | None = None) -> float:
    """Average symmetric surface distance: mean over both surfaces of the distance to the other."""
    distances = _both_distances(pred, target, spacing)
    if isinstance(distances, float):
        return distances
    return float(np.concatenate(distances).mean())
