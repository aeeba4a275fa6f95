"""DSNet: architecture, LIDC patient split, input convention, resumable training, click-to-segment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lunglesion.data.lidc import load_lidc_slices, normalize_patch, split_by_patient
from lunglesion.errors import InputError
from lunglesion.inference.nodule import predict_patch, seed_to_index, segment_nodule_at
from lunglesion.metrics import dice
from lunglesion.networks.dsnet import LIGHT_CONFIG, PAPER_CONFIG, DSNet, PatchDiscriminator

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def records(shared_data):
    return load_lidc_slices(shared_data / "lidc_slices")


def test_dsnet_outputs_twice_the_input_and_paper_config_fits_25_mb():
    net = DSNet(**LIGHT_CONFIG)
    logits, sr = net(torch.rand(2, 1, 48, 48))
    assert logits.shape == sr.shape == (2, 1, 96, 96)
    assert PatchDiscriminator(16)(sr, torch.sigmoid(logits)).shape[:2] == (2, 1)
    paper_params = sum(p.numel() for p in DSNet(**PAPER_CONFIG).parameters())
    assert paper_params * 2 < 25e6  # fp16


def test_lidc_split_is_by_patient(records):
    assert {r.patient for r in records} == {f"000{i}" for i in range(1, 9)}
    train, val = split_by_patient(records, ("0005", "0006"))
    assert {r.patient for r in train}.isdisjoint({r.patient for r in val})
    assert len(train) + len(val) == len(records)
    assert all(r.soft.shape == r.mask.shape and ((r.soft >= 0.5) == r.mask).mean() > 0.99 for r in val)
    with pytest.raises(InputError):
        split_by_patient(records, tuple(f"000{i}" for i in range(1, 9)))


def test_input_convention_does_not_depend_on_storage(lung1):
    """The same ROI as HU (lung-windowed) and as an 8-bit lung-window PNG gives the same input."""
    hu = np.clip(lung1[0].array[33, 320:400, 180:260].astype(np.float32), -1000, 400)
    png = np.round((hu + 1000) / 1400 * 255).astype(np.uint8)
    assert np.abs(normalize_patch(hu) - normalize_patch(png / 255.0)).max() < 0.02


def test_predict_patch_keeps_roi_size():
    net = DSNet(**LIGHT_CONFIG).eval()
    prob = predict_patch(net, np.random.default_rng(0).random((73, 73)), input_size=48)
    assert prob.shape == (73, 73) and prob.min() >= 0 and prob.max() <= 1


def test_training_resumes(shared_data, tmp_path):
    from lunglesion.training.dsnet_trainer import DSNetTrainConfig, train

    cfg = DSNetTrainConfig(network={"sr_channels": 4, "sr_blocks": 1, "base": 4, "depth": 2, "scale": 2},
                           input_size=32, batch_size=2, iterations_per_epoch=1, max_epochs=1,
                           discriminator_base=4)
    first = train(cfg, shared_data / "lidc_slices", tmp_path)
    cfg.max_epochs = 2
    second = train(cfg, shared_data / "lidc_slices", tmp_path)
    assert (first["epochs"], second["epochs"]) == (1, 2)
    assert len((tmp_path / "history.csv").read_text().strip().splitlines()) == 3
    assert (tmp_path / "best.pt").exists() and (tmp_path / "curves.png").exists()


def test_learning_rate_decays_by_cosine_from_the_given_epoch():
    from lunglesion.training.dsnet_trainer import DSNetTrainConfig, learning_rate

    cfg = DSNetTrainConfig(lr=1e-3, decay_from_epoch=10, max_epochs=20)
    assert learning_rate(cfg, 0) == learning_rate(cfg, 10) == 1e-3
    assert learning_rate(cfg, 15) == pytest.approx(5e-4)
    assert learning_rate(cfg, 20) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(DSNetTrainConfig(lr=1e-3), 500) == 1e-3


def test_seed_in_ras_and_ijk_agree(lung1):
    image, label = lung1
    k, j, i = np.round(np.argwhere(label.array > 0).mean(0)).astype(int)
    lps = image.index_to_physical(np.array([i, j, k], dtype=float))
    ras = (-lps[0], -lps[1], lps[2])
    np.testing.assert_array_equal(seed_to_index(image, ras, "ras"), seed_to_index(image, (i, j, k), "ijk"))
    with pytest.raises(InputError, match="outside"):
        seed_to_index(image, (i, j, 10_000), "ijk")


def test_click_to_segment_lung1_nodule(lung1):
    image, label = lung1
    k, j, i = np.round(np.argwhere(label.array > 0).mean(0)).astype(int)
    soft, hard = segment_nodule_at(image, (i, j, k), "ijk", model="dsnet")
    assert soft.same_geometry(image) and hard.same_geometry(image)
    truth = label.array > 0
    score = dice(hard.array, truth)
    assert score >= 0.6, f"Dice {score:.3f} against lung1_label"
