"""A registered model loaded for prediction, with CPU fallback when the GPU runs out of memory."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from lunglesion.errors import InputError
from lunglesion.inference.device import resolve_device, warn
from lunglesion.inference.slices import predict_slices
from lunglesion.registry import LESION_TASKS, get_entry, lesion_models, load_model


class Predictor:
    """Predicts probability maps for 2D slices in the network domain [0, 1].

    The registry entry's ``input`` says how: ``size`` (square side the network sees),
    ``classes`` (1 = binary sigmoid, >1 = softmax) and optionally ``predictor``
    (``"module:function"`` taking ``(network, slice, size)`` for networks that need their own
    handling, such as DSNet's nodule ROI). ``tta`` overrides the entry's flip test-time
    augmentation (``None``: as registered).
    """

    def __init__(self, name: str, device: str = "auto", batch_size: int = 8, tta: bool | None = None) -> None:
        entry = get_entry(name)
        if entry.task not in LESION_TASKS:
            raise InputError(f"model '{name}' ({entry.task}) does not segment lesions; lesion models: "
                             f"{', '.join(e.name for e in lesion_models())}")
        self.device = resolve_device(device)
        self.network, self.entry = load_model(name, self.device, tta)
        if "segment" not in self.entry.input:  # 2D slice networks run faster channels-last
            self.network = self.network.to(memory_format=torch.channels_last)
        self.batch_size = batch_size

    @property
    def classes(self) -> int:
        return int(self.entry.input.get("classes", 1))

    def predict(self, slices: Sequence[np.ndarray],
                progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
        """Probabilities per slice: ``(H, W)`` for binary models, ``(C, H, W)`` for multi-class."""
        try:
            return self._predict(slices, progress)
        except torch.cuda.OutOfMemoryError:
            warn("GPU out of memory; continuing on the CPU")
            torch.cuda.empty_cache()
            self.device = torch.device("cpu")
            self.network = self.network.to(self.device)
            return self._predict(slices, progress)

    def _predict(self, slices: Sequence[np.ndarray], progress: Callable[[int], None] | None) -> list[np.ndarray]:
        custom = self.entry.input.get("predictor")
        if custom:
            module_name, function_name = custom.split(":")
            function = getattr(importlib.import_module(module_name), function_name)
            return [function(self.network, s, int(self.entry.input["size"])) for s in slices]
        return predict_slices(self.network, slices, int(self.entry.input["size"]), batch_size=self.batch_size,
                              device=self.device, multiclass=self.classes > 1, progress=progress)
