"""Training of DSNet (adversarial, soft-mask supervised) and its plain U-Net baseline on LIDC ROIs.

Resumable: ``OUT/checkpoint.pt`` holds model, discriminator, optimisers, RNG states, the
elapsed wall time and the best validation Dice; ``OUT/best.pt`` the best model weights;
``OUT/history.csv`` / ``curves.png`` the per-epoch log. Training stops at ``time_budget_s``
of accumulated process CPU time, so DSNet and the U-Net get the same compute budget even
on a shared machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lunglesion.data.augment import AugmentConfig, augment_batch
from lunglesion.data.lidc import (NoduleSlice, crop_square, load_lidc_slices, normalize_patch,
                                  split_by_patient, validation_patch_size)
from lunglesion.inference.nodule import predict_patch
from lunglesion.io.atomic import atomic_output
from lunglesion.losses import bce_dice_loss, soft_dice_loss
from lunglesion.metrics import dice
from lunglesion.networks.dsnet import LIGHT_CONFIG, DSNet, PatchDiscriminator
from lunglesion.networks.unet import UNet
from lunglesion.training.checkpoint import load_checkpoint, save_checkpoint, seed_everything
from lunglesion.training.history import CsvHistory


@dataclass
class DSNetTrainConfig:
    """Everything a run needs; ``arch`` is ``"dsnet"`` or ``"unet"`` (the baseline)."""

    arch: str = "dsnet"
    network: dict = field(default_factory=lambda: dict(LIGHT_CONFIG))
    input_size: int = 48
    batch_size: int = 16
    iterations_per_epoch: int = 40
    max_epochs: int = 200
    time_budget_s: float = 1200.0
    lr: float = 2e-4
    decay_from_epoch: int | None = None  # cosine decay of lr from this epoch to 0 at max_epochs
    lambda_sr: float = 1.0
    lambda_adv: float = 0.01
    discriminator_base: int = 16
    val_patients: tuple[str, ...] = ("0005", "0006")
    chest_wall_probability: float = 0.6
    seed: int = 0


def _sample_batch(records: list[NoduleSlice], cfg: DSNetTrainConfig, out_size: int,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ROIs (scale, shift, simulated chest wall), resized to ``out_size``: image, soft, hard."""
    images, softs, hards = [], [], []
    for index in rng.integers(len(records), size=cfg.batch_size):
        r = records[index]
        size = int(np.clip(validation_patch_size(r.extent) * rng.uniform(0.7, 1.5), 32, 128))
        centre = (r.centre[0] + rng.uniform(-0.2, 0.2) * size, r.centre[1] + rng.uniform(-0.2, 0.2) * size)
        image = crop_square(r.image, centre, size)
        if rng.random() < cfg.chest_wall_probability:  # outside-lung voxels were zeroed: put tissue back
            tissue = float(np.percentile(r.image[r.mask], 80)) * rng.uniform(0.8, 1.3)
            outside = image == 0
            image[outside] = tissue + rng.normal(0, 0.05 * abs(tissue) + 1e-3, outside.sum())
        images.append(_resize(normalize_patch(image), out_size))
        softs.append(_resize(crop_square(r.soft, centre, size), out_size))
        hards.append(_resize(crop_square(r.mask.astype(np.float32), centre, size), out_size))
    return torch.cat(images), torch.cat(softs), torch.cat(hards)


def learning_rate(cfg: DSNetTrainConfig, epoch: int) -> float:
    """Constant ``cfg.lr``, then (from ``decay_from_epoch``) cosine decay to 0 at ``max_epochs``."""
    start = cfg.decay_from_epoch
    if start is None or epoch < start:
        return cfg.lr
    progress = (epoch - start) / max(cfg.max_epochs - start, 1)
    return cfg.lr * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))


def _resize(patch: np.ndarray, size: int) -> torch.Tensor:
    """``(1, 1, size, size)`` antialiased bilinear resize (the same resize as inference)."""
    return F.interpolate(torch.from_numpy(patch)[None, None], size=(size, size), mode="bilinear",
                         antialias=True, align_corners=False)


