"""Segment a query image from a few labelled support slices (RP-Net inference).

``segment_with_support(query, [(image, labelmap), ...])`` returns a uint8 labelmap with
the query's exact geometry. Volumes are handled as axial slices in patient space. When a
support image *is* the query (the interactive case), its labelled slices keep their labels
exactly and the other slices are segmented outward from them, each matched to the
nearest labelled slice, inside a region around the labelled structure; a direction stops
at the first slice the network leaves empty (the network decides where the structure
ends). Otherwise each query slice is matched to the support slice at the same relative
position in its volume and the whole slice is segmented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from lunglesion.errors import Cancelled, DimensionError, InputError
from lunglesion.fewshot.baselines import copy_nearest, fill_between
from lunglesion.fewshot.registration import register_masks
from lunglesion.fewshot.slices import LAYOUT, axial_arrays, normalise_intensity, resize_stack, roi_box
from lunglesion.image import Image
from lunglesion.preprocessing.slicing import axial_view
from lunglesion.registry import load_model

BASELINES = ("copy-nearest", "fill-between")
BATCH = 16
MIN_AREA_FRACTION = 0.05  # a propagated slice under 5% of its support's area counts as empty


@dataclass
class SupportSlice:
    """One labelled axial slice: normalised image, bool mask, index and relative position."""

    image: np.ndarray
    mask: np.ndarray
    z: int
    relative: float


@lru_cache(maxsize=4)
def _network(name: str) -> tuple[torch.nn.Module, int]:
    network, entry = load_model(name)
    return network, int(entry.input.get("size", 128))


def _check(query: Image, support: list[tuple[Image, Image]], label: int) -> None:
    if not support:
        raise InputError("no support given: at least one labelled image is needed")
    for i, (image, mask) in enumerate(support, 1):
        if image.ndim != query.ndim:
            raise DimensionError(f"support {i} is {image.ndim}D but the query is {query.ndim}D; "
                                 "support and query must have the same dimensionality")
        if image.array.shape != mask.array.shape:
            raise DimensionError(f"support {i}: image size {image.array.shape} and label map size "
                                 f"{mask.array.shape} differ")
    if not any(np.any(mask.array == label) for _, mask in support):
        raise InputError(f"label {label} is absent from the support label map(s)")


def _support_slices(image: Image, mask: Image, label: int) -> list[SupportSlice]:
    arr = normalise_intensity(axial_arrays(image))
    lab = axial_arrays(mask) == label
    depth = max(1, arr.shape[0] - 1)
    return [SupportSlice(arr[z], lab[z], z, z / depth) for z in np.nonzero(lab.any((1, 2)))[0]]


def _is_same(query: Image, image: Image) -> bool:
    return query.same_geometry(image) and np.array_equal(query.array, image.array)


class _Runner:
    """Runs the network on (support slice, query slice) pairs inside a box, in batches."""

    def __init__(self, model: str, iterations: int) -> None:
        self.network, self.size = _network(model)
        self.iterations = iterations

    @torch.no_grad()
    def predict(self, pairs: list[tuple[list[SupportSlice], np.ndarray]],
                box: tuple[int, int, int, int] | None) -> list[np.ndarray]:
        """Bool masks (query slice size) for ``(shots, normalised query slice)`` pairs."""
        out = []
        batches: list[list[tuple[list[SupportSlice], np.ndarray]]] = []
        for pair in pairs:  # consecutive pairs with the same shots share one support encoding
            previous = batches[-1][0][0] if batches else []
            if (batches and len(batches[-1]) < BATCH and len(previous) == len(pair[0])
                    and all(a is b for a, b in zip(previous, pair[0]))):
                batches[-1].append(pair)
            else:
                batches.append([pair])
        for chunk in batches:
            shape = chunk[0][1].shape
            y0, y1, x0, x1 = box or (0, shape[0], 0, shape[1])
            shots = chunk[0][0]
            crop = (lambda a: a[y0:y1, x0:x1]) if box else (lambda a: a)  # noqa: E731
            s_img = torch.stack([resize_stack(crop(s.image)[None], self.size)[0] for s in shots])[None]
            s_msk = torch.stack([resize_stack(crop(s.mask)[None].astype(np.float32), self.size, "area")[0]
                                 for s in shots])[None] > 0.5
            q = resize_stack(np.stack([qs[y0:y1, x0:x1] for _, qs in chunk]), self.size)
            n = q.shape[0]
            init = torch.stack([register_masks(s_img[:, k].expand(n, -1, -1), s_msk[:, k].float().expand(n, -1, -1), q)
                                for k in range(len(shots))]).mean(0)
            net_out = self.network(s_img.unsqueeze(2), s_msk.float(), q.unsqueeze(1),
                                   initial_mask=(init > 0.5).float(), iterations=self.iterations)
            prob = net_out.logits[-1].softmax(1)[:, 1]
            prob = resize_stack(prob, (y1 - y0, x1 - x0))
            for p in prob.numpy():
                full = np.zeros(shape, dtype=bool)
                full[y0:y1, x0:x1] = p > 0.5
                out.append(full)
        return out


def _interactive(runner: _Runner, query: np.ndarray, shots: list[SupportSlice],
                 report: Callable[[float, str], None]) -> np.ndarray:
    depth = query.shape[0]
    result = np.zeros(query.shape, dtype=bool)
    labelled = {s.z: s for s in shots}
    for s in shots:
        result[s.z] = s.mask
    box = roi_box(np.any([s.mask for s in shots], axis=0))
    zs = np.array(sorted(labelled))
    # one branch per labelled slice and direction, walking outward; between two labelled
    # slices each branch stops at the midpoint (slices belong to the nearer labelled slice)
    branches = []
    for i, z in enumerate(zs):
        below = (zs[i - 1] + z) / 2 if i > 0 else -1
        above = (zs[i + 1] + z) / 2 if i + 1 < len(zs) else depth
        branches += [(int(z), -1, below), (int(z), 1, above)]
    alive = {b: True for b in branches}
    total, done = max(1, depth - len(zs)), 0
    for distance in range(1, depth):
        jobs = []
        for b in branches:
            z0, step, limit = b
            z = z0 + step * distance
            if not alive[b] or (step < 0 and z <= limit - 0.5) or (step > 0 and z >= limit + 0.5) \
                    or z in labelled or not 0 <= z < depth:
                alive[b] = False
                continue
            jobs.append((b, z))
        if not jobs:
            break
        masks = runner.predict([([labelled[b[0]]], query[z]) for b, z in jobs], box)
        for (b, z), m in zip(jobs, masks):
            if m.sum() < MIN_AREA_FRACTION * labelled[b[0]].mask.sum():
                alive[b] = False
            else:
                result[z] = m
        done += len(jobs)
        report(min(1.0, done / total), f"segmented {done} slices")
    return result


def segment_with_support(query: Image, support: list[tuple[Image, Image]], model: str = "rpnet",
                         iterations: int = 10, label: int = 1,
                         progress: Callable[[float, str], None] | None = None,
                         cancel: Callable[[], bool] | None = None) -> Image:
    """Labelmap (uint8, value ``label``, query geometry) of the structure labelled in ``support``.

    ``support`` holds (image, label map) pairs; in a volume every axial slice containing
    ``label`` is a support slice. ``model`` is a registered few-shot network (``rpnet``,
    ``rpnet-proto``) or a baseline (``copy-nearest``, ``fill-between``; these need the
    query itself as support). Raises InputError / DimensionError on unusable input and
    Cancelled when ``cancel()`` turns true between batches.
    """
    _check(query, support, label)

    def report(fraction: float, message: str) -> None:
        if cancel is not None and cancel():
            raise Cancelled("few-shot segmentation cancelled")
        if progress is not None:
            progress(fraction, message)

    view = axial_view(query, LAYOUT) if query.ndim == 3 else None
    raw = query.array[None] if view is None else view.array
    own = [pair for pair in support if query.ndim == 3 and _is_same(query, pair[0])]
    shots = [s for image, mask in (own or support) for s in _support_slices(image, mask, label)]
    if model in BASELINES:
        if not own:
            raise InputError(f"the '{model}' baseline needs the query itself as support (labelled slices)")
        labelled = {s.z: s.mask for s in shots}
        result = (copy_nearest if model == "copy-nearest" else fill_between)(labelled, raw.shape[0])
    else:
        runner = _Runner(model, iterations)
        normalised = normalise_intensity(raw)
        report(0.0, "segmenting")
        if own:
            result = _interactive(runner, normalised, shots, report)
        elif query.ndim == 2:
            result = runner.predict([(shots, normalised[0])], None)[0][None]
        else:
            depth = max(1, raw.shape[0] - 1)
            rel = np.array([s.relative for s in shots])
            pairs = [([shots[int(np.argmin(np.abs(rel - z / depth)))]], normalised[z]) for z in range(raw.shape[0])]
            result = np.zeros(raw.shape, dtype=bool)
            for start in range(0, len(pairs), BATCH):
                result[start:start + BATCH] = runner.predict(pairs[start:start + BATCH], None)
                report(min(1.0, (start + BATCH) / len(pairs)), f"segmented {start + BATCH} slices")
    labelmap = result.astype(np.uint8) * np.uint8(label)
    array = labelmap[0] if view is None else view.to_image_array(labelmap)
    return query.with_array(array)
