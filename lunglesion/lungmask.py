"""Classical lung segmentation of HU CT (no network): 1 = right lung, 2 = left lung.

Steps, on axial slices in patient space (:func:`lunglesion.preprocessing.axial_view`):

0. in-plane block averaging to about ``WORK_SPACING_MM`` (speed: < 2 s for 512x512x48);
1. air = HU < -320, minus air connected to the in-plane border of its slice (outside the body);
2. airway: from the most superior near-midline air spot of trachea size, 3D region growing
   on HU < ``AIRWAY_HU`` (given up above ``AIRWAY_MAX_ML``, a leak), removed with a margin;
3. 3D components of at least ``MIN_COMPONENT_ML`` and 10 % of the largest; the lungs are the
   most superior of them (centroid within ``SAME_LEVEL_MM``), which rejects bowel gas in
   abdominal scans that only show the lung bases;
4. in-plane erosion of growing radius until two large components remain: they seed the lungs,
   smaller eroded parts (trachea, main bronchi) seed "airway"; every air voxel of the kept
   components goes to its nearest seed (this both removes the airway and splits touching lungs);
5. per lung and per slice: closing (radius ``CLOSING_MM``) and hole filling, so that vessels,
   nodules and juxtapleural lesions count as lung;
6. right/left from the patient x axis (LPS: +x = patient left);
7. back to full resolution: the core of each lung is kept, its one-voxel outer band only
   where the full-resolution voxel is air.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from lunglesion.errors import DimensionError, EmptyInputError, NotCTError
from lunglesion.image import Image
from lunglesion.preprocessing.slicing import axial_view

AIR_THRESHOLD_HU = -320.0
MIN_COMPONENT_ML = 5.0
MIN_COMPONENT_FRACTION = 0.1
SAME_LEVEL_MM = 40.0
WORK_SPACING_MM = 1.5
AIRWAY_HU = -950.0
AIRWAY_MAX_ML = 250.0
TRACHEA_AREA_CM2 = (0.5, 8.0)
TRACHEA_MIDLINE_MM = 40.0
TRACHEA_MIN_LENGTH_MM = 30.0
CLOSING_MM = 6.0
EROSION_STEPS_MM = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0)
SECOND_LUNG_FRACTION = 0.1
RIGHT_LUNG, LEFT_LUNG = 1, 2

_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = ndi.generate_binary_structure(2, 1)


def _in_plane_edt(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Distance (mm) to the nearest False voxel of the same slice (huge slice spacing)."""
    return ndi.distance_transform_edt(mask, sampling=(1e6, spacing[1], spacing[2]))


def _body_air(hu: np.ndarray) -> np.ndarray:
    """Air voxels not connected, within their slice, to the slice border."""
    air = hu < AIR_THRESHOLD_HU
    labels, _ = ndi.label(air, structure=_IN_PLANE)
    border = np.zeros_like(air)
    border[:, [0, -1], :] = True
    border[:, :, [0, -1]] = True
    outside = np.unique(labels[border & air])
    return air & ~np.isin(labels, outside[outside > 0])


def _seeds(air: np.ndarray, spacing: tuple[float, float, float], voxel_ml: float) -> tuple[np.ndarray, int]:
    """Eroded seeds: labels 1..n (1, 2 = the lungs when two are found) and the number of lungs."""
    depth = _in_plane_edt(air, spacing)
    labels = np.zeros(air.shape, dtype=np.int32)
    for radius in EROSION_STEPS_MM:
        labels, n = ndi.label(depth > radius)
        if n == 0:
            break
        sizes = np.bincount(labels.ravel())[1:]
        order = np.argsort(sizes)[::-1]
        if n >= 2 and sizes[order[1]] >= SECOND_LUNG_FRACTION * sizes[order[0]]:
            keep = order[sizes[order] * voxel_ml >= 0.5]
            return _relabel(labels, keep), 2
    labels, n = ndi.label(air)
    sizes = np.bincount(labels.ravel())[1:]
    return _relabel(labels, np.argsort(sizes)[::-1][:1]), 1


def _relabel(labels: np.ndarray, keep_in_order: np.ndarray) -> np.ndarray:
    lut = np.zeros(labels.max() + 1, dtype=np.int32)
    lut[np.asarray(keep_in_order) + 1] = np.arange(1, len(keep_in_order) + 1)
    return lut[labels]


