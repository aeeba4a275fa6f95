"""Supervised training of 2D segmentation networks on a labelled slice set.

One loop serves U-Net, BSNet and nCoVSegNet (binary or multi-class): seeded, resumable
from the checkpoint written every epoch, logged to CSV with a curve PNG, validated on a
held-out split of the training folder with the same metrics ``evaluate`` reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lunglesion import losses
from lunglesion.data.augment import AugmentConfig, augment_batch
from lunglesion.data.labelled2d import Sample2D, list_pairs, load_labelled_set, read_label_png
from lunglesion.data.splits import split_stems
from lunglesion.errors import EmptyInputError
from lunglesion.inference.device import resolve_device
from lunglesion.inference.slices import predict_slices
from lunglesion.networks.catalog import Architecture, get_architecture
from lunglesion.training.checkpoint import load_checkpoint, save_checkpoint, seed_everything
from lunglesion.training.history import CsvHistory

MIN_TRAIN_SLICES = 2  # a training batch needs two slices (BatchNorm)

SEG_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "structure": losses.structure_loss,
    "bce_dice": losses.bce_dice_loss,
    "wbce_dice": losses.weighted_bce_dice_loss,
}


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json`` beside the checkpoints)."""

    model: str
    data: str
    out_dir: str
    epochs: int = 60
    batch_size: int = 8
    lr: float | None = None
    size: int | None = None
    multiscale: tuple[float, ...] = (0.75, 1.0, 1.25)
    val_fraction: float = 0.2
    val_data: str | None = None
    seed: int = 0
    multiclass: bool = False
    init_from: str | None = None
    val_every: int = 5
    grad_clip: float = 0.5
    threads: int | None = None
    device: str = "auto"
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def _resize_stack(arrays: list[np.ndarray], size: int, mode: str) -> torch.Tensor:
    """Stack of (C,H,W) or (H,W) arrays resized to ``size`` -> (N,C,size,size)."""
    out = []
    for a in arrays:
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        t = t[None] if t.ndim == 2 else t
        out.append(F.interpolate(t[None], size=(size, size), mode=mode,
                                 **({"align_corners": False} if mode == "bilinear" else {}))[0])
    return torch.stack(out)


def _label_channels(sample: Sample2D, edge: np.ndarray | None, n_classes: int) -> np.ndarray:
    if n_classes > 1:
        return np.eye(n_classes, dtype=np.float32)[sample.mask].transpose(2, 0, 1)
    channels = [sample.mask.astype(np.float32)] + ([edge.astype(np.float32)] if edge is not None else [])
    return np.stack(channels)