def _augment(image: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shared affine + intensity augmentation, then a random rot90 and 8-bit quantisation."""
    image, labels = augment_batch(image, labels, AugmentConfig(scale=(0.85, 1.2), rotation_deg=15))
    k = int(rng.integers(4))
    image, labels = torch.rot90(image, k, (2, 3)), torch.rot90(labels, k, (2, 3))
    if rng.random() < 0.5:
        image = torch.round(image * 255) / 255
    return image, labels


def validation_dice(model: torch.nn.Module, records: list[NoduleSlice], input_size: int) -> float:
    """Mean Dice (probability >= 0.5) over fixed nodule-centred ROIs, at the ROI's native size."""
    scores = []
    for r in records:
        size = validation_patch_size(r.extent)
        prob = predict_patch(model, crop_square(r.image, r.centre, size), input_size=input_size)
        hard = crop_square(r.mask.astype(np.float32), r.centre, size) > 0.5
        scores.append(dice(prob >= 0.5, hard))  # every ROI holds a nodule, so never both empty
    return float(np.mean(scores))


def build_model(cfg: DSNetTrainConfig) -> torch.nn.Module:
    """The network being trained."""
    return DSNet(**cfg.network) if cfg.arch == "dsnet" else UNet(**cfg.network)


def train(cfg: DSNetTrainConfig, data_dir: Path, out_dir: Path, resume: bool = True) -> dict:
    """Train (or resume) until the time budget or ``max_epochs``; returns the best figures."""
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    train_set, val_set = split_by_patient(load_lidc_slices(data_dir), cfg.val_patients)
    model = build_model(cfg)
    opt_g = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    disc = PatchDiscriminator(cfg.discriminator_base) if cfg.arch == "dsnet" else None
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) if disc else None
    optimizers = {"g": opt_g} | ({"d": opt_d} if opt_d else {})
    ckpt = out_dir / "checkpoint.pt"
    epoch, elapsed, best = 0, 0.0, -1.0
    if resume and ckpt.exists():
        state = load_checkpoint(ckpt, model=model, optimizers=optimizers)
        epoch, elapsed, best = state["epoch"], state["extra"]["elapsed"], state["extra"]["best"]
        if disc is not None:
            disc.load_state_dict(state["extra"]["discriminator"])
    history = CsvHistory(out_dir / "history.csv", resume_epoch=epoch)
    rng = np.random.default_rng(cfg.seed + epoch)
    scale = cfg.network.get("scale", 1) if cfg.arch == "dsnet" else 1
    while epoch < cfg.max_epochs and elapsed < cfg.time_budget_s:
        start = time.process_time()
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, epoch)
        model.train()
        sums: dict[str, float] = {}
        for _ in range(cfg.iterations_per_epoch):
            hr_size = cfg.input_size * scale
            image, soft, hard = _sample_batch(train_set, cfg, hr_size, rng)
            image, labels = _augment(image, torch.cat([soft, hard], 1), rng)
            soft, hard = labels[:, :1], (labels[:, 1:] > 0.5).float()
            if cfg.arch == "unet":
                loss = bce_dice_loss(model(image), hard)
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
                sums["loss"] = sums.get("loss", 0.0) + loss.item()
                continue
            lr_image = F.interpolate(image, size=(cfg.input_size,) * 2, mode="bilinear", antialias=True,
                                     align_corners=False)
            logits, sr = model(lr_image)
            prob = torch.sigmoid(logits)
            seg = F.l1_loss(prob, soft) + soft_dice_loss(prob, soft)
            rec = F.l1_loss(sr, image)
            adv = ((disc(image, prob) - 1) ** 2).mean()
            loss = seg + cfg.lambda_sr * rec + cfg.lambda_adv * adv
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            d_loss = 0.5 * (((disc(image, soft) - 1) ** 2).mean() + (disc(image, prob.detach()) ** 2).mean())
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            for key, value in (("loss", loss), ("seg", seg), ("sr", rec), ("adv", adv), ("d", d_loss)):
                sums[key] = sums.get(key, 0.0) + value.item()
        model.eval()
        dice = validation_dice(model, val_set, cfg.input_size)
        epoch += 1
        elapsed += time.process_time() - start
        if dice > best:
            best = dice
            with atomic_output(out_dir / "best.pt") as tmp:
                torch.save(model.state_dict(), tmp)
        history.append({"epoch": epoch, **{k: v / cfg.iterations_per_epoch for k, v in sums.items()},
                        "val_dice": dice, "cpu_s": elapsed})
        history.plot(out_dir / "curves.png", title=f"{cfg.arch} on LIDC nodule ROIs")
        save_checkpoint(ckpt, epoch=epoch, model=model, optimizers=optimizers,
                        extra={"elapsed": elapsed, "best": best,
                               "discriminator": disc.state_dict() if disc else None})
        print(f"epoch {epoch} val_dice {dice:.4f} best {best:.4f} cpu {elapsed:.0f}s", flush=True)
    return {"epochs": epoch, "best_val_dice": best, "cpu_s": elapsed,
            "train_slices": len(train_set), "val_slices": len(val_set)}


def register_trained(cfg: DSNetTrainConfig, run_dir: Path, name: str, weights_file: str, card: str,
                     description: str, metrics: dict, default: bool = False, epoch: str = "last") -> str:
    """Export the run's ``"last"`` epoch (``checkpoint.pt``) or its ``"best"`` validation epoch
    (``best.pt``) as fp16 ``Resources/Models/<weights_file>`` and register it."""
    from lunglesion.registry import ModelEntry, export_weights, models_dir, register

    if epoch not in ("last", "best"):
        raise ValueError(f"epoch must be 'last' or 'best', got '{epoch}'")
    model = build_model(cfg)
    path = Path(run_dir) / ("checkpoint.pt" if epoch == "last" else "best.pt")
    if epoch == "last":
        load_checkpoint(path, model=model, restore_rng=False)
    else:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    sha = export_weights(model, models_dir() / weights_file, half=True)
    network = "lunglesion.networks.dsnet:DSNet" if cfg.arch == "dsnet" else "lunglesion.networks.unet:UNet"
    register(ModelEntry(
        name=name, task="lung-nodule-roi-2d", description=description, network=network,
        config=dict(cfg.network),
        input={"size": cfg.input_size, "channels": 1, "roi": "square nodule ROI, any size (50-100 px typical)",
               "intensity": "any (8-bit lung window, HU clipped to the lung window [-1350, 150], z-scored); "
                            "robust min-max per ROI (percentiles 1 / 99.5 -> 0 / 1)",
               "output": "sigmoid of the first output = soft mask; threshold 0.5",
               "predictor": "lunglesion.inference.nodule:predict_patch"},
        weights=weights_file, sha256=sha, card=card, outputs=["nodule"], metrics=metrics,
        data_licence="LIDC-IDRI (TCIA), CC BY 3.0; cite Armato et al., Med Phys 38(2):915, 2011",
        default=default))
    return sha
