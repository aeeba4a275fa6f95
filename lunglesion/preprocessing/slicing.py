"""Axial slices in patient space for 2D networks, whatever the volume's array orientation.

:func:`axial_view` permutes and flips the ``[z, y, x]`` array so that axis 0 runs inferior ->
superior and each slice is shown in one of two layouts:

* ``"radiological"``: rows anterior -> posterior, columns patient right -> left
  (anterior up, patient's right on the image left);
* ``"covid_semiseg"``: the transpose, rows right -> left and columns anterior -> posterior,
  which is how the covid_semiseg training slices are stored (see docs/intensity_convention.md).

Each array axis is assigned to the patient axis (LPS) its direction is closest to, taking the
permutation that maximises the summed |cosines|; an oblique volume is therefore sliced along
its array axes nearest to axial, without resampling (resample first if that is not enough).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lunglesion.errors import DimensionError, InputError
from lunglesion.image import Image

Layout = Literal["radiological", "covid_semiseg"]


@dataclass(frozen=True)
class AxialView:
    """A volume's array reordered to axial slices; maps 2D results back exactly."""

    array: np.ndarray
    """View-ordered array ``[inferior->superior, rows, columns]``."""
    axes: tuple[int, int, int]
    """Original array axis shown on each view axis."""
    flips: tuple[bool, bool, bool]
    """Whether each view axis runs against its original array axis."""
    spacing: tuple[float, float, float]
    """Voxel size (mm) along the view axes: slice, row, column."""

    def __len__(self) -> int:
        return self.array.shape[0]

    @property
    def slices(self) -> Iterator[np.ndarray]:
        """The 2D slices, inferior to superior."""
        return iter(self.array)

    def to_image_array(self, stack: np.ndarray) -> np.ndarray:
        """Map a stack of per-slice results (the view's shape) back to the original array order."""
        stack = np.asarray(stack)
        if stack.shape[:3] != self.array.shape:
            raise InputError(f"stack shape {stack.shape} does not match the axial view {self.array.shape}")
        flip_axes = tuple(i for i, f in enumerate(self.flips) if f)
        unflipped = np.flip(stack, axis=flip_axes) if flip_axes else stack
        inverse = tuple(int(i) for i in np.argsort(self.axes)) + tuple(range(3, stack.ndim))
        return np.ascontiguousarray(np.transpose(unflipped, inverse))


def nearest_axis_permutation(direction: np.ndarray) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """For patient axes (L, P, S): the index axis (x=0, y=1, z=2) nearest to each, and its sign."""
    d = np.asarray(direction, dtype=np.float64)
    best = max(itertools.permutations(range(3)), key=lambda p: sum(abs(d[i, p[i]]) for i in range(3)))
    signs = tuple(1 if d[i, best[i]] >= 0 else -1 for i in range(3))
    return tuple(best), signs  # type: ignore[return-value]


def axial_view(image: Image, layout: Layout = "radiological") -> AxialView:
    """Reorder a 3D image into axial slices (inferior -> superior) in the given display layout."""
    if image.ndim != 3:
        raise DimensionError(f"axial slicing needs a 3D volume, got a {image.ndim}D image")
    if layout not in ("radiological", "covid_semiseg"):
        raise InputError(f"unknown slice layout {layout!r}; expected 'radiological' or 'covid_semiseg'")
    index_axis, signs = nearest_axis_permutation(image.direction)
    # numpy axis of index axis i is 2 - i; view axes: S (slices), P (rows), L (columns).
    patient_order = (2, 1, 0) if layout == "radiological" else (2, 0, 1)
    axes = tuple(2 - index_axis[p] for p in patient_order)
    flips = tuple(signs[p] < 0 for p in patient_order)
    flip_axes = tuple(i for i, f in enumerate(flips) if f)
    array = np.transpose(image.array, axes)
    if flip_axes:
        array = np.flip(array, axis=flip_axes)
    spacing_zyx = image.spacing[::-1]
    return AxialView(array=array, axes=axes, flips=flips,  # type: ignore[arg-type]
                     spacing=tuple(spacing_zyx[a] for a in axes))  # type: ignore[arg-type]
