"""The model registry: ``Resources/Models/models.json`` plus weight files and model cards.

Each entry names a network class (``"module:Class"``) and its constructor config, the
input convention, the weight file with its sha256, the validation metrics and the licence
of the training data. Loading verifies the checksum and fails clearly on a mismatch.
An ensemble entry lists ``members`` (other entries, loaded and checked the same way) instead
of a weight file; ``input.flip_tta`` turns on horizontal-flip test-time augmentation.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lunglesion.errors import ModelFileError, UnknownModelError, UntrainedArchitectureError

DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / "Resources" / "Models"

LESION_TASKS = ("covid-infection-2d", "covid-infection-3d", "lung-nodule-roi-2d")


def models_dir() -> Path:
    """Folder holding ``models.json`` (override with ``LUNGLESION_MODELS_DIR``)."""
    return Path(os.environ.get("LUNGLESION_MODELS_DIR", DEFAULT_MODELS_DIR))


@dataclass
class ModelEntry:
    """One registered model."""

    name: str
    task: str
    description: str
    network: str
    config: dict[str, Any]
    input: dict[str, Any]
    weights: str
    sha256: str
    card: str = ""
    outputs: list[str] = field(default_factory=lambda: ["infection"])
    metrics: dict[str, Any] = field(default_factory=dict)
    data_licence: str = ""
    default: bool = False
    members: list[str] = field(default_factory=list)

    @property
    def weights_path(self) -> Path:
        return models_dir() / self.weights

    def weight_files(self) -> list[Path]:
        """The weight files loading this model reads (an ensemble: its members')."""
        if self.members:
            return [path for member in self.members for path in get_entry(member).weight_files()]
        return [self.weights_path]

    def build_network(self) -> torch.nn.Module:
        """Instantiate the untrained network from ``network`` and ``config``."""
        from lunglesion.networks.catalog import build_network

        return build_network(self.network, self.config)


def _read_registry() -> list[ModelEntry]:
    path = models_dir() / "models.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [ModelEntry(**entry) for entry in data.get("models", [])]


def list_models() -> list[ModelEntry]:
    """All registered models, in registry order."""
    return _read_registry()


def lesion_models() -> list[ModelEntry]:
    """The registered models that segment lesions (what ``segment`` and the Slicer module run);
    the others are few-shot networks and the lung field of the weak labels."""
    return [e for e in _read_registry() if e.task in LESION_TASKS]


def default_model_name(task: str = "covid-infection-2d") -> str:
    """Name of the model marked default for ``task``."""
    entries = [e for e in _read_registry() if e.task == task]
    if not entries:
        raise UnknownModelError(
            f"no trained model is registered for task '{task}' (registry: {models_dir() / 'models.json'})"
        )
    return next((e.name for e in entries if e.default), entries[0].name)


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``; unknown names raise with the list of known ones."""
    entries = _read_registry()
    for entry in entries:
        if entry.name == name:
            return entry
    from lunglesion.networks.catalog import ARCHITECTURES

    known = ", ".join(e.name for e in entries) or "none registered"
    if name in ARCHITECTURES:
        card = models_dir() / f"{name}.md"
        why = f"; why, and what to use instead: {card}" if card.exists() else ""
        raise UntrainedArchitectureError(f"'{name}' is an architecture with no trained weights here (train it with "
                                         f"`lunglesion train --model {name} ...`){why}; trained models: {known}")
    raise UnknownModelError(f"unknown model '{name}' (known models: {known})")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(name: str, device: str | torch.device = "cpu",
               tta: bool | None = None) -> tuple[torch.nn.Module, ModelEntry]:
    """Build the network, verify and load its weights, return it in eval mode on ``device``.

    Ensembles come back as one :class:`~lunglesion.networks.averaging.ProbabilityAverage`
    module; ``tta`` overrides the entry's ``input.flip_tta`` (flip test-time augmentation).
    """
    from lunglesion.networks.averaging import ProbabilityAverage

    entry = get_entry(name)
    flip = bool(entry.input.get("flip_tta", False)) if tta is None else tta
    multiclass = int(entry.input.get("classes", 1)) > 1
    if entry.members:
        member_entries = _checked_members(entry)
        members = [load_model(member.name, device, tta=False)[0] for member in member_entries]
        sizes = [int(member.input["size"]) for member in member_entries]
        return ProbabilityAverage(members, flip, multiclass, sizes).to(device).eval(), entry
    network = _load_weights(entry)
    if flip:
        network = ProbabilityAverage([network], flip=True, multiclass=multiclass)
    return network.to(device).eval(), entry


def _checked_members(entry: ModelEntry) -> list[ModelEntry]:
    """The ensemble's member entries; they must exist and share its domain and classes (each runs at its own size)."""
    members = [get_entry(name) for name in entry.members]
    for member in members:
        for key in ("classes", "domain"):
            if member.input.get(key) != entry.input.get(key):
                raise ModelFileError(f"ensemble '{entry.name}': member '{member.name}' has input {key} "
                                     f"{member.input.get(key)!r}, the ensemble {entry.input.get(key)!r}")
    return members


def _load_weights(entry: ModelEntry) -> torch.nn.Module:
    """The entry's network with its checksum-verified weights (on the CPU)."""
    name, path = entry.name, entry.weights_path
    if not path.exists():
        raise ModelFileError(f"weights of model '{name}' not found: {path}")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ModelFileError(
            f"weights of model '{name}' fail their checksum ({path.name}: sha256 {actual[:12]}..., "
            f"registry expects {entry.sha256[:12]}...); the file is corrupt or was replaced"
        )
    network = entry.build_network()
    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return network


def export_weights(network: torch.nn.Module, path: Path, half: bool = True) -> str:
    """Save a state dict (fp16 floats when ``half``) for the registry; returns its sha256."""
    from lunglesion.io.atomic import atomic_output

    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in network.state_dict().items()}
    with atomic_output(Path(path)) as tmp, tmp.open("wb") as f:
        torch.save(state, f)  # a file object: the archive's inner name no longer follows the temporary name
    return sha256_of(path)


def register(entry: ModelEntry) -> None:
    """Add ``entry`` to ``models.json``, or replace the entry of that name where it stands (used by training scripts)."""
    from dataclasses import asdict

    from lunglesion.io.atomic import atomic_output

    path = models_dir() / "models.json"
    entries = _read_registry()
    names = [e.name for e in entries]
    if entry.name in names:  # replaced in place, so the listing order stays
        entries[names.index(entry.name)] = entry
    else:
        entries.append(entry)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({"models": [asdict(e) for e in entries]}, indent=2) + "\n")
