"""Batched 2D prediction: slices of any size in, probability maps of the same size out.

Every 2D network (training validation, ``evaluate``, ``segment`` over a volume) predicts
through :func:`predict_slices`, so resizing, batching and activation happen in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lunglesion.networks.averaging import final_map


@torch.inference_mode()
def predict_slices(network: torch.nn.Module, slices: Sequence[np.ndarray], size: int, *,
                   batch_size: int = 8, device: str | torch.device = "cpu", multiclass: bool = False,
                   progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Probabilities for each slice (values in [0, 1], network domain input).

    Each slice is resized to ``size x size``, batched, passed through ``network`` (in eval
    mode), activated (sigmoid, or softmax over classes when ``multiclass``) and resized
    back to its own shape. Binary nets give ``(H, W)`` maps, multi-class ``(C, H, W)``.
    ``progress(n)`` is called after each batch with the number of slices done.
    """
    network.eval()
    device = torch.device(device)
    results: list[np.ndarray] = []
    for start in range(0, len(slices), batch_size):
        chunk = slices[start:start + batch_size]
        batch = torch.stack([
            F.interpolate(torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))[None, None],
                          size=(size, size), mode="bilinear", align_corners=False)[0]
            for s in chunk
        ]).to(device).contiguous(memory_format=torch.channels_last)
        logits = final_map(network(batch)).float()
        probs = torch.softmax(logits, dim=1) if multiclass else torch.sigmoid(logits)
        for s, p in zip(chunk, probs):
            p = F.interpolate(p[None], size=s.shape[-2:], mode="bilinear", align_corners=False)[0]
            results.append((p if multiclass else p[0]).cpu().numpy())
        if progress is not None:
            progress(len(results))
    return results
