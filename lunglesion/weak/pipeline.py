"""The dRAM training chain from per-region scores, resumable stage by stage.

Stages (each writes ``OUT/<stage>/`` and is skipped when finished):

1. ``dram``: dRAM + attention on region chunks (region bounding box + margin, outside the
   region set to 0, resized to ``chunk``^d), loss 2 x interval hinge + 1 x refinement.
2. ``cam``: the CAM baseline (same encoder, GAP regressor of the fraction, same weak labels).
3. ``pseudo``: per case, maps of CAM, dRAM, refined dRAM, pasted back into the case grid;
   pseudo labels = map > 0.5 inside the regions, then the dense CRF (``crf_dram``, ``crf_cam``).
   Maps are first calibrated to the fraction each network predicts (:func:`calibrate`): a
   deviation from the paper's plain 0.5, needed because briefly trained maps stay soft;
   applied identically to CAM and dRAM.
4. ``final_dram`` / ``final_cam``: segmentation networks trained on the CRF pseudo labels
   (2D: U-Net on whole slices at ``final_size`` squared, 256 by default; 3D: the dRAM U-Net without attention on chunks).
5. optional, 2D, with unlabelled slices: ``self_dram`` / ``self_cam``, rounds of self-training
   of each final network (:mod:`lunglesion.weak.selftrain`).

Masks are never read here. 2D cases are slices in [0, 1] (8-bit lung window / 255) resized
to 256 x 256; 3D cases are HU volumes windowed [-1000, -300] -> [0, 1] (K prior from the
[-1150, 350] window, as in the official code).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image
from lunglesion.inference.device import resolve_device
from lunglesion.io.atomic import atomic_output
from lunglesion.losses import bce_dice_loss
from lunglesion.networks.dram import CAMNet, DRAMNet
from lunglesion.networks.unet import UNet
from lunglesion.training.checkpoint import load_checkpoint, save_checkpoint, seed_everything
from lunglesion.training.history import CsvHistory
from lunglesion.weak.crf import dense_crf
from lunglesion.weak.losses import (fraction_threshold, intensity_prior, interval_hinge_loss, refinement_loss,
                                    region_fraction, target_interval)
from lunglesion.weak.lungfield import slice_regions
from lunglesion.weak.regions import lung2d_names, lung_parts_of
from lunglesion.weak.weaklabels import WeakLabel, read_weak_labels

SLICE_SIZE = 256
DEFAULTS = {
    "2d": {"chunk": 96, "margin": 5, "base": 8, "grid": 64, "epochs_dram": 80, "epochs_cam": 60,
           "epochs_final": 60, "batch": 8, "lr": 1e-3, "crf_radius": 5, "final_size": SLICE_SIZE,
           "lung_parts": 1, "epochs_self": 12, "self_per_scan": 20, "self_rounds": 2,
           "self_size": SLICE_SIZE, "self_fit": True, "lung_field": "classical"},
    "3d": {"chunk": 80, "margin": 3, "base": 32, "grid": 64, "epochs_dram": 300, "epochs_cam": 200,
           "epochs_final": 100, "batch": 2, "lr": 1e-4, "crf_radius": 2},
}
MAP_KEYS = ("cam", "dram", "refined")
FINAL_2D = {"in_channels": 1, "out_channels": 1, "base": 16, "depth": 4}


def network_size(cfg: dict, stage: str) -> int:
    """Input size of a 2D run's final network (``final_*``) or self-trained student (``self_*``)."""
    return int(cfg["self_size"] if stage.startswith("self") else cfg["final_size"])


def final_network_2d(weights: Path | None = None) -> UNet:
    """The 2D chain's final segmentation network (the registered ``dram`` / ``dram-cam`` architecture),
    optionally with the weights of a ``model.pt`` or a trainer's ``checkpoint.pt`` (then in eval mode)."""
    network = UNet(**FINAL_2D)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=False)
        network.load_state_dict(state.get("model", state))
        network.eval()
    return network


