"""Classes and 1-way k-shot episodes from every label map in the shared data folder.

Each labelled structure of each volume becomes a :class:`ClassVolume` (axial slices,
normalised intensities, binary mask). 2D sets become one-slice volumes (COVID-SemiSeg)
or per-patient stacks (LIDC). Training episodes pair a support slice with a query slice
of the same class, from the same volume (region of interest around the support label,
as at interactive inference) or from another one (whole slice, relative-position
matching), with RP-Net's augmentation (gamma, random affine).
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lunglesion.data.augment import AugmentConfig, random_affine
from lunglesion.data.labelled2d import load_labelled_set
from lunglesion.fewshot.registration import warp
from lunglesion.fewshot.slices import axial_arrays, normalise_intensity, resize_stack, roi_box
from lunglesion.io import read_image, read_labelmap

HELD_OUT_CLASSES = ("liver", "spleen", "kidney_left", "kidney_right")
HELD_OUT_SOURCES = ("chest_ct",)  # the interactive-case volume is never trained on
MIN_AREA = 12


@dataclass
class ClassVolume:
    """One structure in one volume: axial slices in [-1, 1] and its mask."""

    name: str
    source: str
    image: np.ndarray  # float32 [z, y, x]
    mask: np.ndarray  # bool [z, y, x]

    @property
    def slices(self) -> np.ndarray:
        """Indices of slices holding at least ``MIN_AREA`` label pixels."""
        return np.nonzero(self.mask.sum((1, 2)) >= MIN_AREA)[0]

    @property
    def modality(self) -> str:
        return "mr" if self.source.startswith(("mr", "totalseg/mr")) else "ct"


def _volume_classes(image_path: Path, label_path: Path, source: str,
                    names: dict[int, str]) -> list[ClassVolume]:
    arr = normalise_intensity(axial_arrays(read_image(image_path)))
    lab = axial_arrays(read_labelmap(label_path))
    out = []
    for value in np.unique(lab):
        if value == 0 or int(value) not in names:
            continue
        cv = ClassVolume(names[int(value)], source, arr, lab == value)
        if len(cv.slices):
            out.append(cv)
    return out


def load_class_volumes(root: Path) -> list[ClassVolume]:
    """Every labelled structure of the shared data folder (see module docstring)."""
    root = Path(root)
    maps = json.loads((root / "totalseg" / "class_maps.json").read_text())
    maps = {k: {int(n): name for n, name in v.items()} for k, v in maps.items()}
    ts = root / "totalseg"
    classes = _volume_classes(ts / "ct.nii.gz", ts / "ct_seg_total_v1.nii.gz", "totalseg/ct", maps["total_v1"])
    classes += _volume_classes(ts / "ct_sm.nii.gz", ts / "ct_sm_seg_total_v2.nii.gz", "totalseg/ct_sm", maps["total"])
    classes += _volume_classes(ts / "mr_sm.nii.gz", ts / "mr_sm_seg_total_mr.nii.gz", "totalseg/mr_sm", maps["total_mr"])
    classes += _volume_classes(root / "dicom" / "totalseg_ct_series", root / "dicom" / "totalseg_ct_series_seg.nii.gz",
                               "dicom/totalseg", maps["total"])
    classes += _volume_classes(root / "chest_ct" / "lung1_image.nrrd", root / "chest_ct" / "lung1_label.nrrd",
                               "chest_ct", {1: "lung_nodule"})
    classes += _volume_classes(root / "mr" / "brain1_image.nrrd", root / "mr" / "brain1_label.nrrd",
                               "mr/brain", {1: "brain_tumour"})
    classes += _volume_classes(root / "mr" / "breast1_image.nrrd", root / "mr" / "breast1_label.nrrd",
                               "mr/breast", {1: "breast_tumour"})
    lidc = np.load(root / "lidc_slices" / "lidc_108slices.npz")
    by_patient: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(lidc["image_names"]):
        by_patient[str(name)[:4]].append(i)
    for patient, idx in sorted(by_patient.items()):
        imgs = np.stack([normalise_intensity(lidc["images"][i].astype(np.float32), "minmax") for i in idx])
        classes.append(ClassVolume("lung_nodule", f"lidc/{patient}", imgs, lidc["masks"][idx].astype(bool)))
    for sample in load_labelled_set(root / "covid_semiseg" / "train"):
        classes.append(ClassVolume("covid_infection", f"covid/{sample.stem}",
                                   (sample.image[None] * 2 - 1).astype(np.float32), sample.mask[None] > 0))
    return [c for c in classes if len(c.slices)]


def split_classes(classes: list[ClassVolume]) -> tuple[list[ClassVolume], list[ClassVolume]]:
    """(training, held-out): held-out classes and sources are never seen in training."""
    held = [c for c in classes if c.name in HELD_OUT_CLASSES or c.source in HELD_OUT_SOURCES]
    return [c for c in classes if c not in held], held


@dataclass
class Episode:
    """A batch-ready 1-way episode: tensors at the network size."""

    support_images: torch.Tensor  # (S, 1, N, N)
    support_masks: torch.Tensor  # (S, N, N)
    query: torch.Tensor  # (1, N, N)
    query_mask: torch.Tensor  # (N, N)


def crop_pair(volume: ClassVolume, z: int, box: tuple[int, int, int, int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slice ``z`` of ``volume`` cropped to ``box`` and resized to ``size``: image, mask."""
    y0, y1, x0, x1 = box
    img = resize_stack(volume.image[z:z + 1, y0:y1, x0:x1], size)[0]
    msk = (resize_stack(volume.mask[z:z + 1, y0:y1, x0:x1].astype(np.float32), size, mode="area")[0] > 0.5).float()
    return img, msk


