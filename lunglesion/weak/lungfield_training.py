"""Training the lung field of :mod:`lunglesion.weak.lungfield` (SIMULATION-trained).

The network learns the lung field from unlabelled slices whose classical field is trustworthy
(each lung's area at least ``MIN_SOLIDITY`` of its convex hull), into which bright subpleural
patches are painted (:func:`paint_consolidation`) while the target stays the whole lung field.
It never sees a lesion mask. It has to infer the lung's extent from its shape and from the chest
wall around it, which is what a reader does.

``python -m lunglesion.weak.lungfield_training --unlabeled ../shared/data/covid_semiseg/unlabeled
--out runs/lungfield --score ../shared/data/covid_semiseg/train --register`` builds the set, trains,
reports the lesion coverage and ships the model as ``lungfield``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from scipy import ndimage

from lunglesion.data.pseudo_labels import mask_edges
from lunglesion.errors import EmptyInputError
from lunglesion.weak.lungfield import FIELD_MODEL, field_network, predict_field
from lunglesion.weak.regions import lung_regions_2d

MIN_SOLIDITY = 0.85
DESCRIPTION = ("2D lung field that keeps dense consolidation (SIMULATION-trained: consolidation painted into "
               "unlabelled slices); extends the weak-label lung regions, not a lesion model")
UNLABELED_LICENCE = ("covid_semiseg/unlabeled (slices of the 20 COVID-19-CT-Seg volumes, coronacases.org + "
                     "radiopaedia.org): non-commercial use only (COVID-SemiSeg terms); cite Fan et al., Inf-Net, "
                     "IEEE TMI 39(8):2626, 2020")


def _solidity(mask: np.ndarray) -> float:
    from scipy.spatial import ConvexHull, QhullError

    points = np.argwhere(mask)
    try:
        hull_area = ConvexHull(points).volume
    except (QhullError, ValueError):
        return 0.0
    return float(mask.sum() / max(hull_area, 1.0))


def trustworthy(lungs: np.ndarray) -> bool:
    """Whether both lungs of a classical region map look whole (solidity >= MIN_SOLIDITY)."""
    values = [v for v in np.unique(lungs) if v > 0]
    return len(values) >= 2 and all(_solidity(lungs == v) >= MIN_SOLIDITY for v in values)


def _irregular_blob(shape: tuple[int, int], centre: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A disc of ``radius`` around ``centre`` whose edge is perturbed by smoothed noise."""
    yy, xx = np.indices(shape, dtype=np.float32)
    aspect = rng.uniform(0.6, 1.6)
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - centre[0], xx - centre[1]
    u = dy * np.cos(angle) + dx * np.sin(angle)
    v = -dy * np.sin(angle) + dx * np.cos(angle)
    distance = np.sqrt((u / aspect) ** 2 + (v * aspect) ** 2) / radius
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=max(1.0, radius / 4))
    noise /= noise.std() + 1e-6
    return distance + 0.25 * noise < 1.0


def paint_consolidation(image: np.ndarray, lungs: np.ndarray, rng: np.random.Generator,
                        patches: int | None = None) -> np.ndarray:
    """A copy of the [0, 1] ``image`` with 1-3 bright patches against the outer wall of its
    ``lungs`` (values > 0), dense (as bright as the chest wall) or ground-glass (half-way)."""
    field = lungs > 0
    if not field.any():
        raise EmptyInputError("no lung to paint consolidation into")
    out = image.astype(np.float32).copy()
    tissue = float(np.quantile(image[~field & (image > image[field].mean())], 0.5)) if (~field).any() else 1.0
    air = float(image[field].mean())
    edge = mask_edges(field, width=1)
    depth_map = ndimage.distance_transform_edt(field)
    other = {v: ndimage.distance_transform_edt(~((lungs > 0) & (lungs != v))) for v in np.unique(lungs[lungs > 0])}
    for _ in range(patches or int(rng.integers(1, 4))):
        lung = int(rng.choice(list(other)))
        candidates = np.argwhere(edge & (lungs == lung))
        if len(candidates) == 0:
            continue
        far = other[lung][tuple(candidates.T)]
        outer = candidates[far >= np.quantile(far, 0.5)]  # the chest-wall side, away from the other lung
        centre = outer[rng.integers(len(outer))]
        size = np.sqrt((lungs == lung).sum())
        along = _irregular_blob(image.shape, centre, rng.uniform(0.2, 0.7) * size, rng)
        wobble = ndimage.gaussian_filter(rng.standard_normal(image.shape).astype(np.float32), sigma=size / 12)
        wobble *= size / 12 / (wobble.std() + 1e-6)
        blob = along & (lungs == lung) & (depth_map + wobble < rng.uniform(0.08, 0.45) * size)
        dense = rng.random() < 0.65
        level = tissue if dense else air + rng.uniform(0.3, 0.6) * (tissue - air)
        soft = ndimage.gaussian_filter(blob.astype(np.float32), sigma=rng.uniform(0.5, 2.0))
        texture = ndimage.gaussian_filter(rng.standard_normal(image.shape).astype(np.float32), 1.5) * 0.06
        out = np.maximum(out, soft * (level + texture) + (1 - soft) * out)
    return np.clip(out, 0.0, 1.0)