def _close_and_fill(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Per-slice closing with a disc of ``CLOSING_MM`` and hole filling, in the mask's bounding box."""
    pad = int(np.ceil(CLOSING_MM / min(spacing[1:]))) + 1
    zs, ys, xs = (np.nonzero(np.any(mask, axis=a))[0] for a in ((1, 2), (0, 2), (0, 1)))
    box = (slice(zs[0], zs[-1] + 1), slice(max(ys[0] - pad, 0), ys[-1] + pad + 1),
           slice(max(xs[0] - pad, 0), xs[-1] + pad + 1))
    sub = np.pad(mask[box], ((0, 0), (pad, pad), (pad, pad)))
    dilated = _in_plane_edt(~sub, spacing) <= CLOSING_MM
    closed = _in_plane_edt(dilated, spacing) > CLOSING_MM
    closed = ndi.binary_fill_holes(closed | sub, structure=_IN_PLANE)[:, pad:-pad, pad:-pad]
    out = np.zeros_like(mask)
    out[box] = closed
    return out


def _downsample(hu: np.ndarray, factor: int) -> np.ndarray:
    """In-plane block mean by ``factor`` (edges padded by replication)."""
    if factor == 1:
        return hu.astype(np.float32)
    z, y, x = hu.shape
    pad = ((0, 0), (0, -y % factor), (0, -x % factor))
    a = np.pad(hu.astype(np.float32), pad, mode="edge")
    return a.reshape(z, a.shape[1] // factor, factor, a.shape[2] // factor, factor).mean(axis=(2, 4))


def _upsample(mask: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour inverse of :func:`_downsample`."""
    if factor == 1:
        return mask
    return mask.repeat(factor, axis=1).repeat(factor, axis=2)[:, :shape[1], :shape[2]]


def _airway(hu: np.ndarray, air: np.ndarray, spacing: tuple[float, float, float], voxel_ml: float) -> np.ndarray:
    """Trachea and main bronchi grown from the most superior trachea-like spot (empty if none)."""
    pixel_cm2 = spacing[1] * spacing[2] / 100.0
    midline = np.nonzero(air)[2].mean() if air.any() else 0.0
    dark = air & (hu < AIRWAY_HU)
    grown, _ = ndi.label(dark)
    for z in range(air.shape[0] - 1, -1, -1):
        comp, n = ndi.label(dark[z])
        for k in range(1, n + 1):
            rows, cols = np.nonzero(comp == k)
            if (TRACHEA_AREA_CM2[0] <= rows.size * pixel_cm2 <= TRACHEA_AREA_CM2[1]
                    and abs(cols.mean() - midline) * spacing[2] <= TRACHEA_MIDLINE_MM):
                airway = grown == grown[z, rows[0], cols[0]]
                levels = np.nonzero(airway.any(axis=(1, 2)))[0]
                if (levels[-1] - levels[0] + 1) * spacing[0] < TRACHEA_MIN_LENGTH_MM:
                    continue  # an isolated air pocket, not the airway tree
                return airway if airway.sum() * voxel_ml <= AIRWAY_MAX_ML else np.zeros_like(air)
        if comp.any() and air[z].sum() * pixel_cm2 > 4 * TRACHEA_AREA_CM2[1]:
            break  # reached the lungs without finding a trachea above them
    return np.zeros_like(air)


def _select_lung_components(air: np.ndarray, spacing: tuple[float, float, float], voxel_ml: float) -> np.ndarray:
    """Keep the large air components at the most superior level (the lungs with their airways)."""
    comp, n = ndi.label(air)
    sizes = np.bincount(comp.ravel())[1:] * voxel_ml
    big = np.nonzero(sizes >= max(MIN_COMPONENT_ML, MIN_COMPONENT_FRACTION * sizes.max(initial=0)))[0] + 1
    if big.size == 0:
        raise EmptyInputError("no lung-like air region found in the image")
    heights = np.array(ndi.mean(np.arange(air.shape[0])[:, None, None] * np.ones_like(air, dtype=np.float32),
                                comp, big)) * spacing[0]
    return np.isin(comp, big[heights >= heights.max() - SAME_LEVEL_MM])


def segment_lungs(image: Image) -> Image:
    """Right (1) and left (2) lung labelmap of a HU CT volume, same geometry as ``image``."""
    if image.ndim != 3:
        raise DimensionError(f"lung segmentation needs a 3D CT volume, got a {image.ndim}D image")
    view = axial_view(image)
    if view.array.size == 0 or float(np.percentile(view.array, 1)) > -500:
        raise NotCTError("the image has no air below -500 HU; is it a CT in Hounsfield units?")
    factor = max(1, int(round(WORK_SPACING_MM / min(view.spacing[1:]))))
    spacing = (view.spacing[0], view.spacing[1] * factor, view.spacing[2] * factor)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    hu = _downsample(view.array, factor)
    air = _body_air(hu)
    airway = _airway(hu, air, spacing, voxel_ml)
    air &= ~ndi.binary_dilation(airway, structure=_IN_PLANE, iterations=2)
    air = _select_lung_components(air, spacing, voxel_ml)
    seeds, n_lungs = _seeds(air, spacing, voxel_ml)
    _, nearest = ndi.distance_transform_edt(seeds == 0, sampling=spacing, return_indices=True)
    owner = np.where(air, seeds[tuple(nearest)], 0)
    lungs = [owner == k for k in range(1, n_lungs + 1)]
    # View columns run patient right -> left: the lung with the smaller mean column is the right one.
    columns = [np.nonzero(lung)[2].mean() for lung in lungs]
    if n_lungs == 2:
        sides = [RIGHT_LUNG, LEFT_LUNG] if columns[0] <= columns[1] else [LEFT_LUNG, RIGHT_LUNG]
    else:
        sides = [RIGHT_LUNG if columns[0] < hu.shape[2] / 2 else LEFT_LUNG]
    full_air = view.array < AIR_THRESHOLD_HU
    labels = np.zeros(view.array.shape, dtype=np.uint8)
    for lung, side in zip(lungs, sides):
        filled = _close_and_fill(lung, spacing)
        core = ndi.binary_erosion(filled, structure=_IN_PLANE)
        full = _upsample(filled, factor, labels.shape) & (full_air | _upsample(core, factor, labels.shape))
        labels[full & (labels == 0)] = side
    return image.with_array(view.to_image_array(labels))


def lung_volumes_ml(lungs: Image) -> dict[str, float]:
    """Volumes in ml of the right lung, left lung and both, from a :func:`segment_lungs` labelmap."""
    counts = np.bincount(np.asarray(lungs.array, dtype=np.int64).ravel(), minlength=3)
    voxel_ml = lungs.voxel_volume_mm3 / 1000.0
    right, left = float(counts[RIGHT_LUNG] * voxel_ml), float(counts[LEFT_LUNG] * voxel_ml)
    return {"right_lung": right, "left_lung": left, "lungs": right + left}
