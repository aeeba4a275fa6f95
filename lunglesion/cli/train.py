"""Train a network (resumable); optionally export it to the model registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lunglesion.networks.catalog import ARCHITECTURES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help=f"architecture: {', '.join(sorted(ARCHITECTURES))}, dram, dram3d, rpnet, dsnet")
    parser.add_argument("--data", required=True, help="labelled set (images/ + masks/) or data folder")
    parser.add_argument("--out", default=None, help="run folder (checkpoints, history.csv, curves.png)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the architecture's)")
    parser.add_argument("--size", type=int, default=None, help="training side length in pixels")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--val-data", default=None, help="explicit validation set (default: a split of --data)")
    parser.add_argument("--val-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multiclass", action="store_true", help="background / GGO / consolidation head")
    parser.add_argument("--init-from", default=None, help="checkpoint or weight file to start from")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--weak-labels", default=None, help="dRAM: CSV of region scores")
    parser.add_argument("--regions", default=None, help="dRAM: folder of lobe/region label maps")
    parser.add_argument("--unlabeled", default=None, metavar="DIR",
                        help="dRAM: also self-train the final networks on the slices of DIR/images (no masks read)")
    parser.add_argument("--dram-settings", type=json.loads, default=None, metavar="JSON",
                        help="dRAM: chain settings over the defaults, e.g. '{\"base\": 32, \"epochs_dram\": 200}' "
                             "(hours on a CPU, minutes on a GPU); '{\"lung_field\": \"learned\"}' when the CSV "
                             "came from `weaklabels --lung-field learned`, as the shipped `dram`'s did")


def run(args: argparse.Namespace) -> int:
    out = args.out or str(Path("runs") / (args.model + ("-multiclass" if args.multiclass else "")))
    if args.model in ("dram", "dram3d"):
        from lunglesion.weak.pipeline import train_from_scores
        from lunglesion.weak.selftrain import unlabeled_images

        train_from_scores(args.data, args.weak_labels, out, regions_dir=args.regions,
                          variant="3d" if args.model == "dram3d" else "2d", resume=args.resume,
                          budget=args.dram_settings, device=args.device,
                          unlabeled=unlabeled_images(args.unlabeled) if args.unlabeled else None)
        return 0
    from lunglesion.training.supervised import SupervisedTrainer, TrainConfig

    cfg = TrainConfig(model=args.model, data=args.data, out_dir=out, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, size=args.size, val_fraction=args.val_fraction,
                      seed=args.seed, val_data=args.val_data, multiclass=args.multiclass, init_from=args.init_from,
                      val_every=args.val_every, threads=args.threads, device=args.device)
    trainer = SupervisedTrainer(cfg)
    if args.resume and (Path(out) / "checkpoint.pt").exists():
        trainer.resume()
    elif args.init_from:
        trainer.init_from(Path(args.init_from))
    metrics = trainer.fit()
    print(f"run folder: {out}")
    print(f"dice={metrics.get('dice', float('nan')):.4f}")
    return 0