class EpisodeSampler:
    """Random training episodes over the given classes (uniform over class names)."""

    def __init__(self, classes: list[ClassVolume], size: int = 128, seed: int = 0) -> None:
        self.by_name: dict[str, list[ClassVolume]] = defaultdict(list)
        for c in classes:
            self.by_name[c.name].append(c)
        self.names = sorted(self.by_name)
        self.size = size
        self.rng = random.Random(seed)
        self.aug = AugmentConfig(scale=(0.9, 1.1), rotation_deg=10.0, translation=0.05, flip_probability=0.0)

    def sample(self) -> Episode:
        """One 1-shot episode (support and query may come from the same volume)."""
        rng = self.rng
        volumes = self.by_name[rng.choice(self.names)]
        sup = rng.choice(volumes)
        zs_all = sup.slices
        zs = int(rng.choice(list(zs_all)))
        others = [v for v in volumes if v is not sup and v.modality == sup.modality]
        same = len(zs_all) >= 2 and (not others or rng.random() < 0.6)
        if same:
            lo, hi = int(zs_all.min()), int(zs_all.max())
            candidates = [z for z in range(max(0, lo - 2), min(sup.image.shape[0], hi + 3)) if z != zs]
            zq = rng.choice(candidates)
            box = roi_box(sup.mask[zs], factor=rng.uniform(2.5, 6.0))
            s_img, s_msk = crop_pair(sup, zs, box, self.size)
            q_img, q_msk = crop_pair(sup, zq, box, self.size)
        else:
            qry = rng.choice(others) if others else sup
            zq_all = qry.slices
            rel = (zs - zs_all.min()) / max(1, zs_all.max() - zs_all.min())
            zq = int(round(zq_all.min() + rel * (zq_all.max() - zq_all.min()))) + rng.randint(-1, 1)
            zq = int(np.clip(zq, 0, qry.image.shape[0] - 1))
            s_img, s_msk = crop_pair(sup, zs, (0, sup.image.shape[1], 0, sup.image.shape[2]), self.size)
            q_img, q_msk = crop_pair(qry, zq, (0, qry.image.shape[1], 0, qry.image.shape[2]), self.size)
        s_img, s_msk = self._augment(s_img, s_msk)
        q_img, q_msk = self._augment(q_img, q_msk)
        return Episode(s_img[None, None], s_msk[None], q_img[None], q_msk)

    def _augment(self, img: torch.Tensor, msk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rng.random() < 0.5:
            gamma = math.exp(self.rng.uniform(math.log(0.5), math.log(1.5)))
            img = ((img + 1) / 2).clamp(0, 1) ** gamma * 2 - 1
        if self.rng.random() < 0.5:
            theta = random_affine(1, self.aug, torch.Generator().manual_seed(self.rng.getrandbits(31)))
            both = warp(torch.stack([img + 1, msk])[None], theta)[0]
            img, msk = both[0] - 1, (both[1] > 0.5).float()
        return img, msk

    def batch(self, n: int) -> Episode:
        """``n`` episodes stacked along a leading batch axis."""
        eps = [self.sample() for _ in range(n)]
        return Episode(torch.stack([e.support_images for e in eps]), torch.stack([e.support_masks for e in eps]),
                       torch.stack([e.query for e in eps]), torch.stack([e.query_mask for e in eps]))
