"""SIMULATION: ground-glass lesions painted into real chest CT lungs, to exercise the 3D dRAM path.

Real 3D COVID-19 CTs with per-lobe scores cannot be obtained here. Each simulated lesion is
an ellipsoid (radii 6-25 mm) whose surface is perturbed by smoothed noise (irregular
edge) and blended with a soft sigmoid edge (~2 mm) towards a ground-glass value drawn in
[-700, -300] HU, plus +-30 HU texture; it only brightens lung voxels (vessels are kept).
The lesion mask is blend > 0.5 inside the lungs. Results on such data are simulation
results, not clinical accuracy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from lunglesion.errors import EmptyInputError
from lunglesion.image import Image


def simulate_ground_glass(image: Image, lungs: np.ndarray, count: int = 6, seed: int = 0) -> tuple[Image, np.ndarray]:
    """A copy of the HU ``image`` with ``count`` ground-glass lesions in ``lungs``; returns (image, mask)."""
    lungs = np.asarray(lungs) > 0
    if not lungs.any():
        raise EmptyInputError("no lung voxels to place simulated lesions in")
    rng = np.random.default_rng(seed)
    hu = np.asarray(image.array, dtype=np.float32).copy()
    spacing_zyx = np.array(image.spacing[::-1])
    grid = np.indices(hu.shape, dtype=np.float32)
    candidates = np.argwhere(ndimage.binary_erosion(lungs, iterations=2) if lungs.sum() > 1000 else lungs)
    alpha_total = np.zeros(hu.shape, np.float32)
    target = np.zeros(hu.shape, np.float32)
    for _ in range(count):
        centre = candidates[rng.integers(len(candidates))]
        radii = rng.uniform(6, 25, size=3)
        dist = np.sqrt(sum(((grid[a] - centre[a]) * spacing_zyx[a] / radii[a]) ** 2 for a in range(3)))
        noise = ndimage.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32),
                                        sigma=4 / spacing_zyx)
        noise /= noise.std() + 1e-6
        edge = 1 - dist + 0.25 * noise  # irregular surface where edge == 0
        alpha = 1 / (1 + np.exp(-edge * radii.mean() / 2.0))  # ~2 mm soft edge
        value = rng.uniform(-700, -300)
        take = alpha > alpha_total
        target[take] = value
        alpha_total = np.maximum(alpha_total, alpha)
    alpha_total *= lungs
    texture = 30 * ndimage.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32), 1.0)
    painted = np.maximum(hu, (1 - alpha_total) * hu + alpha_total * (target + texture))
    mask = (alpha_total > 0.5) & lungs
    return image.with_array(painted.astype(np.float32)), mask.astype(np.uint8)


SIM_BUDGET = {"chunk": 32, "base": 4, "grid": 16, "epochs_dram": 20, "epochs_cam": 10, "epochs_final": 5,
              "batch": 4, "lr": 1e-3}


def _shrink(image: Image, factor: int) -> Image:
    """In-plane downsampling by ``factor`` (linear), geometry updated; keeps the 3D run small."""
    zoomed = ndimage.zoom(np.asarray(image.array, np.float32), (1, 1 / factor, 1 / factor), order=1)
    spacing = (image.spacing[0] * factor, image.spacing[1] * factor, image.spacing[2])
    return Image(zoomed, spacing, image.origin, image.direction)


def run_simulation(data: Path | str, out_dir: Path | str, lesions_per_case: int = 6,
                   seeds_per_volume: int = 3, budget: dict[str, float] | None = None) -> dict[str, float]:
    """SIMULATION run of the 3D chain on ``chest_ct/lung1`` (lung thirds from the classical lung
    mask) and ``totalseg/ct`` (TotalSegmentator lobes); returns pseudo-label IoU against the
    simulated masks (the chain itself never sees them)."""
    from lunglesion.io import read_image, read_labelmap
    from lunglesion.lungmask import segment_lungs
    from lunglesion.weak.pipeline import case_3d, run_chain
    from lunglesion.weak.regions import regions_from_lobes, regions_from_lungs
    from lunglesion.weak.weaklabels import derive_weak_labels, read_weak_labels

    data, out = Path(data), Path(out_dir)
    lung1 = _shrink(read_image(data / "chest_ct" / "lung1_image.nrrd"), 4)
    lung1_regions = regions_from_lungs(segment_lungs(lung1))
    ct = read_image(data / "totalseg" / "ct.nii.gz")
    class_map = json.loads((data / "totalseg" / "class_maps.json").read_text())["total_v1"]
    ct_regions = regions_from_lobes(read_labelmap(data / "totalseg" / "ct_seg_total_v1.nii.gz"),
                                    {int(k): v for k, v in class_map.items()})
    cases, truths, labelled = [], {}, []
    for volume, (regions, names), tag in ((lung1, lung1_regions, "lung1"), (ct, ct_regions, "totalseg")):
        for seed in range(seeds_per_volume):
            name = f"{tag}_sim{seed}"
            sim, mask = simulate_ground_glass(volume, np.asarray(regions.array) > 0, lesions_per_case, seed)
            truths[name] = mask.astype(bool)
            labelled.append((name, regions, sim.with_array(mask), names))
            cases.append(case_3d(name, np.asarray(sim.array), np.asarray(regions.array), names, sim.spacing[::-1]))
    derive_weak_labels(labelled, out / "scores.csv")
    run_chain(cases, read_weak_labels(out / "scores.csv"), out, "3d", budget={**SIM_BUDGET, **(budget or {})},
              log=lambda m: print(m, flush=True))
    scores: dict[str, list[float]] = {}
    for name, truth in truths.items():
        pseudo = np.load(out / "pseudo" / f"{name}.npz")
        for key in pseudo.files:
            pred = pseudo[key].astype(bool)
            scores.setdefault(f"iou_{key}", []).append((pred & truth).sum() / max(1, (pred | truth).sum()))
    results = {k: float(np.mean(v)) for k, v in scores.items()}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    print(run_simulation(sys.argv[1], sys.argv[2]))
