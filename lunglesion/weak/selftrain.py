"""Optional last stage of the 2D dRAM chain: rounds of self-training on unlabelled slices.

In each round a teacher (first the chain's final network, then the previous round's
student) labels the chain's own training slices and the slices of an unlabelled folder (at
most ``per_scan`` per scan, only those where it marks at least 1 % of the slice). On the
chain's own slices the teacher's mask of each scored lung region is fitted into the region's
weak-label interval (``self_fit``, :func:`fitted_mask`): the weak labels that trained the chain
keep correcting its students. A U-Net
that starts from the teacher's weights then learns those pseudo masks with the supervised
recipe of ``lunglesion train`` (multi-scale, augmentation, cosine schedule), monitored on a
tenth of them. No mask is read anywhere in this stage.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lunglesion.data.labelled2d import files_by_stem, read_grey_unit
from lunglesion.data.pseudo_labels import MaskSource, add_pseudo_labelled
from lunglesion.errors import EmptyInputError
from lunglesion.inference.device import resolve_device
from lunglesion.inference.slices import predict_slices
from lunglesion.io.atomic import atomic_output
from lunglesion.weak.ctss import TABLES
from lunglesion.weak.losses import interval_threshold
from lunglesion.weak.pipeline import DEFAULTS, final_network_2d, network_size
from lunglesion.weak.lungfield import slice_regions
from lunglesion.weak.regions import lung2d_names
from lunglesion.weak.weaklabels import WeakLabel, read_weak_labels

WeakLabels = dict[tuple[str, str], WeakLabel]

STUDENT_ARCHITECTURE = "unet"
STAGES = (("final_dram", "self_dram"), ("final_cam", "self_cam"))
STUDENT_STAGES = tuple(stage for _, stage in STAGES)


def fitted_mask(probability: np.ndarray, image: np.ndarray, labels: dict[str, WeakLabel], lung_parts: int,
                threshold: float = 0.5, lung_field: str = "classical") -> np.ndarray:
    """``probability >= threshold``, except in each lung region of ``image`` (:func:`slice_regions`)
    that ``labels`` (``{region name: weak label}``) scores: there the threshold that puts the
    region's marked share into the label's interval (:func:`interval_threshold`)."""
    mask = probability >= threshold
    regions = slice_regions(image, lung_parts, lung_field)
    for value, name in lung2d_names(lung_parts).items():
        inside = regions == value
        if name in labels and inside.any():
            values = probability[inside]
            cut = interval_threshold(torch.from_numpy(values), labels[name].low, labels[name].high, threshold)
            mask[inside] = values >= float(cut)
    return mask


def network_masks(network: torch.nn.Module, size: int, device: str = "cpu", threshold: float = 0.5,
                  labels: WeakLabels | None = None, lung_parts: int = 1, lung_field: str = "classical") -> MaskSource:
    """Pseudo masks of a binary 2D network run at ``size`` px (no test-time augmentation); on the
    slices that the weak ``labels`` score, fitted to them (:func:`fitted_mask`)."""
    dev = resolve_device(device)
    network = network.to(dev).eval()
    by_case: dict[str, dict[str, WeakLabel]] = {}
    for (case, region), label in (labels or {}).items():
        by_case.setdefault(case, {})[region] = label

    def source(stem: str, image_path: Path) -> np.ndarray:
        image = read_grey_unit(image_path)
        probability = predict_slices(network, [image], size, device=dev)[0]
        if stem in by_case:
            return fitted_mask(probability, image, by_case[stem], lung_parts, threshold, lung_field)
        return probability >= threshold

    return source


def self_train(teacher: torch.nn.Module, teacher_weights: Path, images: dict[str, Path], out_dir: Path,
               size: int, epochs: int, lr: float = 3e-4, per_scan: int = 20, device: str = "cpu",
               resume: bool = True, log: Callable[[str], None] = print, seed: int = 0,
               teacher_size: int | None = None, labels: WeakLabels | None = None, lung_parts: int = 1,
               lung_field: str = "classical") -> Path:
    """Train a student on ``teacher``'s masks of ``images`` (``{stem: path}``); returns its checkpoint.

    The student trains at ``size`` px; the teacher runs at ``teacher_size`` (default: the same).
    Masks of slices that the weak ``labels`` score (regions: ``lung_parts`` bands per lung of the
    ``lung_field``) are fitted to them (:func:`fitted_mask`).

    Skipped when ``out_dir`` holds a finished run (``val_metrics.json``) and ``resume`` is set;
    an unfinished one continues from its checkpoint.
    """
    from lunglesion.training.supervised import MIN_TRAIN_SLICES, SupervisedTrainer, TrainConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / "checkpoint.pt"
    if resume and (out_dir / "val_metrics.json").exists():
        log(f"{out_dir.name}: finished earlier")
        return checkpoint
    data = out_dir / "data"
    if not (resume and (data / "done").exists()):
        masks = network_masks(teacher, teacher_size or size, device, labels=labels, lung_parts=lung_parts,
                              lung_field=lung_field)
        count = add_pseudo_labelled(images, data, masks, per_scan, seed=seed)
        if count < MIN_TRAIN_SLICES + 1:  # and one to monitor
            raise EmptyInputError(f"{out_dir.name}: the teacher marks lesion (>= 1 %) on {count} of {len(images)} "
                                  "slices: too few to self-train on")
        (data / "done").write_text(f"{count}\n")
        log(f"{out_dir.name}: teacher labelled {count} of {len(images)} slices")
    cfg = TrainConfig(model=STUDENT_ARCHITECTURE, data=str(data), out_dir=str(out_dir), epochs=epochs, lr=lr,
                      size=size, val_fraction=0.1, seed=seed, val_every=max(1, epochs // 3), device=device)
    trainer = SupervisedTrainer(cfg, log=lambda m: log(f"{out_dir.name}: {m}"))
    if resume and checkpoint.exists():
        trainer.resume()
    else:
        trainer.init_from(teacher_weights)
    trainer.fit()
    return checkpoint


def student_weights(run_dir: Path | str, stage: str, rounds: int) -> Path:
    """Checkpoint of the last round's student of ``stage`` (``self_dram`` / ``self_cam``)."""
    return Path(run_dir) / stage / f"round{rounds}" / "checkpoint.pt"


