"""Speed and memory benchmarks of registered models (CPU, and CUDA where present).

Each model is measured in a fresh subprocess so that peak resident memory belongs to it
alone. The end-to-end figure segments a 512 x 512 x ``depth`` CT synthesised from the
real ``chest_ct`` volume (its slices tiled along z), exactly as ``segment`` would (models run as
registered: flip test-time augmentation and ensembles included); for a
few-shot model, as ``fewshot`` would from 3 labelled slices of another volume (the sample CT),
so that every slice of the query is segmented. An architecture name that has no trained
weights (e.g. the ``bsnet`` paper configuration) is timed with random weights, network only.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from lunglesion.errors import InputError, UntrainedArchitectureError
from lunglesion.image import Image
from lunglesion.inference.device import resolve_device
from lunglesion.networks.catalog import ARCHITECTURES
from lunglesion.registry import ModelEntry, load_model

BENCH_SIDE = 352
FEWSHOT_SUPPORT_SLICES = 3


def synthetic_volume(source: Path, depth: int = 300) -> Image:
    """A real CT tiled along z to ``depth`` slices (geometry of the source, more slices)."""
    from lunglesion.io import read_image

    ct = read_image(source)
    reps = int(np.ceil(depth / ct.array.shape[0]))
    array = np.concatenate([ct.array, ct.array[::-1]] * reps)[:depth]
    return Image(array=np.ascontiguousarray(array), spacing=ct.spacing, origin=ct.origin, direction=ct.direction)


def gflops(network: torch.nn.Module, side: int, few_shot: bool = False) -> float:
    """Forward GFLOPs for one ``side x side`` slice (multiply-add counted as two)."""
    counter = FlopCounterMode(display=False)
    with counter:
        forward(network, 1, side, torch.device("cpu"), few_shot)()
    return counter.get_total_flops() / 1e9


def forward(network: torch.nn.Module, n: int, side: int, device: torch.device,
            few_shot: bool = False) -> Callable[[], None]:
    """One inference call on ``n`` random slices; a few-shot network gets one labelled support slice."""
    query = torch.rand(n, 1, side, side, device=device).contiguous(memory_format=torch.channels_last)
    support = torch.rand(1, 1, 1, side, side, device=device)
    mask = torch.zeros(1, 1, side, side, device=device)
    mask[..., side // 4:3 * side // 4, side // 4:3 * side // 4] = 1
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        with torch.inference_mode():
            network(support, mask, query) if few_shot else network(query)
        sync()
    return step


def _network(name: str, device: torch.device) -> tuple[torch.nn.Module, ModelEntry | None]:
    """A registered model with its weights, or an architecture with random weights (entry None)."""
    try:
        return load_model(name, device)
    except UntrainedArchitectureError:
        return ARCHITECTURES[name].build().eval().to(device), None


def _fewshot_end_to_end(name: str, volume: Path, depth: int) -> float:
    """Seconds for ``segment_with_support`` on the tiled volume from 3 labelled sample-CT slices."""
    from lunglesion.fewshot.segment import segment_with_support
    from lunglesion.io import read_image

    support = read_image(volume)
    label = np.zeros(support.array.shape, np.uint8)
    rows, cols = label.shape[1:]
    for z in np.linspace(0, label.shape[0] - 1, FEWSHOT_SUPPORT_SLICES).astype(int):
        label[z, rows // 3:rows // 2, cols // 4:cols // 2] = 1  # any structure: the timing is what counts
    query = synthetic_volume(volume, depth)
    tic = time.perf_counter()
    segment_with_support(query, [(support, support.with_array(label))], model=name)
    return time.perf_counter() - tic


def _timed(fn, repeats: int) -> float:
    fn()
    tic = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - tic) / repeats


def bench_one(name: str, device: str, volume: Path | None, depth: int, batch: int, repeats: int) -> dict:
    """Figures for one model on one device (call in a fresh process for clean peak memory)."""
    dev = resolve_device(device)
    network, entry = _network(name, dev)
    if entry is not None and entry.task.endswith("-3d"):
        raise InputError(f"bench measures 2D and few-shot networks; '{name}' is a 3D chunk model")
    few_shot = entry is not None and entry.task == "fewshot"
    side = int(entry.input.get("size", BENCH_SIDE)) if few_shot else BENCH_SIDE
    network = network.to(memory_format=torch.channels_last)
    row = {"model": name, "device": str(dev), "weights": "trained" if entry else "random (untrained architecture)",
           "flip_tta": bool(entry and entry.input.get("flip_tta")),
           "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6,
           "input_px": side, "gflops": gflops(network.cpu(), side, few_shot)}
    network.to(dev)
    row["ms_per_slice_b1"] = 1000 * _timed(forward(network, 1, side, dev, few_shot), repeats)
    row["slices_per_s_batched"] = batch / _timed(forward(network, batch, side, dev, few_shot), max(1, repeats // 2))
    row["batch"] = batch
    key = f"end_to_end_s_512x512x{depth}"
    if volume is not None and few_shot and dev.type == "cpu":  # few-shot inference runs on the CPU
        row[key] = _fewshot_end_to_end(name, volume, depth)
    elif volume is not None and entry is not None and entry.task.startswith("covid"):
        from lunglesion.inference.pipeline import segment_image

        ct = synthetic_volume(volume, depth)
        tic = time.perf_counter()
        segment_image(ct, model=name, device=str(dev), batch_size=batch)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        row[key] = time.perf_counter() - tic
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def bench_softmask(volume: Path, depth: int = 300, lesions: int = 30, seed: int = 0) -> dict:
    """Seconds for :func:`lunglesion.softmask.make_soft_mask` (HU domain) on the tiled CT with
    ``lesions`` ellipsoidal ground-glass lesions (radius 3-12 voxels) drawn into its lungs."""
    from lunglesion.softmask import make_soft_mask

    ct = synthetic_volume(volume, depth)
    hu = np.asarray(ct.array, dtype=np.float32).copy()
    rng = np.random.default_rng(seed)
    candidates = np.argwhere(hu[:, ::8, ::8] < -700) * (1, 8, 8)
    mask = np.zeros(hu.shape, bool)
    for centre in candidates[rng.choice(len(candidates), size=lesions, replace=False)]:
        r = rng.uniform(3, 12)
        radii = np.array([max(r / 3, 1), r, r])
        lo = np.maximum(centre - np.ceil(radii).astype(int), 0)
        hi = np.minimum(centre + np.ceil(radii).astype(int) + 1, hu.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        grid = np.ogrid[box]
        mask[box] |= sum(((g - c) / rad) ** 2 for g, c, rad in zip(grid, centre, radii)) <= 1
    hu[mask] = -400 + rng.normal(0, 30, mask.sum())
    image = ct.with_array(hu)
    tic = time.perf_counter()
    make_soft_mask(image, image.with_array(mask.astype(np.uint8)), domain="hu")
    return {"task": "softmask", "lesions": lesions, f"softmask_s_512x512x{depth}": time.perf_counter() - tic,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_models(names: list[str], devices: list[str], volume: Path | None, depth: int = 300, batch: int = 8,
                 repeats: int = 5, threads: int | None = None) -> list[dict]:
    """Run :func:`bench_one` for every model and device, each in its own subprocess."""
    rows = []
    for device in devices:
        for name in names:
            cmd = [sys.executable, "-m", "lunglesion.bench", name, device, str(volume or ""), str(depth),
                   str(batch), str(repeats), str(threads or 0)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"benchmark of {name} on {device} failed:\n{done.stderr.strip()[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


if __name__ == "__main__":
    model, device, volume_arg, depth_arg, batch_arg, repeats_arg, threads_arg = sys.argv[1:8]
    if int(threads_arg):
        torch.set_num_threads(int(threads_arg))
    result = bench_one(model, device, Path(volume_arg) if volume_arg else None, int(depth_arg), int(batch_arg),
                       int(repeats_arg))
    print(json.dumps(result))
