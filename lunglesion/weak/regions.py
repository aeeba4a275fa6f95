"""Regions whose lesion percentages the weak labels give: lobes, lung thirds or 2D lungs.

* 3D with a lobe map: values 1-5 (the lungmask LTRCLobes order: 1 left upper, 2 left
  lower, 3 right upper, 4 right middle, 5 right lower) or a TotalSegmentator label map
  with lobe names (pass its ``{value: name}`` class map).
* 3D without one: the foundation's classical lung mask (1 right, 2 left lung), each lung
  split into upper / middle / lower thirds of its axial extent.
* 2D covid_semiseg slices (8-bit lung window, no HU, orientation not standardised): the
  two lungs found in the 8-bit image itself. Dark pixels (below the image's Otsu
  threshold) form components; those reaching an image corner are outside air (the slices
  are body-cropped, so lungs may touch the sides but not the corners); the two largest
  components are closed with a disc of 4 % of the image size and hole-filled, so that
  lesions inside the lung (brighter than air) become part of their lung. Known limit:
  dense consolidation against the chest wall is brighter than the threshold and is
  often left out (on covid_semiseg/train 24 % of lesion pixels fall outside the regions, as
  ``lunglesion weaklabels`` reports; a convex hull recovers only a quarter of those while adding
  mediastinum, and closing discs of 6-8 % instead of 4 % add 1 %). A learned lung ``field``
  (:mod:`lunglesion.weak.lungfield`) recovers most of them. ``lung1`` is the lung with the
  smaller centroid coordinate along the axis where the two centroids differ most (the
  slices are not oriented consistently, so left/right cannot be told).
  ``parts`` > 1 splits each lung into that many bands of equal area across the other
  in-plane axis (front to back): an axial slice crosses the lobes in such bands (upper or
  middle lobe in front of the oblique fissure, lower lobe behind it), so bands are the 2D
  stand-in for per-lobe scores. Names: ``lung1``/``lung2``, or ``lung1_1`` ... ``lung2_<parts>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image

LOBE_NAMES = {1: "left_upper", 2: "left_lower", 3: "right_upper", 4: "right_middle", 5: "right_lower"}
TOTALSEG_LOBES = {"lung_upper_lobe_left": 1, "lung_lower_lobe_left": 2, "lung_upper_lobe_right": 3,
                  "lung_middle_lobe_right": 4, "lung_lower_lobe_right": 5}
THIRD_NAMES = {1: "right_upper", 2: "right_middle", 3: "right_lower",
               4: "left_upper", 5: "left_middle", 6: "left_lower"}
LUNG2D_NAMES = {1: "lung1", 2: "lung2"}
MAX_LUNG_PARTS = 4


def lung2d_names(parts: int = 1) -> dict[int, str]:
    """Region value -> name of :func:`lung_regions_2d` with ``parts`` bands per lung."""
    if not 1 <= parts <= MAX_LUNG_PARTS:
        raise InputError(f"lung parts must be 1-{MAX_LUNG_PARTS}, got {parts}")
    if parts == 1:
        return dict(LUNG2D_NAMES)
    return {lung * parts + band + 1: f"lung{lung + 1}_{band + 1}" for lung in range(2) for band in range(parts)}


def lung_parts_of(region_names: set[str]) -> int:
    """The ``parts`` whose :func:`lung2d_names` hold every one of ``region_names``."""
    for parts in range(1, MAX_LUNG_PARTS + 1):
        if region_names <= set(lung2d_names(parts).values()):
            return parts
    raise InputError(f"2D weak labels name regions {', '.join(sorted(region_names)[:4])}: expected lung1, lung2 "
                     f"or lung1_1 ... lung2_N (N <= {MAX_LUNG_PARTS} bands per lung)")


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1D sample of values."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise EmptyInputError("Otsu threshold of an empty region")
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    mean0 = np.cumsum(hist * centres) / np.maximum(weight0, 1)
    total = (hist * centres).sum()
    mean1 = (total - np.cumsum(hist * centres)) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(centres[int(np.argmax(between))])


def lung_regions_2d(image: np.ndarray, parts: int = 1, field: np.ndarray | None = None) -> np.ndarray:
    """Lung regions of an 8-bit-derived slice in [0, 1]: the two lungs (1, 2), or ``parts`` bands
    of each (values as in :func:`lung2d_names`); see module doc. A lung ``field`` (boolean, the
    slice's shape; :mod:`lunglesion.weak.lungfield`) extends the two lungs by its pixels that
    connect to them, each to the nearer lung."""
    lung2d_names(parts)
    if image.ndim != 2:
        raise InputError(f"lung_regions_2d needs a 2D slice, got shape {image.shape}")
    if field is not None and field.shape != image.shape:
        raise InputError(f"lung field of shape {field.shape} for a slice of shape {image.shape}")
    dark = image < otsu_threshold(image)
    labels, count = ndimage.label(dark)
    c = max(2, int(0.03 * min(image.shape)))
    corners = np.concatenate([labels[:c, :c].ravel(), labels[:c, -c:].ravel(),
                              labels[-c:, :c].ravel(), labels[-c:, -c:].ravel()])
    sizes = ndimage.sum(dark, labels, index=np.arange(1, count + 1))
    outside = np.unique(corners)
    sizes[outside[outside > 0] - 1] = 0
    order = np.argsort(sizes)[::-1]
    min_size = 0.005 * image.size
    keep = [i + 1 for i in order[:2] if sizes[i] > min_size]
    if not keep:
        raise EmptyInputError("no lung found in the slice (no dark region away from the border)")
    if len(keep) == 1 or sizes[keep[1] - 1] < 0.1 * sizes[keep[0] - 1]:
        lungs = _split_in_two(labels == keep[0])
    else:
        lungs = [labels == k for k in keep]
    radius = max(2, int(round(0.04 * max(image.shape))))
    pad = radius + 1
    closed = []
    for lung in lungs:
        padded = ndimage.binary_closing(np.pad(lung, pad), structure=_disc(radius))
        closed.append(ndimage.binary_fill_holes(padded)[pad:-pad, pad:-pad])
    closed[1] &= ~closed[0]
    if field is not None:
        closed = _extend_by_field(closed, field)
    centroids = np.array([ndimage.center_of_mass(c) for c in closed])
    axis = int(np.argmax(np.abs(centroids[0] - centroids[1])))
    first = int(np.argmin(centroids[:, axis]))
    out = np.zeros(image.shape, np.uint8)
    across = np.indices(image.shape)[1 - axis]
    for lung, mask in enumerate((closed[first], closed[1 - first])):
        edges = np.quantile(across[mask], np.linspace(0, 1, parts + 1)[1:-1])
        out[mask] = lung * parts + 1 + np.searchsorted(edges, across[mask], side="right")
    return out


def _extend_by_field(lungs: list[np.ndarray], field: np.ndarray) -> list[np.ndarray]:
    """The two ``lungs`` grown by the components of ``field`` that touch them, each pixel going to
    the nearer lung."""
    both = lungs[0] | lungs[1]
    components, _ = ndimage.label(field | both)
    grown = np.isin(components, np.unique(components[both]))
    _, (rows, cols) = ndimage.distance_transform_edt(~both, return_indices=True)
    nearest_first = lungs[0][rows, cols]
    return [grown & nearest_first, grown & ~nearest_first]


def _disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return xx**2 + yy**2 <= radius**2


def _split_in_two(mask: np.ndarray) -> list[np.ndarray]:
    """Split one joined lung component at the median of its longer bounding-box axis."""
    coords = np.argwhere(mask)
    extent = coords.max(0) - coords.min(0)
    axis = int(np.argmax(extent))
    cut = int(np.median(coords[:, axis]))
    index = np.indices(mask.shape)[axis]
    return [mask & (index < cut), mask & (index >= cut)]


def regions_from_lobes(lobe_map: Image, class_map: dict[int, str] | None = None) -> tuple[Image, dict[int, str]]:
    """Lobe regions (1-5) from a lobe label map; ``class_map`` maps TotalSegmentator values to names."""
    array = np.asarray(lobe_map.array)
    if class_map:
        out = np.zeros(array.shape, np.uint8)
        for value, name in class_map.items():
            if name in TOTALSEG_LOBES:
                out[array == int(value)] = TOTALSEG_LOBES[name]
    else:
        if array.max() > 5 or array.min() < 0:
            raise InputError("a lobe map must hold values 0-5 (or pass the TotalSegmentator class map)")
        out = array.astype(np.uint8)
    if not out.any():
        raise EmptyInputError("the lobe map holds no lobe voxels")
    return lobe_map.with_array(out), dict(LOBE_NAMES)


def regions_from_lungs(lungs: Image) -> tuple[Image, dict[int, str]]:
    """Upper/middle/lower thirds (axial extent) of each lung of a lung mask (1 right, 2 left)."""
    array = np.asarray(lungs.array)
    if array.ndim != 3:
        raise InputError("lung thirds need a 3D lung mask")
    out = np.zeros(array.shape, np.uint8)
    for lung, offset in ((1, 0), (2, 3)):
        zs = np.nonzero((array == lung).any(axis=(1, 2)))[0]
        if zs.size == 0:
            continue
        # z index grows towards the head in a standard LPS volume only if direction[2,2] > 0
        edges = np.linspace(zs.min(), zs.max() + 1, 4)
        superior_first = lungs.direction[2, 2] > 0
        for third in range(3):
            z0, z1 = int(round(edges[third])), int(round(edges[third + 1]))
            part = 2 - third if superior_first else third
            slab = np.zeros(array.shape, bool)
            slab[z0:z1] = True
            out[slab & (array == lung)] = offset + part + 1
    if not out.any():
        raise EmptyInputError("the lung mask holds no lung voxels")
    return lungs.with_array(out), dict(THIRD_NAMES)


def regions_from_ct(image: Image) -> tuple[Image, dict[int, str]]:
    """Lung thirds from a HU CT via the classical lung mask (``lunglesion.lungmask``)."""
    from lunglesion.lungmask import segment_lungs

    return regions_from_lungs(segment_lungs(image))


def volume_regions(image: Image, lobe_map_file: Path | None = None) -> tuple[Image, dict[int, str]]:
    """Regions of a HU volume: the lobes of its lobe map file (values 1-5) when there is one, else
    the lung thirds of :func:`regions_from_ct`."""
    if lobe_map_file is None:
        return regions_from_ct(image)
    from lunglesion.io import read_labelmap

    return regions_from_lobes(read_labelmap(lobe_map_file))
