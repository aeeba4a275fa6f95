"""Resources/Scripts/batch_segment.py under plain Python with slicer-core, on real files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "Resources" / "Scripts" / "batch_segment.py"
sys.path.insert(0, str(SCRIPT.parent))

from batch_segment import case_name, find_cases  # noqa: E402


def run_batch(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture()
def cohort(shared_data, tmp_path):
    """A folder with a NRRD CT, a DICOM series folder and a corrupt NIfTI."""
    root = tmp_path / "cohort"
    (root / "sub").mkdir(parents=True)
    (root / "lung1.nrrd").symlink_to(shared_data / "chest_ct" / "lung1_image.nrrd")
    (root / "sub" / "series").symlink_to(shared_data / "dicom" / "totalseg_ct_series", target_is_directory=True)
    (root / "broken.nii.gz").write_bytes(b"not a nifti file")
    return root


def test_find_cases_finds_files_and_dicom_series(cohort):
    cases = find_cases(cohort)
    assert sorted(case_name(c, cohort) for c in cases) == ["broken", "lung1", "sub_series"]


def test_bad_case_is_reported_and_exit_status_is_nonzero(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.nrrd").write_text("NRRD0004\ntype: nonsense\n")
    out = tmp_path / "out"
    result = run_batch("--input", str(tmp_path / "in"), "--output", str(out), "--device", "cpu")
    assert result.returncode == 1, result.stderr
    assert "error: case broken" in result.stderr
    rows = list(csv.DictReader((out / "statistics.csv").open()))
    assert [(r["case"], r["status"]) for r in rows] == [("broken", "error")] and rows[0]["message"]
    assert not list(out.glob("*.seg.nrrd"))


def test_missing_input_and_bad_arguments_exit_nonzero(tmp_path):
    result = run_batch("--input", str(tmp_path / "nothing"), "--output", str(tmp_path / "out"))
    assert result.returncode == 1 and "input not found" in result.stderr
    assert run_batch("--output", str(tmp_path)).returncode == 2


@pytest.mark.slow
def test_needs_model_cohort_with_one_bad_case(cohort, tmp_path, shared_data):
    out = tmp_path / "out"
    result = run_batch("--input", str(cohort), "--output", str(out), "--device", "cpu")
    assert result.returncode == 1, result.stderr  # the broken case fails, the others succeed
    rows = {r["case"]: r for r in csv.DictReader((out / "statistics.csv").open())}
    assert {k: r["status"] for k, r in rows.items()} == {"broken": "error", "lung1": "ok", "sub_series": "ok"}
    for case, source in (("lung1", shared_data / "chest_ct" / "lung1_image.nrrd"),):
        seg = sitk.ReadImage(str(out / f"{case}.seg.nrrd"))
        ct = sitk.ReadImage(str(source))
        assert seg.GetSize()[:3] == ct.GetSize()
        np.testing.assert_allclose(seg.GetOrigin(), ct.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(seg.GetSpacing(), ct.GetSpacing(), atol=1e-6)
        np.testing.assert_allclose(seg.GetDirection(), ct.GetDirection(), atol=1e-6)
    assert (out / "sub_series.seg.nrrd").is_file()