def write_training_set(images: dict[str, Path], out_dir: Path, variants: int = 2, seed: int = 0,
                       size: int = 192) -> int:
    """Write ``images/`` + ``masks/`` (the classical lung field) of the trustworthy slices of
    ``images`` (``{stem: path}``), each as it is and in ``variants`` painted copies; returns the
    number of pairs written."""
    from lunglesion.data.labelled2d import read_grey_unit

    rng = np.random.default_rng(seed)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    written = 0
    for stem, path in sorted(images.items()):
        image = read_grey_unit(path)
        image = np.asarray(PILImage.fromarray((image * 255).astype(np.uint8)).resize((size, size), PILImage.BILINEAR),
                           np.float32) / 255
        try:
            lungs = lung_regions_2d(image)
        except EmptyInputError:
            continue
        if not trustworthy(lungs):
            continue
        mask = PILImage.fromarray(((lungs > 0) * 255).astype(np.uint8))
        for variant in range(variants + 1):
            painted = image if variant == 0 else paint_consolidation(image, lungs, rng)
            name = f"{stem}_v{variant}"
            PILImage.fromarray((painted * 255).round().astype(np.uint8)).save(out_dir / "images" / f"{name}.png")
            mask.save(out_dir / "masks" / f"{name}.png")
            written += 1
    return written


def scan_of(stem: str) -> str:
    """The scan a covid_semiseg/unlabeled slice comes from (its stem without the trailing ``_N``)."""
    return re.sub(r"_\d+$", "", stem)


def coverage_table(labelled: Path, network: torch.nn.Module, size: int, figure: Path | None = None,
                   tiles: int = 8) -> dict[str, float]:
    """On a labelled 2D set: the share of lesion pixels inside the classical lung regions and inside
    those extended by ``network``'s lung field, and how much larger the extended regions are (the
    masks are read only to score). ``figure``: a PNG of the ``tiles`` slices whose lesion the
    classical regions cover least (lesion red, classical regions green, extended ones yellow)."""
    from lunglesion.data.labelled2d import list_pairs, read_grey_unit, read_label_png

    lesion = inside_classical = inside_learned = area_classical = area_learned = 0
    worst: list[tuple[float, np.ndarray]] = []
    for _, image_path, mask_path in list_pairs(labelled):
        image, mask = read_grey_unit(image_path), read_label_png(mask_path) > 0
        classical = lung_regions_2d(image) > 0
        learned = lung_regions_2d(image, field=predict_field(network, image, size)) > 0
        lesion += int(mask.sum())
        inside_classical += int((classical & mask).sum())
        inside_learned += int((learned & mask).sum())
        area_classical += int(classical.sum())
        area_learned += int(learned.sum())
        if figure is not None and mask.any():
            worst.append(((classical & mask).sum() / mask.sum(), _outlined(image, [mask, classical, learned])))
    if figure is not None:
        worst.sort(key=lambda pair: pair[0])
        _save_row([tile for _, tile in worst[:tiles]], figure)
    return {"lesion_in_classical": inside_classical / max(lesion, 1),
            "lesion_in_learned": inside_learned / max(lesion, 1),
            "area_learned_over_classical": area_learned / max(area_classical, 1)}


OUTLINE_COLOURS = ((255, 0, 0), (0, 255, 0), (255, 255, 0))


def _outlined(image: np.ndarray, masks: list[np.ndarray], side: int = 256) -> np.ndarray:
    """An RGB ``side`` x ``side`` tile of ``image`` with the outline of each mask in OUTLINE_COLOURS."""
    rgb = np.repeat((image[..., None] * 255).astype(np.uint8), 3, axis=2)
    for mask, colour in zip(masks, OUTLINE_COLOURS):
        rgb[mask_edges(mask)] = colour
    return np.asarray(PILImage.fromarray(rgb).resize((side, side), PILImage.NEAREST))


