"""Register an ensemble of trained 2D models, scored on a validation split, with its model card.

``python -m lunglesion.training.ensemble --name covid-ensemble --members bsnet-light,ncovsegnet-light,unet
--data ../shared/data/covid_semiseg/train --stems 2,3,4,25,27,30,31,33,43,45`` averages the members'
probabilities (with flip test-time augmentation unless ``--no-tta``); no weights are copied.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from lunglesion.errors import InputError
from lunglesion.evaluation import evaluate_labelled_set
from lunglesion.io.atomic import atomic_output
from lunglesion.registry import ModelEntry, get_entry, models_dir, register


def _card(entry: ModelEntry, stems: list[str], data: Path, command: str, single: dict[str, float]) -> str:
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in entry.metrics.items())
    members = "\n".join(f"| `{name}` | {dice:.4f} |" for name, dice in single.items())
    return f"""# Model card: `{entry.name}`

{entry.description}

| | |
|---|---|
| task | {entry.task} |
| members | {', '.join(f'`{m}` ([card]({get_entry(m).card}))' for m in entry.members)} |
| combination | mean of the members' probabilities{', each also on the left-right mirrored slice' if entry.input.get('flip_tta') else ''} |
| member input sizes | {', '.join(f"{m} {get_entry(m).input['size']} px" for m in entry.members)} (each member sees the slice at its own size) |
| input | {json.dumps(entry.input)} |
| weights | none of its own: the members' files, checksums verified at load |

## Data and licence
Every member was trained here from scratch on the same training slices; see their cards.
Licence of the data: {entry.data_licence}

## Validation
The members' common held-out validation slices of `{data}`: `{', '.join(stems)}` (no member saw them).
```
{command}
```
| metric | value |
|---|---|
{rows}

Each member alone on the same slices (same test-time augmentation):

| member | Dice |
|---|---|
{members}

With 10 validation slices, differences of 0.01-0.02 are within noise. Inference costs the sum of
the members' time (see `lunglesion bench --model {entry.name}`).
"""


def _combined_licence(licences: list[str]) -> str:
    """The members' data licences, each once (one that another contains is dropped)."""
    unique = list(dict.fromkeys(licences))
    return " | ".join(x for x in unique if not any(x != y and x in y for y in unique))


def register_ensemble(name: str, members: list[str], data: Path, stems: list[str], tta: bool = True,
                      description: str = "") -> ModelEntry:
    """Score the ensemble (and each member) on ``stems`` of ``data`` and register it with a card."""
    entries = [get_entry(m) for m in members]
    if len(entries) < 2:
        raise InputError("an ensemble needs at least two members")
    first = entries[0]
    entry = ModelEntry(
        name=name, task=first.task, description=description or f"Probability average of {', '.join(members)}.",
        network="lunglesion.networks.averaging:ProbabilityAverage", config={},
        input={"size": max(int(e.input["size"]) for e in entries),
               **{k: first.input[k] for k in ("classes", "domain")}, "flip_tta": tta},
        weights="", sha256="", card=f"{name}.md", outputs=first.outputs,
        data_licence=_combined_licence([e.data_licence for e in entries]), members=members)
    register(entry)  # registered first so that it can be evaluated like any model
    report = evaluate_labelled_set(name, data, stems=stems, device="cpu", tta=tta)
    entry.metrics = {f"val_{k}": round(float(v), 4) for k, v in report.summary.items()}
    single = {m: evaluate_labelled_set(m, data, stems=stems, device="cpu", tta=tta).summary["dice"] for m in members}
    register(entry)
    command = "python -m lunglesion.training.ensemble " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    with atomic_output(models_dir() / entry.card) as tmp:
        tmp.write_text(_card(entry, stems, data, command, single))
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--members", required=True, help="comma-separated registered model names")
    parser.add_argument("--data", type=Path, required=True, help="labelled set (images/ + masks/)")
    parser.add_argument("--stems", required=True, help="the members' validation slices, comma-separated")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--description", default="")
    args = parser.parse_args()
    entry = register_ensemble(args.name, args.members.split(","), args.data, args.stems.split(","), args.tta,
                              args.description)
    print(f"registered {entry.name}: val dice {entry.metrics['val_dice']:.4f}")


if __name__ == "__main__":
    main()
