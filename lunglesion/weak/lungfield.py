"""A learned 2D lung field that keeps dense consolidation inside the weak-label lung regions.

The classical regions (:func:`lunglesion.weak.regions.lung_regions_2d`) are the dark part of
the slice, so consolidation against the chest wall (as bright as the wall itself in a lung
window) falls outside them: on covid_semiseg/train a quarter of the lesion pixels does. A CTSS
score covers the whole lobe, consolidation included, so the regions should too. The bundled
network ``lungfield`` (trained by :mod:`lunglesion.weak.lungfield_training` on simulated
consolidation) sees the whole lung field; :func:`slice_regions` grows the classical lungs by it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from lunglesion.errors import InputError
from lunglesion.weak.regions import lung_regions_2d

LUNG_FIELDS = ("classical", "learned")
FIELD_MODEL = "lungfield"


@functools.lru_cache(maxsize=1)
def field_network() -> tuple[torch.nn.Module, int]:
    """The bundled lung-field network (registry ``lungfield``) and its input size."""
    from lunglesion.registry import load_model

    network, entry = load_model(FIELD_MODEL)
    return network, int(entry.input["size"])


def predict_field(network: torch.nn.Module, image: np.ndarray, size: int = 128, device: str = "cpu") -> np.ndarray:
    """The lung field (boolean, ``image``'s shape) that ``network`` sees in a [0, 1] slice."""
    from lunglesion.inference.slices import predict_slices

    return predict_slices(network, [image], size, device=device)[0] >= 0.5


def slice_regions(image: np.ndarray, parts: int = 1, lung_field: str = "classical") -> np.ndarray:
    """Lung regions of a [0, 1] slice (:func:`lung_regions_2d`): from its dark pixels alone
    (``classical``) or extended by the bundled network's lung field (``learned``)."""
    if lung_field not in LUNG_FIELDS:
        raise InputError(f"lung field must be one of {', '.join(LUNG_FIELDS)}, got {lung_field!r}")
    field = None
    if lung_field == "learned":
        network, size = field_network()
        field = predict_field(network, image, size)
    return lung_regions_2d(image, parts, field)
