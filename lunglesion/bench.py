"""Speed and memory benchmarks of registered models (CPU, and CUDA where present).

Each model is measured in a fresh subprocess so that peak resident memory belongs to it
alone. The end-to-end figure segments a 512 x 512 x ``depth`` CT synthesised from the
real ``chest_ct`` volume (its slices tiled along z), exactly as ``segment`` would.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from lunglesion.image import Image
from lunglesion.inference.device import resolve_device
from lunglesion.registry import load_model

BENCH_SIDE = 352


def synthetic_volume(source: Path, depth: int = 300) -> Image:
    """A real CT tiled along z to ``depth`` slices (geometry of the source, more slices)."""
    from lunglesion.io import read_image

    ct = read_image(source)
    reps = int(np.ceil(depth / ct.array.shape[0]))
    array = np.concatenate([ct.array, ct.array[::-1]] * reps)[:depth]
    return Image(array=np.ascontiguousarray(array), spacing=ct.spacing, origin=ct.origin, direction=ct.direction)


def gflops(network: torch.nn.Module, side: int) -> float:
    """Forward GFLOPs for one ``side x side`` slice (multiply-add counted as two)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        network(torch.zeros(1, 1, side, side))
    return counter.get_total_flops() / 1e9


def _timed(fn, repeats: int) -> float:
    fn()
    tic = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - tic) / repeats


def bench_one(name: str, device: str, volume: Path | None, depth: int, batch: int, repeats: int) -> dict:
    """Figures for one model on one device (call in a fresh process for clean peak memory)."""
    dev = resolve_device(device)
    network, entry = load_model(name, dev)
    network = network.to(memory_format=torch.channels_last)
    row = {"model": name, "device": str(dev),
           "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6,
           "gflops_352": gflops(network.cpu(), BENCH_SIDE)}
    network.to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def run(n: int):
        def step():
            with torch.inference_mode():
                network(torch.rand(n, 1, BENCH_SIDE, BENCH_SIDE, device=dev).contiguous(
                    memory_format=torch.channels_last))
            sync()
        return step

    row["ms_per_slice_b1"] = 1000 * _timed(run(1), repeats)
    row["slices_per_s_batched"] = batch / _timed(run(batch), max(1, repeats // 2))
    row["batch"] = batch
    if volume is not None and entry.task.startswith("covid"):
        from lunglesion.inference.pipeline import segment_image

        ct = synthetic_volume(volume, depth)
        tic = time.perf_counter()
        segment_image(ct, model=name, device=str(dev), batch_size=batch)
        sync()
        row[f"end_to_end_s_512x512x{depth}"] = time.perf_counter() - tic
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


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
