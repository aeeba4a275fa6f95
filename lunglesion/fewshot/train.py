"""Episodic training of RP-Net or the prototype baseline (resumable, CSV log, registry export).

``python -m lunglesion.fewshot.train --model rpnet-light --minutes 28`` trains in
``runs/rpnet/<model>/``; run it again to resume. An "epoch" is ``--episodes`` batches;
each epoch ends with a checkpoint, a CSV row (loss, held-out Dice on fixed episodes)
and, at the end, the weights are exported and registered in Resources/Models.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lunglesion.fewshot.episodes import EpisodeSampler, load_class_volumes, split_classes
from lunglesion.fewshot.losses import fewshot_loss
from lunglesion.registry import ModelEntry, export_weights, models_dir, register
from lunglesion.networks.rpnet import LIGHT_WIDTHS, PAPER_WIDTHS, PrototypeNet, RPNet
from lunglesion.training.checkpoint import load_checkpoint, save_checkpoint, seed_everything
from lunglesion.training.history import CsvHistory

CONFIGS = {
    "rpnet-light": ("lunglesion.networks.rpnet:RPNet", {"widths": list(LIGHT_WIDTHS), "cre_channels": 32, "relation_channels": 32}),
    "rpnet": ("lunglesion.networks.rpnet:RPNet", {"widths": list(PAPER_WIDTHS), "cre_channels": 64}),
    "protonet-light": ("lunglesion.networks.rpnet:PrototypeNet", {"widths": list(LIGHT_WIDTHS)}),
    "protonet": ("lunglesion.networks.rpnet:PrototypeNet", {"widths": list(PAPER_WIDTHS)}),
}
INPUT_SIZE = {"rpnet-light": 128, "protonet-light": 128, "rpnet": 256, "protonet": 256}


def build(name: str) -> torch.nn.Module:
    """The untrained network of a named configuration."""
    network, config = CONFIGS[name]
    cls = RPNet if network.endswith(":RPNet") else PrototypeNet
    return cls(**config)


def dice_of(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Mean Dice of the argmax prediction over a batch (empty vs empty counts as 1)."""
    pred = logits.argmax(1).float()
    inter = (pred * target).sum((1, 2))
    total = pred.sum((1, 2)) + target.sum((1, 2))
    return float(torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total)).mean())


def export(model: str, name: str, runs: Path, metrics: dict | None = None, note: str = "") -> ModelEntry:
    """Export ``runs/<model>/last.pt`` as registry model ``name`` with a model card."""
    network = build(model)
    state = load_checkpoint(runs / model / "last.pt", model=network, restore_rng=False)
    weights = f"{name}.pt"
    sha = export_weights(network, models_dir() / weights)
    rows = CsvHistory(runs / model / "history.csv", resume_epoch=state["epoch"]).rows
    card = models_dir() / f"{name}.md"
    card.write_text(
        f"# {name}\n\n{'RP-Net (Tang et al., ICCV 2021), light configuration' if 'rpnet' in model else 'PANet-style prototype baseline (same encoder as RP-Net, no CRE, no recurrence)'}"
        f" `{model}`: {CONFIGS[model][1]}, input {INPUT_SIZE[model]} px square slices in [-1, 1].\n\n"
        f"Trained here on CPU, episodic 1-way 1-shot, {state['epoch']} epochs x {len(rows) and 25} batches of 4 episodes "
        f"(about {sum(r['cpu_minutes'] for r in rows[-1:]):.0f} CPU min in the last session, Adam lr 1e-3), on every label map of the shared data folder except the held-out "
        "classes liver, spleen, kidney_left, kidney_right and the chest_ct volume.\n\n"
        f"Held-out metrics (Dice, lunglesion.fewshot.evaluate): {json.dumps(metrics or {})}\n\n"
        f"{note}\n\n"
        "Training data licences: TotalSegmentator (Apache-2.0, model-predicted labels), LIDC-IDRI (CC BY 3.0), "
        "COVID-SemiSeg (non-commercial use only), pyradiomics MR (BSD-3-Clause). Because of COVID-SemiSeg these "
        "weights are for non-commercial use.\n")
    network_path, config = CONFIGS[model]
    entry = ModelEntry(name=name, task="fewshot", description=card.read_text().splitlines()[2][:200],
                       network=network_path, config=config, input={"size": INPUT_SIZE[model], "intensity": "[-1, 1]"},
                       weights=weights, sha256=sha, card=card.name, outputs=["structure"], metrics=metrics or {},
                       data_licence="non-commercial (COVID-SemiSeg); others permissive", default=name == "rpnet")
    register(entry)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="rpnet-light", choices=sorted(CONFIGS))
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("runs/rpnet"))
    parser.add_argument("--minutes", type=float, default=28.0, help="stop (checkpointed) after this much CPU time")
    parser.add_argument("--wall-minutes", type=float, default=60.0, help="and after this much wall-clock time")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=50, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export", metavar="NAME", help="only export last.pt as registry model NAME")
    parser.add_argument("--metrics", type=Path, help="JSON file of held-out metrics for the card (with --export)")
    parser.add_argument("--note", default="", help="status line for the card (with --export)")
    args = parser.parse_args(argv)
    if args.export:
        metrics = json.loads(args.metrics.read_text()) if args.metrics else None
        print(export(args.model, args.export, args.out, metrics, args.note))
        return
    torch.set_num_threads(args.threads)
    start, cpu_start = time.time(), time.process_time()
    out = args.out / args.model
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed)
    train_classes, held_out = split_classes(load_class_volumes(args.data))
    sampler = EpisodeSampler(train_classes, size=INPUT_SIZE[args.model], seed=args.seed)
    val = EpisodeSampler(held_out, size=INPUT_SIZE[args.model], seed=1234).batch(16)
    model = build(args.model)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=30, gamma=0.3)
    ckpt = out / "last.pt"
    epoch = 0
    if ckpt.exists():
        state = load_checkpoint(ckpt, model=model, optimizers={"adam": optimiser},
                                schedulers={"step": scheduler}, restore_rng=True)
        epoch = state["epoch"]
        sampler.rng.setstate(state["extra"]["sampler_rng"])
        print(f"resumed after epoch {epoch}", flush=True)
    history = CsvHistory(out / "history.csv", resume_epoch=epoch if ckpt.exists() else None)
    while (epoch < args.max_epochs and (time.process_time() - cpu_start) / 60 < args.minutes
           and (time.time() - start) / 60 < args.wall_minutes):
        model.train()
        losses = []
        for _ in range(args.episodes):
            ep = sampler.batch(args.batch)
            output = model(ep.support_images, ep.support_masks, ep.query)
            loss = fewshot_loss(output, ep.query_mask, ep.support_masks)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss))
        scheduler.step()
        epoch += 1
        model.eval()
        with torch.no_grad():
            val_dice = dice_of(model(val.support_images, val.support_masks, val.query).logits[-1], val.query_mask)
        history.append({"epoch": epoch, "loss": sum(losses) / len(losses), "val_dice": val_dice,
                        "lr": optimiser.param_groups[0]["lr"],
                        "cpu_minutes": (time.process_time() - cpu_start) / 60})
        save_checkpoint(ckpt, epoch=epoch, model=model, optimizers={"adam": optimiser},
                        schedulers={"step": scheduler}, extra={"sampler_rng": sampler.rng.getstate()})
        print(f"epoch {epoch} loss {history.rows[-1]['loss']:.4f} val_dice {val_dice:.3f} "
              f"({(time.time() - start) / 60:.1f} min)", flush=True)
    history.plot(out / "history.png", title=f"{args.model} episodic training")


if __name__ == "__main__":
    main()
