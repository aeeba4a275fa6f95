"""Non-learned few-shot baselines on axial label stacks.

* copy-nearest: every slice gets the mask of the nearest labelled slice (optionally only
  within ``max_distance`` slices);
* fill-between: slices between two labelled slices get the shape interpolated from
  their signed distance maps (the idea of Slicer's "Fill between slices"); nothing is
  added outside the labelled range.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def copy_nearest(labelled: dict[int, np.ndarray], depth: int, max_distance: int | None = None) -> np.ndarray:
    """Bool stack (depth, H, W) from labelled slices ``{z: mask}``."""
    zs = np.array(sorted(labelled))
    shape = labelled[int(zs[0])].shape
    out = np.zeros((depth, *shape), dtype=bool)
    for z in range(depth):
        nearest = int(zs[np.argmin(np.abs(zs - z))])
        if max_distance is None or abs(nearest - z) <= max_distance:
            out[z] = labelled[nearest]
    return out


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance (negative inside) of a 2D bool mask."""
    if not mask.any():
        return np.full(mask.shape, 1e3, dtype=np.float32)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return (outside - inside).astype(np.float32)


def fill_between(labelled: dict[int, np.ndarray], depth: int) -> np.ndarray:
    """Bool stack (depth, H, W): labelled slices kept, gaps between them interpolated."""
    zs = sorted(labelled)
    out = np.zeros((depth, *labelled[zs[0]].shape), dtype=bool)
    for z in zs:
        out[z] = labelled[z]
    for a, b in zip(zs[:-1], zs[1:]):
        da, db = signed_distance(labelled[a]), signed_distance(labelled[b])
        for z in range(a + 1, b):
            t = (z - a) / (b - a)
            out[z] = (1 - t) * da + t * db < 0
    return out
