"""Pictures of results: axial montages with segment outlines, for people who would rather see."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from lunglesion.image import Image  # noqa: E402
from lunglesion.io.atomic import atomic_output  # noqa: E402
from lunglesion.preprocessing.slicing import axial_view  # noqa: E402
from lunglesion.preprocessing.windowing import LUNG_WINDOW_HU, hu_to_unit  # noqa: E402
from lunglesion.terminology import SegmentInfo  # noqa: E402


def _display(array: np.ndarray, is_hu: bool) -> np.ndarray:
    if is_hu:
        low, high = LUNG_WINDOW_HU
    else:
        low, high = float(array.min()), float(max(array.max(), array.min() + 1e-6))
    return hu_to_unit(array, (low, high))


def _pick_slices(labels: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` slices, spread over those holding labels (or over all slices if none)."""
    candidates = np.flatnonzero(labels.any(axis=(1, 2)))
    if candidates.size == 0:
        candidates = np.arange(labels.shape[0])
    picks = np.linspace(0, candidates.size - 1, min(n, candidates.size)).round().astype(int)
    return candidates[np.unique(picks)]


def overlay_montage(image: Image, labelmap: Image, segments: list[SegmentInfo], path: Path | str,
                    n_slices: int = 12, columns: int = 4, title: str = "") -> Path:
    """Axial slices (radiological layout) with each segment's outline drawn in its colour."""
    is_hu = bool(image.array.min() < -200)
    if image.ndim == 2:
        grey, labels, picks = image.array[None], labelmap.array[None], np.array([0])
    else:
        grey = axial_view(image).array
        labels = axial_view(labelmap).array
        picks = _pick_slices(labels, n_slices)
    rows = int(np.ceil(len(picks) / columns))
    ncols = min(columns, len(picks))
    fig, axes = plt.subplots(rows, ncols, figsize=(3 * ncols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, k in zip(axes.ravel(), picks):
        rgb = np.repeat(_display(grey[k], is_hu)[..., None], 3, axis=2)
        for seg in segments:
            mask = labels[k] == seg.label_value
            outline = mask & ~ndi.binary_erosion(mask)
            rgb[ndi.binary_dilation(outline)] = seg.color
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(f"slice {k}" if image.ndim == 3 else "", fontsize=8)
    handles = [plt.Line2D([0], [0], color=s.color, lw=3, label=s.name) for s in segments]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path
