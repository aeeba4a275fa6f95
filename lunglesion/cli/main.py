"""Entry point: ``lunglesion segment | train | evaluate | softmask | fewshot | bench | models | weaklabels``."""

from __future__ import annotations

import argparse
import importlib
import sys

from lunglesion.errors import LungLesionError

SUBCOMMANDS = ("segment", "train", "evaluate", "softmask", "fewshot", "bench", "models", "weaklabels")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (each subcommand module adds its own arguments)."""
    parser = argparse.ArgumentParser(prog="lunglesion", description="Lung lesion segmentation on CT.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"lunglesion.cli.{name}")
        sub = subparsers.add_parser(name, help=module.__doc__.strip().splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; bad input exits 2 with one ``error:`` line."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except LungLesionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