def self_train_run(run_dir: Path | str, own: dict[str, Path], unlabeled: dict[str, Path], device: str = "cpu",
                   resume: bool = True, log: Callable[[str], None] = print, labels: WeakLabels | None = None,
                   stages: tuple[str, ...] = STUDENT_STAGES, seed: int = 0) -> dict[str, Path]:
    """Add the self-training stage to a finished 2D chain run: each final network of ``run_dir``
    teaches ``self_rounds`` generations of students on the chain's own training slices ``own`` plus
    ``unlabeled`` (both ``{stem: image path}``); returns the last students' checkpoints by stage.
    With the chain's weak ``labels`` and ``self_fit`` set, masks of its own slices are fitted to
    them. The settings used are recorded in the run's ``config.json``."""
    run = Path(run_dir)
    recorded = json.loads((run / "config.json").read_text())
    cfg = {**DEFAULTS["2d"], **recorded}
    with atomic_output(run / "config.json") as tmp:
        tmp.write_text(json.dumps({**recorded, **{k: cfg[k] for k in ("epochs_self", "self_per_scan", "self_rounds",
                                                                       "self_size", "self_fit", "lung_field")}},
                              indent=2))
    fit = labels if cfg["self_fit"] else None
    students = {}
    for final, stage in (pair for pair in STAGES if pair[1] in stages):
        weights = run / final / "model.pt"
        for round_ in range(1, int(cfg["self_rounds"]) + 1):
            weights = self_train(final_network_2d(weights), weights, {**own, **unlabeled}, run / stage / f"round{round_}",
                                 network_size(cfg, stage), int(cfg["epochs_self"]), per_scan=int(cfg["self_per_scan"]),
                                 device=device, resume=resume, log=lambda m, s=stage: log(f"{s}: {m}"), seed=seed,
                                 teacher_size=network_size(cfg, final if round_ == 1 else stage),
                                 labels=fit, lung_parts=int(cfg["lung_parts"]), lung_field=cfg["lung_field"])
        students[stage] = weights
    return students


def chain_images(data_dir: Path | str, labels: WeakLabels) -> dict[str, Path]:
    """``{stem: path}`` of the slices of ``data_dir/images`` that the weak ``labels`` score."""
    cases = {case for case, _ in labels}
    return {stem: path for stem, path in files_by_stem(Path(data_dir) / "images").items() if stem in cases}


def unlabeled_images(folder: Path | str, match: str = "") -> dict[str, Path]:
    """``{stem: path}`` of the slices in ``folder/images`` whose name contains ``match``."""
    return {stem: path for stem, path in files_by_stem(Path(folder) / "images").items() if match in path.name}


def main() -> None:
    parser = argparse.ArgumentParser(description="Self-train the final networks of a finished 2D dRAM chain run.")
    parser.add_argument("run", type=Path, help="chain run folder (config.json, scores.csv, final_*/model.pt)")
    parser.add_argument("--data", type=Path, required=True, help="the chain's data folder (images/)")
    parser.add_argument("--weak-labels", type=Path, default=None, help="the chain's CSV (default: RUN/scores.csv)")
    parser.add_argument("--unlabeled", type=Path, required=True, help="folder with images/ of unlabelled slices")
    parser.add_argument("--match", default="", help="only unlabelled slices whose file name contains this")
    parser.add_argument("--table", choices=sorted(TABLES), default="standard", help="CTSS table of a score CSV")
    parser.add_argument("--stage", choices=STUDENT_STAGES, action="append",
                        help="only this lineage (repeatable; default: both)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="slice choice, validation tenth and training order")
    args = parser.parse_args()
    torch.set_num_threads(1)
    labels = read_weak_labels(args.weak_labels or args.run / "scores.csv", args.table)
    self_train_run(args.run, chain_images(args.data, labels), unlabeled_images(args.unlabeled, args.match),
                   args.device, labels=labels, stages=tuple(args.stage or STUDENT_STAGES), seed=args.seed)


if __name__ == "__main__":
    main()
