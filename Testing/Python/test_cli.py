"""The command line on real data: segment, evaluate, models, and one clear line for bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lunglesion.cli.main import main
from lunglesion.registry import default_model_name, list_models

SAMPLE_CT = Path(__file__).resolve().parents[2] / "Resources" / "SampleData" / "lung1_chest_ct.nrrd"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_models_lists_the_default_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["models"], capsys)
    assert code == 0
    default = default_model_name()
    assert any(line.startswith(default + "*") for line in out.splitlines())
    assert {"bsnet-light", "unet"} <= {e.name for e in list_models()}


def test_segment_sample_ct_keeps_geometry_and_reports_lungs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lung1.seg.nrrd"
    prob = tmp_path / "lung1_prob.nrrd"
    overlay = tmp_path / "lung1.png"
    code, stdout, _ = _run(["segment", str(SAMPLE_CT), "-o", str(out), "--device", "cpu", "--prob", str(prob),
                            "--overlay", str(overlay)], capsys)
    assert code == 0
    reference = sitk.ReadImage(str(SAMPLE_CT))
    for path in (out, prob):
        written = sitk.ReadImage(str(path))
        assert written.GetSize()[:3] == reference.GetSize()
        assert np.allclose(written.GetSpacing()[:3], reference.GetSpacing(), atol=1e-6)
        assert np.allclose(written.GetOrigin()[:3], reference.GetOrigin(), atol=1e-6)
        assert np.allclose(np.array(written.GetDirection()).reshape(written.GetDimension(), -1)[:3, :3],
                           np.array(reference.GetDirection()).reshape(3, 3), atol=1e-6)
    probability = sitk.GetArrayFromImage(sitk.ReadImage(str(prob)))
    assert 0.0 <= probability.min() and probability.max() <= 1.0
    assert "% of right lung" in stdout and "% of left lung" in stdout
    assert overlay.stat().st_size > 10_000


def test_evaluate_prints_dice_last(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "set"
    source = shared_data / "covid_semiseg" / "train"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
        for stem in ("0", "5", "17", "33"):
            src = next((source / folder).glob(stem + ".*"))
            shutil.copy(src, data / folder / src.name)
    code, out, _ = _run(["evaluate", "--model", default_model_name(), "--data", str(data), "--device", "cpu",
                         "--report", str(tmp_path / "report")], capsys)
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("dice=") and len(last.split("=")[1]) == 6
    assert float(last.split("=")[1]) > 0.3  # slices the model saw in training: a floor, not a score
    assert (tmp_path / "report.json").exists() and (tmp_path / "report.csv").exists()


@pytest.mark.parametrize("case", ["missing", "corrupt", "mr", "unknown_model", "untrained_architecture", "empty",
                                  "2d_to_volume_eval"])
def test_bad_input_exits_2_with_one_line_and_no_output(case: str, tmp_path: Path, shared_data: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.seg.nrrd"
    args = ["segment", str(SAMPLE_CT), "-o", str(out), "--device", "cpu"]
    expected: tuple[str, ...]
    if case == "missing":
        args[1], expected = str(tmp_path / "nope.nrrd"), ("not found",)
    elif case == "corrupt":
        bad = tmp_path / "corrupt.nii.gz"
        bad.write_bytes(b"\x1f\x8b this is not a volume")
        args[1], expected = str(bad), ("corrupt.nii.gz",)
    elif case == "mr":
        args[1], expected = str(shared_data / "mr" / "brain1_image.nrrd"), ("CT",)
    elif case == "unknown_model":
        args += ["--model", "no-such-net"]
        expected = ("unknown model 'no-such-net'",)
    elif case == "untrained_architecture":
        args += ["--model", "bsnet"]
        expected = ("'bsnet' is an architecture with no trained weights", "bsnet.md", "bsnet-light")
    elif case == "empty":
        empty = tmp_path / "empty.nrrd"
        sitk.WriteImage(sitk.Image(8, 8, 4, sitk.sitkInt16), str(empty))
        args[1], expected = str(empty), ("empty",)
    else:  # volume evaluation (HD95/ASD in mm) needs a 3D volume
        train = shared_data / "covid_semiseg" / "train"
        args = ["evaluate", "--model", "unet", "--image", str(train / "images" / "0.jpg"),
                "--label", str(train / "masks" / "0.png"), "--report", str(out)]
        expected = ("3D",)
    code, _, err = _run(args, capsys)
    _assert_one_error_line(code, err, *expected)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_existing_output_survives_a_failed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keep.seg.nrrd"
    out.write_bytes(b"a good earlier result")
    code, _, _ = _run(["segment", str(SAMPLE_CT), "-o", str(out), "--model", "no-such-net"], capsys)
    assert code == 2 and out.read_bytes() == b"a good earlier result"


def test_console_script_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "lunglesion.cli.main", "models"], capture_output=True, text=True)
    assert done.returncode == 0 and "bsnet-light" in done.stdout


def test_multiclass_segment_writes_ggo_and_consolidation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lunglesion.io import read_labelmap, read_segment_names
    from lunglesion.lungmask import segment_lungs
    from lunglesion.io import read_image

    out = tmp_path / "mc.seg.nrrd"
    code, stdout, _ = _run(["segment", str(SAMPLE_CT), "-o", str(out), "--device", "cpu", "--multiclass",
                            "--model", "ncovsegnet-light-multiclass"], capsys)
    assert code == 0
    assert read_segment_names(out) == ["ground-glass opacity", "consolidation"]
    labels = read_labelmap(out).array
    lungs = segment_lungs(read_image(SAMPLE_CT)).array > 0
    assert set(np.unique(labels)) <= {0, 1, 2} and not (labels[~lungs] > 0).any()
    ggo_ml = float(stdout.split("ground-glass opacity: ")[1].split(" mL")[0])
    voxel_ml = np.prod(sitk.ReadImage(str(SAMPLE_CT)).GetSpacing()) / 1000
    assert ggo_ml == pytest.approx((labels == 1).sum() * voxel_ml, abs=0.01)


def test_evaluate_multiclass_reports_each_class(tmp_path: Path, shared_data: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mc"
    source = shared_data / "covid_semiseg" / "train"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for stem in ("2", "3", "4"):  # validation slices of the registered split
        shutil.copy(source / "images" / f"{stem}.jpg", data / "images")
        shutil.copy(source / "multiclass" / f"{stem}.png", data / "masks")
    code, out, _ = _run(["evaluate", "--model", "ncovsegnet-light-multiclass", "--multiclass", "--data", str(data),
                         "--device", "cpu", "--report", str(tmp_path / "r")], capsys)
    lines = out.strip().splitlines()
    assert code == 0 and any(l.startswith("ground-glass opacity") for l in lines)
    assert any(l.startswith("consolidation") for l in lines)
    per_class = [float(l.split()[-8]) for l in lines if l.startswith(("ground-glass opacity", "consolidation"))]
    assert lines[-1] == f"dice={np.mean(per_class):.4f}"
