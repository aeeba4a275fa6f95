"""Shapes and contracts of the 2D segmentation networks."""

from __future__ import annotations

import pytest
import torch

from lunglesion.networks.bsnet import BSNet
from lunglesion.networks.catalog import ARCHITECTURES, get_architecture
from lunglesion.networks.res2net import Res2NetV1b
from lunglesion.networks.unet import UNet
from lunglesion.errors import UnknownModelError


def test_res2net50_stage_shapes_and_size() -> None:
    net = Res2NetV1b()  # the paper's 26w x 4s, [3, 4, 6, 3]
    feats = net(torch.zeros(1, 1, 160, 160))
    assert [f.shape[1] for f in feats] == [256, 512, 1024, 2048]
    assert [f.shape[-1] for f in feats] == [40, 20, 10, 5]
    params = sum(p.numel() for p in net.parameters()) / 1e6
    assert 23 < params < 25  # Res2Net-50 v1b is 23.5 M without its classifier (1 input channel)


@pytest.mark.parametrize("name", ["bsnet", "bsnet-light"])
def test_bsnet_deep_supervision_outputs(name: str) -> None:
    net = get_architecture(name).build().train()
    outputs = net(torch.zeros(2, 1, 160, 192))
    assert len(outputs) == 5  # S5, S4, S3, S2 and the edge map
    assert all(o.shape == (2, 1, 160, 192) for o in outputs)
    net.eval()
    with torch.inference_mode():
        final = net(torch.zeros(1, 1, 256, 256))
    assert final.shape == (1, 1, 256, 256)


def test_bsnet_final_map_is_s2() -> None:
    torch.manual_seed(0)
    net = BSNet(**get_architecture("bsnet-light").config).eval()
    x = torch.rand(1, 1, 192, 192)
    with torch.inference_mode():
        final = net(x)
        net.training = True  # only the top module: BatchNorm layers stay in eval mode
        sides = net(x)
    assert torch.allclose(final, sides[3], atol=1e-5)


def test_unet_shape_and_parameter_count() -> None:
    net = UNet()
    assert net(torch.zeros(1, 1, 64, 96)).shape == (1, 1, 64, 96)
    assert 1.8 < sum(p.numel() for p in net.parameters()) / 1e6 < 2.0


def test_unknown_architecture_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="bsnet-light"):
        get_architecture("resnet-9000")
    assert {"unet", "bsnet", "bsnet-light"} <= set(ARCHITECTURES)
