"""Run ``lunglesion.inference.segment_image`` on files, outside the Slicer GUI process.

MRML- and Qt-free: imported by the module Logic for in-process runs, and executed as a
script by :mod:`LungLesionSegLib.background` so that the GUI stays responsive and Cancel
kills the process. As a script it reads ``--input`` (any format SimpleITK reads), writes
``labelmap.nrrd``, optional ``probability.nrrd`` and ``result.json`` into ``--output-dir``
and reports on stdout one JSON object per line::

    {"event": "progress", "fraction": 0.4, "message": "slice 20/48"}
    {"event": "log", "message": "GPU out of memory; running on CPU"}
    {"event": "done", "device": "cpu", "seconds": 12.3}
    {"event": "error", "message": "unknown model 'x' (known models: ...)"}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lunglesion.errors import InputError, LungLesionError
from lunglesion.image import Image

ProgressCallback = Callable[[float, str], None]


@dataclass
class SegmentationOptions:
    """The choices of the module panel, the batch script and ``Logic.process``."""

    model: str = ""  # empty: the registry's default model
    device: str = "auto"  # auto | cpu | cuda
    threshold: float = 0.5
    keep_probability: bool = False
    restrict_to_lungs: bool = True
    multiclass: bool = False

    def as_args(self) -> list[str]:
        """Command-line arguments of this script for these options."""
        args = ["--model", self.model, "--device", self.device, "--threshold", f"{self.threshold:g}"]
        args += ["--keep-probability"] if self.keep_probability else []
        args += [] if self.restrict_to_lungs else ["--no-restrict-to-lungs"]
        args += ["--multiclass"] if self.multiclass else []
        return args


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def run_segmentation(image: Image, options: SegmentationOptions, progress: ProgressCallback | None = None,
                     cancel: Callable[[], bool] | None = None) -> tuple[Any, str]:
    """``segment_image`` with the options; on GPU out-of-memory, retry on CPU with a message.

    Returns the ``SegmentationResult`` and the device that produced it.
    """
    from lunglesion.inference import segment_image
    from lunglesion.registry import default_model_name

    model = options.model or default_model_name()
    kwargs = dict(model=model, threshold=options.threshold, restrict_to_lungs=options.restrict_to_lungs,
                  keep_probability=options.keep_probability, multiclass=options.multiclass,
                  progress=progress, cancel=cancel)
    try:
        return segment_image(image, device=options.device, **kwargs), options.device
    except RuntimeError as error:
        if options.device == "cpu" or not _is_out_of_memory(error):
            raise
    import torch

    torch.cuda.empty_cache()
    if progress is not None:
        progress(0.0, "GPU out of memory: running on the CPU instead (slower)")
    return segment_image(image, device="cpu", **kwargs), "cpu"


def result_to_json(result: Any, device: str, seconds: float) -> dict[str, Any]:
    """The JSON-serialisable part of a ``SegmentationResult`` (segments, statistics, timing)."""
    return {"segments": [asdict(s) for s in result.segments], "statistics": result.statistics,
            "device": device, "seconds": seconds}


def segments_from_json(items: list[dict[str, Any]]) -> list[Any]:
    """``SegmentInfo`` objects from :func:`result_to_json`'s ``segments``."""
    from lunglesion.terminology import SegmentInfo

    def code(value: Any) -> tuple[str, str, str] | None:
        return tuple(value) if value else None

    return [SegmentInfo(name=i["name"], label_value=int(i["label_value"]), color=tuple(i["color"]),
                        category=code(i["category"]), type=code(i["type"]),
                        type_modifier=code(i.get("type_modifier"))) for i in items]


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Script entry point; exit status 0 on success, 2 on a LungLesionError, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--model", default="")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--keep-probability", action="store_true")
    parser.add_argument("--no-restrict-to-lungs", dest="restrict_to_lungs", action="store_false")
    parser.add_argument("--multiclass", action="store_true")
    args = parser.parse_args(argv)
    options = SegmentationOptions(args.model, args.device, args.threshold, args.keep_probability,
                                  args.restrict_to_lungs, args.multiclass)
    try:
        import SimpleITK as sitk

        from lunglesion.io.atomic import atomic_output
        from lunglesion.io.convert import from_sitk, to_sitk

        if not args.input.is_file():
            raise InputError(f"input volume not found: {args.input}")
        start = time.monotonic()
        image = from_sitk(sitk.ReadImage(str(args.input)), str(args.input))
        result, device = run_segmentation(
            image, options, progress=lambda f, m: _emit("progress", fraction=float(f), message=m))
        outputs = [("labelmap.nrrd", result.labelmap)]
        outputs += [("probability.nrrd", result.probability)] if result.probability is not None else []
        for name, output in outputs:
            with atomic_output(args.output_dir / name) as tmp:
                sitk.WriteImage(to_sitk(output), str(tmp), True)
        seconds = time.monotonic() - start
        with atomic_output(args.output_dir / "result.json") as tmp:
            tmp.write_text(json.dumps(result_to_json(result, device, seconds), indent=1))
        _emit("done", device=device, seconds=seconds)
        return 0
    except LungLesionError as error:
        _emit("error", message=str(error))
        return 2
    except Exception as error:  # reported to the GUI as one line; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        _emit("error", message=f"{type(error).__name__}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
