"""Turn a finished training run into a registry entry: fp16 weights, model card, metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from lunglesion.networks.catalog import get_architecture
from lunglesion.registry import ModelEntry, export_weights, models_dir, register

COVID_SEMISEG_LICENCE = ("COVID-SemiSeg / MedSeg COVID-19 CT segmentation: non-commercial use only; "
                         "cite Fan et al., Inf-Net, IEEE TMI 39(8):2626, 2020, and MedSeg")


def _card(entry: ModelEntry, run_dir: Path, config: dict, split: dict, command: str, notes: str) -> str:
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in entry.metrics.items() if isinstance(v, float))
    return f"""# Model card: `{entry.name}`

{entry.description}

| | |
|---|---|
| task | {entry.task} |
| network | `{entry.network}` with `{json.dumps(entry.config)}` |
| parameters | {entry.metrics.get('parameters_m', float('nan')):.2f} M |
| weights | `{entry.weights}` (fp16 state dict, sha256 `{entry.sha256[:16]}...`) |
| input | {json.dumps(entry.input)} |
| default | {'yes' if entry.default else 'no'} |

## Data
- Training data: `{config['data']}` ({len(split['train'])} slices for training, {len(split['val'])} held out).
- Licence of the data: {entry.data_licence}
- Trained here from scratch (no ImageNet or other pretrained weights){_initialised(config)}.

## Split
{_split_text(config, split)}
`{', '.join(split['val'])}`

## Training
```
{command}
```
Config: epochs {config['epochs']}, batch {config['batch_size']}, lr {config['lr']}, size {config['size']},
multi-scale {config['multiscale']}, AdamW + cosine schedule, gradient clipping {config['grad_clip']},
augmentation (affine, flip, gamma, contrast, blur, noise). The reported figures are those of the
LAST epoch (no checkpoint selection on the validation split). Curves: `curves/{entry.name}.png`
(log: `curves/{entry.name}_history.csv`).

## Metrics on the validation split (mean over images, threshold 0.5)
| metric | value |
|---|---|
{metrics}
{_tta_section(entry, config, split)}
## Notes
{notes}
"""


def _split_text(config: dict, split: dict) -> str:
    """Where the validation slices came from."""
    if config.get("val_data"):
        return f"Validation slices (the separate folder `{config['val_data']}`):"
    return f"Validation slices (seed {split['seed']}, by image id; COVID-SemiSeg gives no patient ids):"


def _initialised(config: dict) -> str:
    init = config.get("init_from")
    return f"; this run was initialised from `{init}`, trained here as well" if init else "; random initialisation"


def _tta_section(entry: ModelEntry, config: dict, split: dict) -> str:
    if not entry.input.get("flip_tta"):
        return ""
    multiclass = " --multiclass --masks multiclass" if int(entry.input.get("classes", 1)) > 1 else ""
    return f"""
## Test-time augmentation
Registered with `flip_tta`: `segment`, `evaluate` and the Slicer module average the probabilities of each
slice and of its left-right mirror image (twice the network time; `--no-tta` turns it off). On the same
validation slices: Dice {entry.metrics['dice_flip_tta']:.4f}; without it {entry.metrics['dice']:.4f} (the table above).
`lunglesion evaluate --model {entry.name}{multiclass} --data {config['val_data'] or config['data']} --stems {','.join(split['val'])} [--no-tta]`
"""


def register_run(run_dir: Path, name: str, task: str, description: str, command: str, default: bool = False,
                 data_licence: str = COVID_SEMISEG_LICENCE, notes: str = "", flip_tta: bool = False,
                 outputs: list[str] | None = None) -> ModelEntry:
    """Export ``run_dir/checkpoint.pt`` as ``name`` with a card, and add it to ``models.json``.

    With ``flip_tta`` the entry runs with flip test-time augmentation, and its Dice with it on the
    run's validation slices is measured and recorded as ``dice_flip_tta`` (and, for a multi-class
    head, ``dice_class1_flip_tta`` / ``dice_class2_flip_tta``). ``outputs`` names what the output
    channels segment (default: infection, or GGO and consolidation for a three-class head).
    """
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    split = json.loads((run_dir / "split.json").read_text())
    metrics = json.loads((run_dir / "val_metrics.json").read_text())
    arch = get_architecture(config["model"])
    config["lr"], config["size"] = config["lr"] or arch.lr, config["size"] or arch.size
    classes = 3 if config.get("multiclass") else 1
    network = arch.build(classes)
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    network.load_state_dict(state["model"])
    weights = f"{name}.pt"
    sha = export_weights(network, models_dir() / weights)
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["parameters_m"] = sum(p.numel() for p in network.parameters()) / 1e6
    entry = ModelEntry(name=name, task=task, description=description, network=arch.network,
                       config=json.loads(json.dumps(arch.config_for(classes))),
                       input={"size": config["size"], "classes": classes,
                              "domain": "covid_semiseg 8-bit lung window / 255 (HU via COVID_SEMISEG_WINDOW)",
                              **({"flip_tta": True} if flip_tta else {})},
                       weights=weights, sha256=sha, card=f"{name}.md", metrics=metrics,
                       outputs=outputs or (["ground-glass opacity", "consolidation"] if classes > 1 else ["infection"]),
                       data_licence=data_licence, default=default)
    curves = models_dir() / "curves"
    curves.mkdir(exist_ok=True)
    shutil.copy(run_dir / "curves.png", curves / f"{name}.png")
    shutil.copy(run_dir / "history.csv", curves / f"{name}_history.csv")
    register(entry)
    if flip_tta:
        from lunglesion.evaluation import CLASS_NAMES, evaluate_labelled_set

        report = evaluate_labelled_set(name, Path(config["val_data"] or config["data"]), stems=split["val"],
                                       multiclass=classes > 1, mask_folder="multiclass" if classes > 1 else "masks")
        per_class = {f"dice_class{cls}_flip_tta": report.per_class[class_name]["dice"]
                     for cls, class_name in CLASS_NAMES.items() if class_name in report.per_class}
        entry.metrics = {"dice_flip_tta": report.headline_dice, **per_class, **metrics}
        register(entry)
    (models_dir() / entry.card).write_text(_card(entry, run_dir, config, split, command, notes))
    return entry
