"""nCoVSegNet: shapes of both configurations, the edge-weighted loss, LIDC export and
stage-1 -> stage-2 checkpoint chaining into a multi-class head, on real slices."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from lunglesion.data.labelled2d import read_grey_unit
from lunglesion.data.lidc_export import export_lidc, lung_crop_box
from lunglesion.errors import InputError
from lunglesion.inference.slices import predict_slices
from lunglesion.losses import boundary_weights, weighted_bce_dice_loss
from lunglesion.networks import catalog
from lunglesion.networks.ncovsegnet import NCoVSegNet
from lunglesion.training.supervised import SupervisedTrainer, TrainConfig

torch.set_num_threads(1)

LIGHT = dict(layers=(3, 4, 6, 3), planes=(16, 24, 48, 96), stem_width=16, gca_channels=(32, 32, 48, 48))
TINY = dict(layers=(1, 1, 1, 1), planes=(8, 8, 16, 16), stem_width=8, gca_channels=(8, 8, 8, 8))
RESNET50_FEATURES = 23_508_032
"""torchvision resnet50 parameters without the fc layer (25,557,032 - 2,049,000)."""


def _covid_batch(shared_data: Path, size: int, n: int = 2) -> torch.Tensor:
    images = [read_grey_unit(shared_data / "covid_semiseg" / "train" / "images" / f"{i}.jpg") for i in range(n)]
    return torch.cat([torch.nn.functional.interpolate(torch.from_numpy(im)[None, None], size=(size, size),
                                                      mode="bilinear") for im in images])


@pytest.fixture(scope="module")
def lidc_export_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lidc")
    export_lidc(shared_data / "lidc_slices", out)
    return out


def test_paper_configuration_shapes_and_backbone(shared_data: Path) -> None:
    net = NCoVSegNet()
    backbone = sum(p.numel() for p in net.backbone.parameters())
    # ResNet-50 features with a 1-channel 7x7 stem (-2*49*64) plus 16 ECA Conv1d(k=3).
    assert backbone == RESNET50_FEATURES - 2 * 49 * 64 + 16 * 3
    assert net.backbone.out_channels == (256, 512, 1024, 2048)
    assert len(net.gca4.branches) == 3 and len(net.gca3.branches) == 4
    x = _covid_batch(shared_data, 64)
    with torch.no_grad():
        maps = net.train()(x)
        final = net.eval()(x)
    assert len(maps) == 4 and all(m.shape == (2, 1, 64, 64) for m in maps)
    assert final.shape == (2, 1, 64, 64)


def test_light_configuration_final_map_last_and_multiclass(shared_data: Path) -> None:
    torch.manual_seed(0)
    net = NCoVSegNet(**LIGHT)
    assert 1.5e6 < sum(p.numel() for p in net.parameters()) < 2.1e6
    x = _covid_batch(shared_data, 96)
    with torch.no_grad():
        maps = net.train()(x)
        final = net.eval()(x)
    assert [m.shape for m in maps] == [(2, 1, 96, 96)] * 4 and final.shape == (2, 1, 96, 96)
    multi = NCoVSegNet(out_channels=3, **LIGHT)
    with torch.no_grad():
        assert [m.shape for m in multi.train()(x)] == [(2, 3, 96, 96)] * 4
        assert multi.eval()(x).shape == (2, 3, 96, 96)


def test_eval_output_is_last_training_map(shared_data: Path) -> None:
    torch.manual_seed(0)
    net = NCoVSegNet(**TINY).eval()
    x = _covid_batch(shared_data, 64)
    with torch.no_grad():
        final = net(x)
        net.train()
        for module in net.modules():   # freeze BN statistics so both modes compute the same map
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
        maps = net(x)
    assert torch.equal(maps[-1], final)
    assert not torch.equal(maps[0], final)


def test_size_not_divisible_by_32_is_rejected() -> None:
    with pytest.raises(InputError, match="divisible by 32"):
        NCoVSegNet(**TINY).eval()(torch.zeros(1, 1, 80, 64))


def test_boundary_weights_by_hand() -> None:
    target = torch.zeros(1, 1, 64, 64)
    target[0, 0, 32, 32] = 1
    w = boundary_weights(target)[0, 0]
    assert w[32, 32].item() == pytest.approx(1 + 5 * (1 - 1 / 961))       # 31x31 window
    assert w[32, 33].item() == pytest.approx(1 + 5 / 961)
    assert w[32, 48].item() == pytest.approx(1.0)                         # outside the window
    assert w[0, 0].item() == pytest.approx(1.0)


def test_weighted_bce_dice_by_hand_and_edge_emphasis() -> None:
    target = torch.zeros(1, 1, 64, 64)
    target[..., 20:44, 20:44] = 1
    w = boundary_weights(target).numpy()
    g = target.numpy()
    expected = math.log(2) + 1 - (2 * (w * 0.5 * g).sum() + 1) / ((w * (0.5 + g)).sum() + 1)
    assert weighted_bce_dice_loss(torch.zeros_like(target), target).item() == pytest.approx(expected, rel=1e-5)
    # The same 16 wrong pixels cost more at the lesion boundary than deep in the background:
    # the weighting is applied (the official code's reduce='none' slip would make them equal).
    good = torch.where(target > 0, 8.0, -8.0)
    at_edge, far = good.clone(), good.clone()
    at_edge[..., 16:20, 28:32] = 8.0
    far[..., 0:4, 0:4] = 8.0
    assert weighted_bce_dice_loss(at_edge, target) > weighted_bce_dice_loss(far, target)


def test_lidc_export_patient_split_and_domain(shared_data: Path, lidc_export_dir: Path) -> None:
    split = json.loads((lidc_export_dir / "split.json").read_text())["patients"]
    assert not set(split["train"]) & set(split["val"])
    train = sorted((lidc_export_dir / "train" / "images").glob("*.png"))
    val = sorted((lidc_export_dir / "val" / "images").glob("*.png"))
    assert {p.name[:4] for p in train} == set(split["train"])
    assert {p.name[:4] for p in val} == set(split["val"])
    data = np.load(shared_data / "lidc_slices" / "lidc_108slices.npz")
    assert len(train) + len(val) == len(data["images"])
    index = 40
    name = str(data["image_names"][index]).removesuffix(".npy")
    folder = lidc_export_dir / ("val" if name[:4] in split["val"] else "train")
    image = np.asarray(PILImage.open(folder / "images" / f"{name}.png"))
    mask = np.asarray(PILImage.open(folder / "masks" / f"{name}.png"))
    assert image.dtype == np.uint8 and image.shape == mask.shape
    assert set(np.unique(mask)) <= {0, 255} and (mask == 255).sum() == data["masks"][index].sum()
    z = data["images"][index].astype(np.float32)
    top, left, bottom, right = lung_crop_box(z)
    lungs = z[top:bottom, left:right] != 0
    # covid_semiseg window [-1150, 250] HU: parenchyma (~-885 HU) ~ 48, soft tissue (~43 HU) ~ 217.
    assert 30 < np.median(image[lungs]) < 70
    assert 205 < np.median(image[~lungs]) < 230


def test_export_rejects_unknown_patient(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="proper subset"):
        export_lidc(shared_data / "lidc_slices", tmp_path, val_patients=("0099",))


def test_stage1_checkpoint_chains_into_multiclass_head(shared_data: Path, lidc_export_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    arch = catalog.Architecture("lunglesion.networks.ncovsegnet:NCoVSegNet", dict(in_channels=1, **TINY),
                                loss="wbce_dice", size=64, lr=1e-3)
    monkeypatch.setitem(catalog.ARCHITECTURES, "ncovsegnet-test", arch)
    stage1 = SupervisedTrainer(TrainConfig(model="ncovsegnet-test", data=str(lidc_export_dir / "train"),
                                           out_dir=str(tmp_path / "stage1"), epochs=1, threads=1), log=lambda _: None)
    stage1.fit()
    stage2 = SupervisedTrainer(TrainConfig(model="ncovsegnet-test", data=str(shared_data / "covid_semiseg" / "train"),
                                           out_dir=str(tmp_path / "stage2"), epochs=1, multiclass=True, threads=1),
                               log=lambda _: None)
    before = {k: v.clone() for k, v in stage2.network.state_dict().items()}
    matched = stage2.init_from(tmp_path / "stage1" / "checkpoint.pt")
    after, trained = stage2.network.state_dict(), stage1.network.state_dict()
    heads = [k for k in after if k.startswith("head")]
    assert len(heads) == 8 and matched == len(after) - len(heads)
    for k in heads:                                   # 1-class heads cannot load into 3-class heads
        assert after[k].shape[0] == 3 and torch.equal(after[k], before[k])
    assert torch.equal(after["backbone.layer4.0.conv2.weight"], trained["backbone.layer4.0.conv2.weight"])
    assert torch.equal(after["daf1.up.weight"], trained["daf1.up.weight"])
    probs = predict_slices(stage2.network, [s.image for s in stage2.val], 64, multiclass=True)
    for p, s in zip(probs, stage2.val):
        assert p.shape == (3, *s.image.shape)
        np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-4)