def _save_row(tiles: list[np.ndarray], path: Path) -> None:
    """Save ``tiles`` side by side, four to a row."""
    from lunglesion.io.atomic import atomic_output

    side = tiles[0].shape[0]
    rows = -(-len(tiles) // 4)
    canvas = np.zeros((rows * side, 4 * side, 3), np.uint8)
    for i, tile in enumerate(tiles):
        canvas[(i // 4) * side:(i // 4 + 1) * side, (i % 4) * side:(i % 4 + 1) * side] = tile
    with atomic_output(path) as tmp:
        PILImage.fromarray(canvas).save(tmp, format="PNG")


def card_notes(coverage: dict[str, float], scored: Path | None) -> str:
    """The card's notes: what the training data are, and the lesion coverage measured on ``scored``."""
    text = (
        "- SIMULATION-trained. Inputs: slices of `covid_semiseg/unlabeled` whose classical lung field "
        f"(`lung_regions_2d`) looks whole (each lung's area >= {MIN_SOLIDITY} of its convex hull), each as it is "
        "and in painted copies with 1-3 bright subpleural patches (dense: as bright as the chest wall; or "
        "ground-glass: half-way), `paint_consolidation` in `lunglesion.weak.lungfield_training`. Target: the unpainted classical lung field. No lesion "
        "mask (and none of the `pseudo_masks`) is read.\n"
        "- Validation: the same construction on held-out scans (split by scan), so its Dice measures how well "
        "the painted patches are put back into the lung, not accuracy on real consolidation.\n"
        "- Use: `lunglesion weaklabels --lung-field learned` and the dRAM chain setting "
        "`{\"lung_field\": \"learned\"}` (`--lung-field learned` of `lunglesion.weak.experiment`): each classical "
        "lung is grown by the field's pixels that connect to it.\n"
        "- Known limit: where a lung is almost entirely consolidated, the field can follow the organ beside it "
        "(liver, heart), so the regions grow beyond the lung there.")
    if coverage and scored is not None:
        text += (f"\n- On `{scored.as_posix()}` (its masks read only to score): "
                 f"{100 * coverage['lesion_in_classical']:.1f} % of the lesion pixels lie in the classical regions, "
                 f"{100 * coverage['lesion_in_learned']:.1f} % in the extended ones, which are "
                 f"{100 * (coverage['area_learned_over_classical'] - 1):.1f} % larger. Picture: "
                 f"`curves/{FIELD_MODEL}_coverage.png`, the slices whose lesion the classical regions cover least "
                 "(lesion red, classical regions green, extended regions yellow).")
    return text


def main() -> None:
    """Build the simulated training set from unlabelled slices, train the lung field, register it."""
    import argparse
    import json

    from lunglesion.data.splits import split_stems
    from lunglesion.training.supervised import SupervisedTrainer, TrainConfig
    from lunglesion.weak.selftrain import unlabeled_images

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--unlabeled", type=Path, required=True, help="folder with images/ (no masks are read)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--variants", type=int, default=2, help="painted copies of each slice")
    parser.add_argument("--score", type=Path, default=None,
                        help="labelled 2D set whose lesion coverage is reported (masks read only to score)")
    parser.add_argument("--register", action="store_true", help="ship the result as the `lungfield` model")
    args = parser.parse_args()
    images = unlabeled_images(args.unlabeled)
    train_scans, val_scans = split_stems(sorted({scan_of(s) for s in images}), val_fraction=0.1, seed=0)
    for part, scans in (("train", set(train_scans)), ("val", set(val_scans))):
        if not (args.out / part / "done").exists():
            count = write_training_set({s: p for s, p in images.items() if scan_of(s) in scans}, args.out / part,
                                       args.variants, seed=len(part))
            (args.out / part / "done").write_text(f"{count}\n")
    cfg = TrainConfig(model=FIELD_MODEL, data=str(args.out / "train"), val_data=str(args.out / "val"),
                      out_dir=str(args.out / "run"), epochs=args.epochs, batch_size=16, val_every=5)
    trainer = SupervisedTrainer(cfg)
    if (args.out / "run" / "checkpoint.pt").exists():
        trainer.resume()
    trainer.fit()
    network = trainer.network.float().cpu().eval()
    figure = args.out / "coverage.png"
    coverage = coverage_table(args.score, network, trainer.size, figure) if args.score else {}
    (args.out / "coverage.json").write_text(json.dumps(coverage, indent=2))
    print(json.dumps(coverage, indent=2))
    if args.register:
        from lunglesion.registry import models_dir
        from lunglesion.training.export import register_run

        command = ("python -m lunglesion.weak.lungfield_training --unlabeled ../shared/data/covid_semiseg/unlabeled "
                   f"--out {args.out.as_posix()} --epochs {args.epochs} --variants {args.variants}"
                   + (f" --score {args.score.as_posix()}" if args.score else "") + " --register")
        register_run(args.out / "run", FIELD_MODEL, "lung-field-2d", DESCRIPTION, command, outputs=["lung"],
                     data_licence=UNLABELED_LICENCE, notes=card_notes(coverage, args.score))
        if args.score:
            shutil.copy(figure, models_dir() / "curves" / f"{FIELD_MODEL}_coverage.png")
        field_network.cache_clear()


if __name__ == "__main__":
    main()
