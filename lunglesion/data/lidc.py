"""LIDC nodule slices (``lidc_slices``): loading, patient-wise split and nodule ROI patches.

``lidc_108slices.npz`` holds per-slice z-scored 512x512 slices whose outside-lung voxels are
exactly 0, and >=50 % consensus masks. Slice names start with the patient id
(``0001_NI000_slice000``). Every patch handed to a network goes through
:func:`normalize_patch`, the single input convention of the nodule networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from lunglesion.errors import InputError
from lunglesion.softmask import soft_mask_array

NPZ_NAME = "lidc_108slices.npz"


@dataclass
class NoduleSlice:
    """One slice centred on one nodule (a connected mask component), with its masks."""

    patient: str
    name: str
    image: np.ndarray      # float32 [y, x], z-scored, outside lung == 0
    mask: np.ndarray       # bool [y, x], all nodules of the slice
    soft: np.ndarray       # float32 [y, x], their soft mask
    centre: tuple[float, float]
    extent: int            # larger side of the nodule bounding box, pixels


def load_lidc_slices(folder: Path) -> list[NoduleSlice]:
    """Read the npz in ``folder``; one record per (slice, nodule component)."""
    path = Path(folder) / NPZ_NAME
    if not path.exists():
        raise InputError(f"LIDC slice file not found: {path}")
    data = np.load(path)
    records: list[NoduleSlice] = []
    for name, image, mask in zip(data["image_names"], data["images"], data["masks"]):
        image = image.astype(np.float32)
        soft_all = soft_mask_array(image, mask, domain="zscore")
        labels, _ = ndimage.label(mask)
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            component = labels == index
            if component.sum() < 5:
                continue
            ys, xs = np.nonzero(component)
            extent = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
            records.append(NoduleSlice(str(name)[:4], str(name).removesuffix(".npy"), image, mask,
                                       soft_all, (float(ys.mean()), float(xs.mean())), int(extent)))
    return records


def split_by_patient(records: list[NoduleSlice], val_patients: tuple[str, ...]
                     ) -> tuple[list[NoduleSlice], list[NoduleSlice]]:
    """Training and validation records; no patient is in both."""
    train = [r for r in records if r.patient not in val_patients]
    val = [r for r in records if r.patient in val_patients]
    if not train or not val:
        raise InputError(f"patient split {val_patients} leaves an empty training or validation set")
    return train, val


def crop_square(array: np.ndarray, centre: tuple[float, float], size: int, fill: float = 0.0) -> np.ndarray:
    """``size`` x ``size`` crop centred on ``centre`` (row, col), padded with ``fill``."""
    top = int(round(centre[0] - size / 2))
    left = int(round(centre[1] - size / 2))
    out = np.full((size, size), fill, dtype=np.float32)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, array.shape[0]), min(left + size, array.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = array[y0:y1, x0:x1]
    return out


def validation_patch_size(extent: int) -> int:
    """Deterministic ROI side for a nodule: twice its extent, within the 50-100 px of the test set."""
    return int(np.clip(2 * extent, 50, 100))


def normalize_patch(patch: np.ndarray) -> np.ndarray:
    """The nodule networks' input convention: robust min-max of the patch to [0, 1].

    Percentiles 1 and 99.5 map to 0 and 1, so an 8-bit lung-window PNG (any window), a
    lung-windowed HU crop and a z-scored LIDC crop all end up with parenchyma near 0 and
    solid tissue near 1. Constant patches map to zeros.
    """
    patch = np.asarray(patch, dtype=np.float32)
    low, high = np.percentile(patch, [1.0, 99.5])
    if high - low < 1e-6:
        return np.zeros_like(patch)
    return np.clip((patch - low) / (high - low), 0.0, 1.0).astype(np.float32)
