"""Named architectures: which class, which constructor config, which loss trains it.

``lunglesion train --model NAME`` and the registry entries refer to these names, so a
configuration is defined once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch

from lunglesion.errors import UnknownModelError


@dataclass(frozen=True)
class Architecture:
    """A network class plus its configuration and training recipe defaults."""

    network: str
    config: dict[str, Any] = field(default_factory=dict)
    loss: str = "structure"
    edge_output: bool = False
    size: int = 256
    lr: float = 1e-3
    description: str = ""

    def config_for(self, classes: int = 1) -> dict[str, Any]:
        """Constructor config; a multi-class head (``classes`` > 1) sets ``out_channels``."""
        return {**self.config, **({"out_channels": classes} if classes > 1 else {})}

    def build(self, classes: int = 1) -> torch.nn.Module:
        """Instantiate the network, binary or with a ``classes``-way head."""
        return build_network(self.network, self.config_for(classes))


def build_network(network: str, config: dict[str, Any]) -> torch.nn.Module:
    """Instantiate ``"package.module:Class"`` with keyword ``config``."""
    module_name, class_name = network.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**config)


_BSNET_LIGHT = dict(layers=(2, 2, 2, 2), planes=(16, 32, 64, 128), stem_width=16, base_width=26,
                    scale=4, rfb_channels=32, edge_channels=32, mbg_channels=32)

_NCOVSEGNET_LIGHT = dict(layers=(3, 4, 6, 3), planes=(16, 24, 48, 96), stem_width=16, gca_channels=(32, 32, 48, 48))

ARCHITECTURES: dict[str, Architecture] = {
    "unet": Architecture("lunglesion.networks.unet:UNet", dict(in_channels=1, out_channels=1, base=16, depth=4),
                         loss="bce_dice", description="plain 2D U-Net (Ronneberger 2015), 1.9 M parameters"),
    "lungfield": Architecture("lunglesion.networks.unet:UNet", dict(in_channels=1, out_channels=1, base=8, depth=4),
                              loss="bce_dice", size=128,
                              description="2D lung field for weak-label regions (lunglesion.weak.lungfield), 0.5 M parameters"),
    "bsnet": Architecture("lunglesion.networks.bsnet:BSNet", dict(in_channels=1), loss="structure",
                          edge_output=True, size=352, lr=1e-4,
                          description="BSNet, paper configuration (Res2Net-50 v1b 26w x 4s backbone)"),
    "bsnet-light": Architecture("lunglesion.networks.bsnet:BSNet", dict(in_channels=1, **_BSNET_LIGHT),
                                loss="structure", edge_output=True, size=256, lr=1e-3,
                                description="BSNet, light configuration (narrow Res2Net v1b, 1.8 M parameters)"),
    "ncovsegnet": Architecture("lunglesion.networks.ncovsegnet:NCoVSegNet", dict(in_channels=1), loss="wbce_dice",
                               size=352, lr=1e-4,
                               description="nCoVSegNet, paper configuration (ECA-ResNet-50 backbone)"),
    "ncovsegnet-light": Architecture("lunglesion.networks.ncovsegnet:NCoVSegNet",
                                     dict(in_channels=1, **_NCOVSEGNET_LIGHT), loss="wbce_dice", size=256, lr=1e-3,
                                     description="nCoVSegNet, light configuration (narrow ECA-ResNet-50, 1.75 M parameters)"),
}


def get_architecture(name: str) -> Architecture:
    """The architecture called ``name``; unknown names raise with the known list."""
    if name not in ARCHITECTURES:
        raise UnknownModelError(f"unknown architecture '{name}' (known: {', '.join(sorted(ARCHITECTURES))})")
    return ARCHITECTURES[name]