class SupervisedTrainer:
    """Builds data, network and optimiser from a :class:`TrainConfig` and runs epochs."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print) -> None:
        self.cfg, self.log = cfg, log
        self.arch: Architecture = get_architecture(cfg.model)
        self.size = cfg.size or self.arch.size
        self.out_dir = Path(cfg.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.n_classes = 3 if cfg.multiclass else 1
        mask_folder = "multiclass" if cfg.multiclass else "masks"
        stems = [s for s, _, _ in list_pairs(Path(cfg.data), mask_folder)]
        if cfg.val_data:  # an explicit validation folder, e.g. split by patient
            self.train_stems = stems
            self.val_stems = [s for s, _, _ in list_pairs(Path(cfg.val_data), mask_folder)]
        else:
            self.train_stems, self.val_stems = split_stems(stems, cfg.val_fraction, cfg.seed)
        if len(self.train_stems) < MIN_TRAIN_SLICES:
            raise EmptyInputError(f"{cfg.data}: {len(self.train_stems)} training slice(s) after the validation split; "
                                  f"training needs at least {MIN_TRAIN_SLICES} (batches of two or more)")
        (self.out_dir / "split.json").write_text(json.dumps(
            {"data": cfg.data, "val_data": cfg.val_data or cfg.data, "seed": cfg.seed,
             "train": self.train_stems, "val": self.val_stems}, indent=1))
        train = load_labelled_set(Path(cfg.data), mask_folder, cfg.multiclass, self.train_stems)
        self.val = load_labelled_set(Path(cfg.val_data or cfg.data), mask_folder, cfg.multiclass, self.val_stems)
        edges_dir = Path(cfg.data) / "edges"
        use_edges = self.arch.edge_output and not cfg.multiclass
        if use_edges and not edges_dir.is_dir():
            raise FileNotFoundError(f"{cfg.model} trains its edge branch from {edges_dir}, which is missing")
        labels = [_label_channels(s, read_label_png(next(edges_dir.glob(s.stem + ".*"))) if use_edges else None,
                                  self.n_classes) for s in train]
        self.train_images = _resize_stack([s.image for s in train], self.size, "bilinear")
        self.train_labels = _resize_stack(labels, self.size, "bilinear")
        self.device = resolve_device(cfg.device)
        self.network = self.arch.build(self.n_classes)
        self.network = self.network.to(self.device, memory_format=torch.channels_last)
        self.lr = cfg.lr or self.arch.lr
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.lr, weight_decay=1e-4)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs,
                                                                    eta_min=self.lr * 0.01)
        self.start_epoch = 1
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def init_from(self, path: Path) -> int:
        """Copy every weight whose name and shape match from a checkpoint or weight file."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        state = state.get("model", state)
        own = self.network.state_dict()
        matched = {k: v.float() if v.is_floating_point() else v for k, v in state.items()
                   if k in own and own[k].shape == v.shape}
        self.network.load_state_dict(matched, strict=False)
        self.log(f"initialised {len(matched)}/{len(own)} tensors from {path}")
        return len(matched)

    def resume(self) -> None:
        """Continue from ``checkpoint.pt`` in the output folder."""
        state = load_checkpoint(self.out_dir / "checkpoint.pt", model=self.network,
                                optimizers={"main": self.optimizer}, schedulers={"main": self.scheduler})
        self.generator.set_state(state["extra"]["generator"])
        self.start_epoch = state["epoch"] + 1
        self.log(f"resumed after epoch {state['epoch']}")

    def _loss(self, outputs: torch.Tensor | list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        outputs = outputs if isinstance(outputs, list) else [outputs]
        if self.n_classes > 1:
            target = labels.argmax(dim=1)
            return sum(losses.multiclass_dice_ce_loss(o, target) for o in outputs)
        target = (labels[:, :1] > 0.5).float()
        seg_loss = SEG_LOSSES[self.arch.loss]
        if self.arch.edge_output:
            *maps, edge = outputs
            return sum(seg_loss(o, target) for o in maps) + losses.edge_loss(edge, (labels[:, 1:2] > 0.5).float())
        return sum(seg_loss(o, target) for o in outputs)

    def train_epoch(self) -> float:
        """One pass over the training slices with random scale and augmentation; mean loss."""
        self.network.train()
        order = torch.randperm(len(self.train_images), generator=self.generator)
        total, batches = 0.0, 0
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start:start + self.cfg.batch_size]
            if len(idx) < MIN_TRAIN_SLICES:  # BatchNorm on pooled attention features needs two samples
                continue
            scale = self.cfg.multiscale[int(torch.randint(len(self.cfg.multiscale), (1,), generator=self.generator))]
            side = max(32, int(round(self.size * scale / 32)) * 32)
            images, labels = self.train_images[idx], self.train_labels[idx]
            if side != self.size:
                images = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)
                labels = F.interpolate(labels, size=(side, side), mode="bilinear", align_corners=False)
            images, labels = augment_batch(images, labels, self.cfg.augment, self.generator)
            images = images.to(self.device, memory_format=torch.channels_last)
            loss = self._loss(self.network(images), labels.to(self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            total += loss.item()
            batches += 1
        self.scheduler.step()
        return total / max(batches, 1)

    def validate(self) -> dict[str, float]:
        """Metrics of ``evaluate`` on the held-out slices (mean over images)."""
        from lunglesion.metrics import evaluate_pair, summarise

        probs = predict_slices(self.network, [s.image for s in self.val], self.size, device=self.device,
                               multiclass=self.n_classes > 1)
        if self.n_classes > 1:
            per_class = []
            for cls in range(1, self.n_classes):
                per_class.append(summarise([evaluate_pair(p[cls], (s.mask == cls).astype(np.uint8))
                                            for p, s in zip(probs, self.val)])["dice"])
            return {"dice": float(np.mean(per_class)), **{f"dice_class{c + 1}": d for c, d in enumerate(per_class)}}
        return summarise([evaluate_pair(p, s.mask) for p, s in zip(probs, self.val)])

    def fit(self) -> dict[str, float]:
        """Train to ``cfg.epochs``; returns the final validation metrics (those recorded, when a
        resumed run has no epoch left)."""
        finished = self.out_dir / "val_metrics.json"
        if self.start_epoch > self.cfg.epochs and finished.exists():
            return json.loads(finished.read_text())
        (self.out_dir / "config.json").write_text(json.dumps(asdict(self.cfg), indent=1, default=str))
        history = CsvHistory(self.out_dir / "history.csv",
                             resume_epoch=self.start_epoch - 1 if self.start_epoch > 1 else None)
        metrics: dict[str, float] = {}
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            tic = time.time()
            loss = self.train_epoch()
            row = {"epoch": epoch, "train_loss": loss, "lr": self.optimizer.param_groups[0]["lr"]}
            if epoch % self.cfg.val_every == 0 or epoch == self.cfg.epochs:
                metrics = self.validate()
                row.update({f"val_{k}": v for k, v in metrics.items() if k in ("dice", "iou", "mae")})
            history.append(row)
            save_checkpoint(self.out_dir / "checkpoint.pt", epoch=epoch, model=self.network,
                            optimizers={"main": self.optimizer}, schedulers={"main": self.scheduler},
                            extra={"generator": self.generator.get_state(), "metrics": metrics})
            history.plot(self.out_dir / "curves.png", title=f"{self.cfg.model} on {Path(self.cfg.data).name}")
            shown = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch")
            self.log(f"epoch {epoch}/{self.cfg.epochs} {shown} ({time.time() - tic:.0f} s)")
        (self.out_dir / "val_metrics.json").write_text(json.dumps(metrics, indent=1))
        return metrics
