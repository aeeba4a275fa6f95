"""Real short trainings on COVID-SemiSeg slices: the loss falls, resume is exact, export loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lunglesion.errors import LungLesionError, ModelFileError
from lunglesion.registry import get_entry, load_model
from lunglesion.training.export import register_run
from lunglesion.training.supervised import SupervisedTrainer, TrainConfig


@pytest.fixture(scope="module")
def small_set(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten real labelled slices (images, masks, edges) in the training layout."""
    root = tmp_path_factory.mktemp("covid10")
    source = shared_data / "covid_semiseg" / "train"
    for folder in ("images", "masks", "edges"):
        (root / folder).mkdir()
        for path in sorted((source / folder).iterdir())[:10]:
            shutil.copy(path, root / folder / path.name)
    return root


def _config(data: Path, out: Path, epochs: int) -> TrainConfig:
    return TrainConfig(model="bsnet-light", data=str(data), out_dir=str(out), epochs=epochs, batch_size=4,
                       size=160, multiscale=(1.0,), val_every=100, seed=3)


def test_short_training_lowers_the_loss(small_set: Path, tmp_path: Path) -> None:
    trainer = SupervisedTrainer(_config(small_set, tmp_path, 6), log=lambda m: None)
    first = trainer.train_epoch()
    for _ in range(5):
        last = trainer.train_epoch()
    assert last < 0.9 * first


def test_resume_continues_exactly(small_set: Path, tmp_path: Path) -> None:
    straight = SupervisedTrainer(_config(small_set, tmp_path / "a", 2), log=lambda m: None)
    straight.fit()
    interrupted = SupervisedTrainer(_config(small_set, tmp_path / "b", 2), log=lambda m: None)
    interrupted.cfg.epochs = 1
    interrupted.fit()
    resumed = SupervisedTrainer(_config(small_set, tmp_path / "b", 2), log=lambda m: None)
    resumed.resume()
    assert resumed.start_epoch == 2
    resumed.fit()
    a, b = straight.network.state_dict(), resumed.network.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    rows = (tmp_path / "b" / "history.csv").read_text().splitlines()
    assert len(rows) == 3 and (tmp_path / "b" / "curves.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "b" / "val_metrics.json").read_text())
    assert 0.0 <= metrics["dice"] <= 1.0 and "s_alpha" in metrics
    finished = SupervisedTrainer(_config(small_set, tmp_path / "b", 2), log=lambda m: None)
    finished.resume()
    assert finished.fit() == metrics  # resuming a finished run trains nothing and keeps its metrics
    assert json.loads((tmp_path / "b" / "val_metrics.json").read_text()) == metrics
    assert len((tmp_path / "b" / "history.csv").read_text().splitlines()) == 3


def test_export_registers_and_checksum_guards_the_weights(small_set: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    SupervisedTrainer(_config(small_set, run, 1), log=lambda m: None).fit()
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("LUNGLESION_MODELS_DIR", str(models))
    register_run(run, "tiny", "covid-infection-2d", "test model", command="pytest")
    network, entry = load_model("tiny")
    assert entry.input["size"] == 160 and not network.training
    assert (models / "tiny.md").read_text().startswith("# Model card")
    weights = models / get_entry("tiny").weights
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelFileError, match="checksum"):
        load_model("tiny")
    entry = register_run(run, "tiny-tta", "covid-infection-2d", "test model", command="pytest", flip_tta=True)
    assert entry.input["flip_tta"] and list(entry.metrics)[0] == "dice_flip_tta"
    assert 0.0 <= entry.metrics["dice_flip_tta"] <= 1.0
    assert f"Dice {entry.metrics['dice_flip_tta']:.4f}; without it" in (models / "tiny-tta.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where no GPU exists")
def test_training_on_cuda_without_a_gpu_says_so(small_set: Path, tmp_path: Path) -> None:
    cfg = _config(small_set, tmp_path / "gpu", 1)
    cfg.device = "cuda"
    with pytest.raises(LungLesionError, match="no CUDA GPU is available"):
        SupervisedTrainer(cfg, log=lambda m: None)


def test_training_on_too_few_slices_says_so(small_set: Path, tmp_path: Path) -> None:
    two = tmp_path / "two"
    for folder in ("images", "masks", "edges"):
        (two / folder).mkdir(parents=True)
        for path in sorted((small_set / folder).iterdir())[:2]:
            shutil.copy(path, two / folder / path.name)
    with pytest.raises(LungLesionError, match="1 training slice\\(s\\) after the validation split"):
        SupervisedTrainer(_config(two, tmp_path / "out", 1), log=lambda m: None)
