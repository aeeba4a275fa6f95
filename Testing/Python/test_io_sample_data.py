"""The bundled sample CT: small, attributed, and exactly the source sub-volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from io_asserts import assert_same_as_sitk
from lunglesion.io import read_image, read_labelmap
from lunglesion.io.validation import require_3d, require_ct

FIRST_SLICE = 18  # see Resources/SampleData/ATTRIBUTION.md


def test_sample_is_small_and_attributed(repo_root: Path) -> None:
    folder = repo_root / "Resources" / "SampleData"
    for name in ("lung1_chest_ct.nrrd", "lung1_nodule_label.nrrd"):
        assert (folder / name).stat().st_size <= 8 * 1000 * 1000
    attribution = (folder / "ATTRIBUTION.md").read_text()
    assert "BSD-3-Clause" in attribution and "Harvard Medical School" in attribution


def test_sample_equals_source_sub_volume(repo_root: Path, shared_data: Path) -> None:
    folder = repo_root / "Resources" / "SampleData"
    ct = read_image(folder / "lung1_chest_ct.nrrd")
    label = read_labelmap(folder / "lung1_nodule_label.nrrd")
    source_ct = sitk.ReadImage(str(shared_data / "chest_ct" / "lung1_image.nrrd"))
    source_label = sitk.ReadImage(str(shared_data / "chest_ct" / "lung1_label.nrrd"))
    depth = ct.array.shape[0]
    assert_same_as_sitk(ct, source_ct[:, :, FIRST_SLICE:FIRST_SLICE + depth])
    assert_same_as_sitk(label, source_label[:, :, FIRST_SLICE:FIRST_SLICE + depth])
    # origin moved by FIRST_SLICE slices along the slice axis
    np.testing.assert_allclose(np.asarray(ct.origin) - source_ct.GetOrigin(),
                               np.asarray(source_ct.GetDirection()).reshape(3, 3)[:, 2]
                               * source_ct.GetSpacing()[2] * FIRST_SLICE, atol=1e-6)
    # the whole nodule is in the sample, and the sample is a usable CT volume
    assert int(label.array.sum()) == int(sitk.GetArrayFromImage(source_label).sum()) > 0
    require_ct(require_3d(ct))