@dataclass
class Case:
    """One training case on its working grid: image in [0, 1], K-prior image, region labels."""

    name: str
    image: np.ndarray
    prior_image: np.ndarray
    regions: np.ndarray
    names: dict[int, str]
    spacing: tuple[float, ...] | None = None


@dataclass
class Chunk:
    """One region of one case, cropped and resized to the network input."""

    case: str
    region: str
    box: tuple[slice, ...]
    image: np.ndarray
    mask: np.ndarray
    prior: np.ndarray
    low: float = 0.0
    high: float = 1.0
    key: str = ""
    weak: WeakLabel | None = None


def window(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """HU -> [0, 1] on ``[low, high]``."""
    return np.clip((hu.astype(np.float32) - low) / (high - low), 0, 1)


def case_2d(name: str, image01: np.ndarray, regions: np.ndarray | None = None, lung_parts: int = 1,
            lung_field: str = "classical") -> Case:
    """A 2D slice in [0, 1] on the 256 x 256 working grid, with its lung regions (``lung_parts``
    bands per lung of the ``lung_field``, :func:`slice_regions`) or the given region labels (values of
    :func:`lung2d_names`)."""
    image = _resize(image01, (SLICE_SIZE, SLICE_SIZE), "linear")
    if regions is None:
        regions = slice_regions(image, lung_parts, lung_field)
    else:
        regions = _resize(regions, image.shape, "nearest")
    return Case(name, image, image, regions.astype(np.uint8), lung2d_names(lung_parts))


def case_3d(name: str, hu: np.ndarray, regions: np.ndarray, names: dict[int, str],
            spacing_zyx: tuple[float, ...] | None = None) -> Case:
    """A HU volume with its region labels (lobes or lung thirds); spacing in array order."""
    return Case(name, window(hu, -1000, -300), window(hu, -1150, 350), regions.astype(np.uint8), names,
                spacing_zyx)


def _resize(array: np.ndarray, shape: tuple[int, ...], mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if mode == "nearest":
        return F.interpolate(t, size=tuple(shape), mode="nearest")[0, 0].numpy().astype(array.dtype)
    mode = "bilinear" if array.ndim == 2 else "trilinear"
    return F.interpolate(t, size=tuple(shape), mode=mode, align_corners=False)[0, 0].numpy()


def make_chunks(case: Case, size: int, margin: int, labels: dict[tuple[str, str], WeakLabel] | None = None) -> list[Chunk]:
    """Region chunks of a case (only the labelled regions when ``labels`` is given)."""
    chunks = []
    for value, name in case.names.items():
        region = case.regions == value
        if not region.any() or (labels is not None and (case.name, name) not in labels):
            continue
        coords = np.argwhere(region)
        lo = np.maximum(coords.min(0) - margin, 0)
        hi = np.minimum(coords.max(0) + 1 + margin, region.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        inside = region[box]
        prior = intensity_prior(case.prior_image[box], inside)
        shape = (size,) * region.ndim
        chunk = Chunk(case.name, name, box, _resize(np.where(inside, case.image[box], 0), shape, "linear"),
                      _resize(inside.astype(np.float32), shape, "nearest"),
                      _resize(prior.astype(np.float32), shape, "nearest"))
        if labels is not None:
            label = labels[(case.name, name)]
            r_k = float(prior.sum() / inside.sum())
            chunk.low, chunk.high = target_interval(label.low, label.high, r_k)
            chunk.key = str(label.score) if label.score is not None else f"{label.low:g}-{label.high:g}"
            chunk.weak = label
        chunks.append(chunk)
    return chunks


def _stack(chunks: list[Chunk], attr: str, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.from_numpy(np.stack([getattr(c, attr) for c in chunks]).astype(np.float32))[:, None].to(device)


def _device_of(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def _train_loop(stage_dir: Path, net: torch.nn.Module, epochs: int, lr: float, resume: bool,
                step: Callable[[list], torch.Tensor], items: list, batch: int,
                log: Callable[[str], None]) -> torch.nn.Module:
    """Generic resumable epoch loop (on the device of ``net``); writes ``model.pt`` when finished."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    final, ckpt = stage_dir / "model.pt", stage_dir / "checkpoint.pt"
    if resume and final.exists():
        net.load_state_dict(torch.load(final, map_location="cpu", weights_only=True))
        log(f"{stage_dir.name}: finished earlier, loaded {final}")
        return net
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    start = 1
    if resume and ckpt.exists():
        start = load_checkpoint(ckpt, model=net, optimizers={"adam": optimizer})["epoch"] + 1
        log(f"{stage_dir.name}: resuming at epoch {start}")
    history = CsvHistory(stage_dir / "history.csv", resume_epoch=start - 1)
    for epoch in range(start, epochs + 1):
        net.train()
        t0, order, total = time.time(), list(range(len(items))), 0.0
        random.shuffle(order)
        for i in range(0, len(order), batch):
            loss = step([items[j] for j in order[i:i + batch]])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        history.append({"epoch": epoch, "loss": total / max(1, len(order) // batch)})
        save_checkpoint(ckpt, epoch=epoch, model=net, optimizers={"adam": optimizer})
        log(f"{stage_dir.name}: epoch {epoch}/{epochs} loss {total:.4f} ({time.time() - t0:.1f} s)")
    history.plot(stage_dir / "history.png", title=stage_dir.name)
    with atomic_output(final) as tmp:
        torch.save(net.state_dict(), tmp)
    return net


def _class_freq(chunks: list[Chunk]) -> dict[str, float]:
    counts = Counter(c.key for c in chunks)
    return {k: v / len(chunks) for k, v in counts.items()}


def _dram_step(net: DRAMNet, freq: dict[str, float]) -> Callable[[list[Chunk]], torch.Tensor]:
    device = _device_of(net)

    def step(batch: list[Chunk]) -> torch.Tensor:
        x, region, prior = (_stack(batch, key, device) for key in ("image", "mask", "prior"))
        low = torch.tensor([c.low for c in batch], device=device)
        high = torch.tensor([c.high for c in batch], device=device)
        weights = torch.tensor([freq[c.key] for c in batch], device=device)
        zero = torch.tensor([c.weak.high == 0 for c in batch], device=device)
        dram, refined = net(x)
        loss = 2.0 * interval_hinge_loss(region_fraction(dram, region), low, high, weights)
        if refined is not None:
            loss = loss + refinement_loss(refined, dram, region, prior, zero)
        return loss
    return step


def _cam_step(net: CAMNet, freq: dict[str, float]) -> Callable[[list[Chunk]], torch.Tensor]:
    device = _device_of(net)

    def step(batch: list[Chunk]) -> torch.Tensor:
        logit, _ = net(_stack(batch, "image", device))
        low = torch.tensor([c.weak.low for c in batch], device=device)
        high = torch.tensor([c.weak.high for c in batch], device=device)
        weights = torch.tensor([freq[c.key] for c in batch], device=device)
        return interval_hinge_loss(torch.sigmoid(logit), low, high, weights)
    return step


def calibrate(prob: torch.Tensor, region: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """Shift maps ``[B, 1, *S]`` so that 0.5 sits at :func:`fraction_threshold` of their region fraction."""
    out = []
    for p, r, f in zip(prob, region, fraction):
        t = fraction_threshold(p[r > 0], float(f)).clamp(1e-4, 0.5)
        shifted = torch.logit(p.clamp(1e-6, 1 - 1e-6)) - torch.logit(t)
        out.append(torch.sigmoid(shifted) * r)
    return torch.stack(out)


@torch.no_grad()
def chunk_maps(dram: DRAMNet | None, cam: CAMNet | None, chunks: list[Chunk], batch: int = 8) -> list[dict[str, np.ndarray]]:
    """Per chunk: ``dram``, ``refined`` and ``cam`` maps in [0, 1], calibrated (:func:`calibrate`)
    to the lesion fraction each network predicts for the region (dRAM: mean sigmoid; CAM:
    its regressor; the CAM itself is max-normalised first)."""
    out: list[dict[str, np.ndarray]] = []
    device = _device_of(dram if dram is not None else cam)
    for i in range(0, len(chunks), batch):
        part = chunks[i:i + batch]
        x, region = _stack(part, "image", device), _stack(part, "mask", device)
        maps: dict[str, torch.Tensor] = {}
        if dram is not None:
            dram.eval()
            d, r = dram(x) if not dram.segment_output else (dram(x), None)
            fraction = region_fraction(d, region)
            maps["dram"] = calibrate(torch.sigmoid(d), region, fraction)
            if r is not None:
                maps["refined"] = calibrate(torch.sigmoid(r), region, fraction)
        if cam is not None:
            cam.eval()
            logit, c = cam(x)
            c = F.relu(c) * region
            peak = c.flatten(1).amax(1).clamp(min=1e-6).view(-1, *([1] * (c.ndim - 1)))
            maps["cam"] = calibrate(c / peak, region, torch.sigmoid(logit))
        out += [{k: v[j, 0].cpu().numpy() for k, v in maps.items()} for j in range(len(part))]
    return out


def paste(case: Case, chunks: list[Chunk], maps: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Chunk maps back on the case grid (inside each chunk's region)."""
    full = {k: np.zeros(case.image.shape, np.float32) for k in (maps[0] if maps else {})}
    for chunk, chunk_map in zip(chunks, maps):
        inside = case.regions[chunk.box] == _value(case, chunk.region)
        for key, m in chunk_map.items():
            resized = _resize(m, inside.shape, "linear")
            full[key][chunk.box][inside] = resized[inside]
    return full


def _value(case: Case, name: str) -> int:
    return next(v for v, n in case.names.items() if n == name)


def pseudo_labels(case: Case, maps: dict[str, np.ndarray], radius: int = 5) -> dict[str, np.ndarray]:
    """Binary pseudo labels: each map > 0.5 in the regions, and the CRF of CAM and refined dRAM.

    3D distances are in units of the smallest spacing (CRF window ``radius`` of those units).
    """
    spacing = None
    if case.spacing is not None:
        spacing = tuple(float(s) / min(case.spacing) for s in case.spacing)
    inside = case.regions > 0
    labels = {k: (m > 0.5) & inside for k, m in maps.items()}
    image = torch.from_numpy(case.image)
    for key, name in (("refined", "crf_dram"), ("cam", "crf_cam")):
        if key in maps:
            prob = dense_crf(torch.from_numpy(maps[key]), image, radius=radius, spacing=spacing).numpy()
            labels[name] = (prob > 0.5) & inside
    return labels


def segment_volume(network: DRAMNet, image: Image, regions: Image, names: dict[int, str],
                   chunk: int) -> Image:
    """Lesion probability of a 3D final network (``dram3d``) on a HU volume, region chunk by chunk."""
    if image.ndim != 3 or not image.same_geometry(regions):
        raise InputError("segment_volume needs a 3D CT and a region map on the same grid")
    case = case_3d("volume", np.asarray(image.array), np.asarray(regions.array), names, image.spacing[::-1])
    chunks = make_chunks(case, chunk, DEFAULTS["3d"]["margin"])
    if not chunks:
        raise EmptyInputError("the region map holds no lung region")
    network.segment_output = True
    probability = paste(case, chunks, chunk_maps(network, None, chunks))["dram"]
    return image.with_array(probability.astype(np.float32))


def _final_step(net: torch.nn.Module, flips: bool) -> Callable[[list], torch.Tensor]:
    device = _device_of(net)

    def step(batch: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
        x = torch.from_numpy(np.stack([b[0] for b in batch]))[:, None].float().to(device)
        y = torch.from_numpy(np.stack([b[1] for b in batch]))[:, None].float().to(device)
        if flips:
            for axis in range(2, x.ndim):
                if random.random() < 0.5:
                    x, y = x.flip(axis), y.flip(axis)
        out = net(x)
        return bce_dice_loss(out[0] if isinstance(out, tuple) else out, y)
    return step


def run_chain(cases: list[Case], labels: dict[tuple[str, str], WeakLabel], out_dir: Path | str,
              variant: str = "2d", resume: bool = True, budget: dict[str, float] | None = None,
              log: Callable[[str], None] = print, seed: int = 0, device: str = "cpu") -> dict[str, Path]:
    """Run every stage on prepared cases (networks on ``device``: cpu, cuda or auto); returns the
    paths of the stage models."""
    if variant not in DEFAULTS:
        raise InputError(f"variant must be '2d' or '3d', got '{variant}'")
    cfg = {**DEFAULTS[variant], **(budget or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    (out / "config.json").write_text(json.dumps({"variant": variant, **cfg, "device": f"{dev.type} ({device_name})"},
                                                indent=2))
    seed_everything(seed)
    ndim = 2 if variant == "2d" else 3
    chunks_by_case = {c.name: make_chunks(c, cfg["chunk"], cfg["margin"], labels) for c in cases}
    chunks = [ch for cs in chunks_by_case.values() for ch in cs]
    if not chunks:
        raise EmptyInputError("no weak label matches a case/region of the data (check case and region names)")
    log(f"{len(cases)} cases, {len(chunks)} labelled regions, training on {dev}")
    freq = _class_freq(chunks)
    dram = DRAMNet(ndim, base=cfg["base"], grid=cfg["grid"]).to(dev)
    _train_loop(out / "dram", dram, int(cfg["epochs_dram"]), cfg["lr"], resume, _dram_step(dram, freq),
                chunks, cfg["batch"], log)
    cam = CAMNet(ndim, base=cfg["base"]).to(dev)
    _train_loop(out / "cam", cam, int(cfg["epochs_cam"]), cfg["lr"], resume, _cam_step(cam, freq),
                chunks, cfg["batch"], log)
    pseudo_dir = out / "pseudo"
    pseudo_dir.mkdir(exist_ok=True)
    for case in cases:
        target = pseudo_dir / f"{case.name}.npz"
        if resume and target.exists():
            continue
        case_chunks = chunks_by_case[case.name]
        maps = paste(case, case_chunks, chunk_maps(dram, cam, case_chunks))
        labels_case = pseudo_labels(case, maps, radius=cfg["crf_radius"])
        with atomic_output(target) as tmp, tmp.open("wb") as f:
            np.savez_compressed(f, **{k: v.astype(np.uint8) for k, v in labels_case.items()})
    log("pseudo labels written")
    finals = {}
    for source, stage in (("crf_dram", "final_dram"), ("crf_cam", "final_cam")):
        items = []
        for case in cases:
            pseudo = np.load(pseudo_dir / f"{case.name}.npz")[source].astype(np.float32)
            if ndim == 2:
                size = (int(cfg["final_size"]),) * 2
                items.append((_resize(case.image, size, "linear"), _resize(pseudo, size, "nearest")))
            else:
                for ch in chunks_by_case[case.name]:
                    items.append((ch.image, _resize(pseudo[ch.box], ch.image.shape, "nearest") * ch.mask))
        net = final_network_2d() if ndim == 2 else DRAMNet(3, base=cfg["base"], attention=False,
                                                                     segment_output=True)
        net = net.to(dev)
        _train_loop(out / stage, net, int(cfg["epochs_final"]), cfg["lr"], resume,
                    _final_step(net, flips=True), items, cfg["batch"], log)
        finals[stage] = out / stage / "model.pt"
    return {"dram": out / "dram" / "model.pt", "cam": out / "cam" / "model.pt", **finals}


def volume_files(folder: Path) -> dict[str, Path]:
    """``{case: path}`` of the volumes (NIfTI, NRRD, MetaImage) in a folder."""
    found = {}
    for p in sorted(folder.iterdir()):
        for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
            if p.name.endswith(suffix):
                found[p.name[: -len(suffix)]] = p
    return found


def load_cases(data_dir: Path | str, case_names: set[str], variant: str = "2d",
               regions_dir: Path | str | None = None, lung_parts: int = 1, lung_field: str = "classical"
               ) -> list[Case]:
    """Read the cases named in the weak labels (2D: ``DATA/images/``, ``lung_parts`` bands per
    lung of the ``lung_field``; 3D: volumes in ``DATA``)."""
    from lunglesion.data.labelled2d import files_by_stem, read_grey_unit
    from lunglesion.io import read_image, read_labelmap
    from lunglesion.weak.regions import volume_regions

    data_dir = Path(data_dir)
    folder = data_dir / "images" if variant == "2d" else data_dir
    if not folder.is_dir():
        raise InputError(f"data folder not found: {folder}")
    files = files_by_stem(folder) if variant == "2d" else volume_files(folder)
    missing = sorted(case_names - set(files))
    if missing:
        raise InputError(f"weak labels name cases without an image in {folder}: {', '.join(missing[:5])}")
    region_files = (files_by_stem if variant == "2d" else volume_files)(Path(regions_dir)) if regions_dir else {}
    cases = []
    for name in sorted(case_names):
        if variant == "2d":
            regions = None
            if name in region_files:
                regions = np.asarray(read_labelmap(region_files[name]).array).squeeze()
            cases.append(case_2d(name, read_grey_unit(files[name]), regions, lung_parts, lung_field))
            continue
        image: Image = read_image(files[name])
        region_image, names = volume_regions(image, region_files.get(name))
        cases.append(case_3d(name, np.asarray(image.array), np.asarray(region_image.array), names,
                             image.spacing[::-1]))
    return cases


def train_from_scores(data_dir: Path | str, weak_labels_csv: Path | str, out_dir: Path | str,
                      regions_dir: Path | str | None = None, variant: str = "2d", resume: bool = True,
                      budget: dict[str, float] | None = None, table: str = "standard",
                      log: Callable[[str], None] = print, device: str = "cpu",
                      unlabeled: dict[str, Path] | None = None) -> dict[str, Path]:
    """``lunglesion train --model dram|dram3d``: the whole chain from a weak-label CSV.

    ``budget`` overrides the stage settings of :data:`DEFAULTS` (e.g. ``epochs_dram``). In 2D the
    region names of the CSV say how many bands per lung it scores (``lung_parts``, recorded in
    the run's ``config.json``); the ``lung_field`` setting of ``budget`` must be the one the CSV
    was derived with (``lunglesion weaklabels --lung-field``). ``unlabeled`` (2D, ``{stem: image
    path}``) adds the self-training stage on those slices and the chain's own.
    """
    if unlabeled and variant != "2d":
        raise InputError("self-training on unlabelled slices is a 2D stage (dram, not dram3d)")
    labels = read_weak_labels(weak_labels_csv, table)
    lung_parts = lung_parts_of({region for _, region in labels}) if variant == "2d" else 1
    lung_field = str((budget or {}).get("lung_field", DEFAULTS["2d"]["lung_field"]))
    cases = load_cases(data_dir, {case for case, _ in labels}, variant, regions_dir, lung_parts, lung_field)
    if variant == "2d":
        budget = {**(budget or {}), "lung_parts": lung_parts}
    paths = run_chain(cases, labels, out_dir, variant, resume, budget, log, device=device)
    if unlabeled:
        from lunglesion.weak.selftrain import chain_images, self_train_run

        own = chain_images(data_dir, labels)
        paths.update(self_train_run(out_dir, own, unlabeled, device, resume, log, labels=labels))
    return paths

