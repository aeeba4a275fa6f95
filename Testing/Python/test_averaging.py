"""Probability averaging: flip test-time augmentation, ensembles in the registry, and the
shipped COVID models (the weakly supervised ones included) reproducing the validation Dice their registry
entries claim."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lunglesion.errors import ModelFileError
from lunglesion.evaluation import evaluate_labelled_set
from lunglesion.networks.averaging import ProbabilityAverage
from lunglesion.networks.unet import UNet
from lunglesion.registry import ModelEntry, export_weights, get_entry, load_model, register

VALIDATION_STEMS = "2,3,4,25,27,30,31,33,43,45".split(",")  # the cards' held-out slices


def _asymmetric_net(out_channels: int = 1) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, out_channels, (1, 5), padding=(0, 2)))


def test_one_member_without_flip_returns_its_own_probabilities() -> None:
    net, x = _asymmetric_net().eval(), torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(ProbabilityAverage([net])(x)), torch.sigmoid(net(x)), atol=1e-5)


def test_flip_and_members_average_probabilities_not_logits() -> None:
    a, b, x = _asymmetric_net().eval(), _asymmetric_net().eval(), torch.rand(1, 1, 12, 20)
    torch.manual_seed(1)
    nn.init.normal_(b[0].weight)
    with torch.no_grad():
        expected = (torch.sigmoid(a(x)) + torch.sigmoid(a(x.flip(-1))).flip(-1)
                    + torch.sigmoid(b(x)) + torch.sigmoid(b(x.flip(-1))).flip(-1)) / 4
        got = torch.sigmoid(ProbabilityAverage([a, b], flip=True)(x))
    assert torch.allclose(got, expected, atol=1e-5)


def test_multiclass_average_is_the_mean_softmax() -> None:
    net, x = _asymmetric_net(3).eval(), torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        expected = (torch.softmax(net(x), 1) + torch.softmax(net(x.flip(-1)), 1).flip(-1)) / 2
        got = torch.softmax(ProbabilityAverage([net], flip=True, multiclass=True)(x), 1)
    assert torch.allclose(got, expected, atol=1e-5)


class _ShapeRecorder(nn.Module):
    """Returns logit 0 everywhere and remembers the input shapes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return torch.zeros_like(x)


def test_members_trained_at_different_sizes_each_see_their_own_size() -> None:
    small, large = _ShapeRecorder(), _ShapeRecorder()
    with torch.no_grad():
        out = ProbabilityAverage([small, large], flip=True, sizes=[256, 352])(torch.rand(2, 1, 352, 352))
    assert small.seen == [(2, 1, 256, 256)] * 2 and large.seen == [(2, 1, 352, 352)] * 2
    assert out.shape == (2, 1, 352, 352) and torch.allclose(torch.sigmoid(out), torch.full_like(out, 0.5))
    with pytest.raises(ValueError, match="1 input sizes for 2 member networks"):
        ProbabilityAverage([small, large], sizes=[256])


def _tiny_entry(models: Path, name: str, size: int = 64, domain: str = "test") -> ModelEntry:
    sha = export_weights(UNet(1, 1, base=4, depth=2), models / f"{name}.pt")
    entry = ModelEntry(name=name, task="covid-infection-2d", description="tiny", network="lunglesion.networks.unet:UNet",
                       config={"in_channels": 1, "out_channels": 1, "base": 4, "depth": 2},
                       input={"size": size, "classes": 1, "domain": domain}, weights=f"{name}.pt", sha256=sha)
    register(entry)
    return entry


def test_ensemble_entry_loads_checked_members_and_rejects_a_mismatch(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNGLESION_MODELS_DIR", str(tmp_path))
    _tiny_entry(tmp_path, "a")
    _tiny_entry(tmp_path, "b", size=96)
    register(ModelEntry(name="ab", task="covid-infection-2d", description="ensemble",
                        network="lunglesion.networks.averaging:ProbabilityAverage", config={},
                        input={"size": 64, "classes": 1, "domain": "test", "flip_tta": True}, weights="", sha256="",
                        members=["a", "b"]))
    network, entry = load_model("ab")
    assert isinstance(network, ProbabilityAverage) and len(network.members) == 2 and network.flip
    assert network.sizes == [64, 96]
    assert [p.name for p in entry.weight_files()] == ["a.pt", "b.pt"]
    assert not load_model("ab", tta=False)[0].flip
    _tiny_entry(tmp_path, "b", domain="HU")
    with pytest.raises(ModelFileError, match="member 'b' has input domain 'HU'"):
        load_model("ab")


@pytest.mark.parametrize(("name", "floor"), [("bsnet-light", 0.70), ("ncovsegnet-light", 0.70), ("unet", 0.70),
                                           ("covid-ensemble", 0.70), ("dram", 0.60), ("dram-cam", 0.35)])
def test_shipped_model_reproduces_its_registered_validation_dice(name: str, floor: float, shared_data: Path) -> None:
    entry = get_entry(name)
    claimed = entry.metrics.get("dice_flip_tta", entry.metrics.get("val_dice"))
    report = evaluate_labelled_set(name, shared_data / "covid_semiseg" / "train", stems=VALIDATION_STEMS,
                                   device="cpu")
    assert report.headline_dice == pytest.approx(claimed, abs=6e-4)
    assert report.headline_dice > floor


def test_flip_tta_can_be_switched_off_and_changes_the_result(shared_data: Path) -> None:
    data = shared_data / "covid_semiseg" / "train"
    plain = evaluate_labelled_set("bsnet-light", data, stems=VALIDATION_STEMS, device="cpu", tta=False)
    assert plain.headline_dice == pytest.approx(get_entry("bsnet-light").metrics["dice"], abs=6e-4)
    assert plain.headline_dice != pytest.approx(get_entry("bsnet-light").metrics["dice_flip_tta"], abs=1e-3)
