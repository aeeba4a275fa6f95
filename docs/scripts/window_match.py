"""Reproduce the HU window of the covid_semiseg slices (evidence for docs/intensity_convention.md).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/window_match.py`` (about 20 s).
It compares the grey-level histogram of the 50 covid_semiseg training slices with the
histogram of body-cropped axial slices of real HU CT (lung levels) windowed with
``[low, high]``, over a grid of windows, and reports the window with the smallest
1-Wasserstein distance, plus landmark grey levels (lung / soft tissue peaks, saturation).
"""

from __future__ import annotations

import glob
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import SimpleITK as sitk
from PIL import Image
from scipy import ndimage as ndi

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HU_MIN = -2048  # offset of the HU histogram index


def covid_histogram(pattern: str) -> np.ndarray:
    """Pooled normalised 256-bin histogram of the 8-bit slices matching ``pattern``."""
    h = np.zeros(256)
    for f in sorted(glob.glob(pattern)):
        h += np.bincount(np.asarray(Image.open(f).convert("L")).ravel(), minlength=256)
    return h / h.sum()


def body_cropped_hu_histogram(array: np.ndarray, min_lung_fraction: float) -> tuple[np.ndarray, int]:
    """HU histogram of axial slices cropped to the body bounding box (as covid_semiseg is)."""
    h = np.zeros(6000)
    used = 0
    for s in array:
        body = s > -500
        lab, n = ndi.label(body)
        if n == 0:
            continue
        body = ndi.binary_fill_holes(lab == 1 + np.argmax(ndi.sum(body, lab, range(1, n + 1))))
        if (body & (s < -500)).sum() < min_lung_fraction * body.sum():
            continue
        ys, xs = np.nonzero(body)
        crop = np.clip(s[ys.min():ys.max() + 1, xs.min():xs.max() + 1], -1100, 3900)
        h += np.bincount((crop.astype(np.int64) - HU_MIN).ravel(), minlength=6000)
        used += 1
    return h, used


def window_histogram(hu_hist: np.ndarray, low: float, high: float) -> np.ndarray:
    """8-bit histogram obtained by windowing a HU histogram with [low, high]."""
    hu = np.arange(hu_hist.size) + HU_MIN
    grey = np.clip(np.round((hu - low) / (high - low) * 255), 0, 255).astype(np.int64)
    h = np.bincount(grey, weights=hu_hist, minlength=256)
    return h / h.sum()


def w1(h1: np.ndarray, h2: np.ndarray) -> float:
    """1-Wasserstein distance (grey levels) between two 256-bin histograms."""
    return float(np.abs(np.cumsum(h1) - np.cumsum(h2)).sum())


def peaks(h: np.ndarray) -> tuple[int, int]:
    """Grey level of the dark (lung) peak in [0, 128) and the bright (soft tissue) peak in [128, 255)."""
    hs = ndi.gaussian_filter1d(h, 3)
    return int(np.argmax(hs[:128])), 128 + int(np.argmax(hs[128:255]))


def main() -> None:
    target = covid_histogram(str(DATA / "covid_semiseg/train/images/*.jpg"))
    sources = {
        "chest_ct lung1": (str(DATA / "chest_ct/lung1_image.nrrd"), 0.15),
        "lungmask dicom": (str(DATA / "dicom/lungmask_slices/0.dcm"), 0.15),
        "totalseg ct (lung bases)": (str(DATA / "totalseg/ct.nii.gz"), 0.05),
    }
    hu_hists = {}
    for name, (path, frac) in sources.items():
        hu_hists[name], used = body_cropped_hu_histogram(sitk.GetArrayFromImage(sitk.ReadImage(path)), frac)
        print(f"{name}: {used} slices")
    pooled = sum(hu_hists.values())  # pixel-weighted
    lows, highs = np.arange(-1500, -699, 10), np.arange(-200, 801, 10)
    per_image = np.array([peaks(np.bincount(np.asarray(Image.open(f).convert("L")).ravel(), minlength=256))
                          for f in sorted(glob.glob(str(DATA / "covid_semiseg/train/images/*.jpg")))])
    print(f"covid_semiseg/train: median per-image lung peak {np.median(per_image[:, 0])}, soft-tissue peak "
          f"{np.median(per_image[:, 1])} (IQR {np.percentile(per_image[:, 1], [25, 75])}); "
          f"saturated 255 = {target[255]:.3f}, zero = {target[0]:.3f}")
    for name, h in list(hu_hists.items()) + [("pooled", pooled)]:
        d = np.array([[w1(window_histogram(h, lo, hi), target) for hi in highs] for lo in lows])
        i, j = np.unravel_index(np.argmin(d), d.shape)
        print(f"{name}: best window [{lows[i]}, {highs[j]}] W1 = {d[i, j]:.2f} grey levels; "
              f"[-1250, 250] W1 = {w1(window_histogram(h, -1250, 250), target):.2f}; "
              f"[-1000, 400] W1 = {w1(window_histogram(h, -1000, 400), target):.2f}")
        hu = np.arange(h.size) + HU_MIN
        hs = ndi.gaussian_filter1d(h, 10)
        lung_hu = hu[np.argmax(np.where((hu > -980) & (hu < -500), hs, 0))]
        soft_hu = hu[np.argmax(np.where((hu > -50) & (hu < 200), hs, 0))]
        g_lung, g_soft = np.median(per_image, axis=0)
        width = 255 * (soft_hu - lung_hu) / (g_soft - g_lung)
        low = lung_hu - g_lung * width / 255
        print(f"   HU peaks: lung {lung_hu}, soft tissue {soft_hu} -> landmark window "
              f"[{low:.0f}, {low + width:.0f}]")
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(target, label="covid_semiseg/train (50 slices)", lw=2, color="k")
    for lo, hi, style in ((-1250, 250, ":"), (-1000, 400, "--")):
        ax.plot(window_histogram(pooled, lo, hi), style, label=f"real CT, window [{lo}, {hi}]")
    d = np.array([[w1(window_histogram(pooled, lo, hi), target) for hi in highs] for lo in lows])
    i, j = np.unravel_index(np.argmin(d), d.shape)
    ax.plot(window_histogram(pooled, lows[i], highs[j]), label=f"real CT, fitted [{lows[i]}, {highs[j]}]")
    ax.set_yscale("log")
    ax.set_xlabel("grey level (0-255)")
    ax.set_ylabel("fraction of pixels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(__file__).resolve().parents[1] / "images" / "window_match.png", dpi=100)


if __name__ == "__main__":
    main()
