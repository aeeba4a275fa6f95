"""The model registry: ``Resources/Models/models.json`` plus weight files and model cards.

Each entry names a network class (``"module:Class"``) and its constructor config, the
input convention, the weight file with its sha256, the validation metrics and the licence
of the training data. Loading verifies the checksum and fails clearly on a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lunglesion.errors import ModelFileError, UnknownModelError

DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / "Resources" / "Models"


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

    @property
    def weights_path(self) -> Path:
        return models_dir() / self.weights

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
    known = ", ".join(e.name for e in entries) or "none registered"
    raise UnknownModelError(f"unknown model '{name}' (known models: {known})")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(name: str, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelEntry]:
    """Build the network, verify and load its weights, return it in eval mode on ``device``."""
    entry = get_entry(name)
    path = entry.weights_path
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
    return network.to(device).eval(), entry


def export_weights(network: torch.nn.Module, path: Path, half: bool = True) -> str:
    """Save a state dict (fp16 floats when ``half``) for the registry; returns its sha256."""
    from lunglesion.io.atomic import atomic_output

    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in network.state_dict().items()}
    with atomic_output(Path(path)) as tmp:
        torch.save(state, tmp)
    return sha256_of(path)


def register(entry: ModelEntry) -> None:
    """Add or replace ``entry`` in ``models.json`` (used by training scripts)."""
    from dataclasses import asdict

    from lunglesion.io.atomic import atomic_output

    path = models_dir() / "models.json"
    entries = [e for e in _read_registry() if e.name != entry.name] + [entry]
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({"models": [asdict(e) for e in entries]}, indent=2) + "\n")
