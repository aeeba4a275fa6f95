"""Bad input gives one clear lunglesion error; failed writes leave existing files untouched."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image
from lunglesion.io import read_image, read_labelmap, write_image, write_labelmap, write_seg_nrrd
from lunglesion.terminology import NODULE


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found: .*nothing.nrrd"):
        read_image(tmp_path / "nothing.nrrd")


@pytest.mark.parametrize("name", ["broken.nrrd", "broken.nii.gz", "broken.png", "broken.mha", "broken.dcm"])
def test_corrupt_file(shared_data: Path, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes((shared_data / "README.md").read_bytes()[:500])
    with pytest.raises(InputError, match=f"could not read .*{name} as an image"):
        read_image(path)


def test_truncated_nifti(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.nii.gz"
    path.write_bytes((shared_data / "totalseg" / "ct_sm.nii.gz").read_bytes()[:20000])
    with pytest.raises(InputError, match="could not read .* truncated"):
        read_image(path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.nrrd").touch()
    with pytest.raises(EmptyInputError, match="empty"):
        read_labelmap(tmp_path / "empty.nrrd")


def test_zero_size_volume(tmp_path: Path) -> None:
    path = tmp_path / "zero.nhdr"
    path.write_text("NRRD0004\ntype: short\ndimension: 3\nsizes: 4 4 0\nencoding: raw\nendian: little\n"
                    "data file: zero.raw\n")
    (tmp_path / "zero.raw").touch()
    with pytest.raises(InputError):  # EmptyInputError where ITK accepts size 0, else "could not read"
        read_image(path)


def test_non_integer_labels(shared_data: Path, tmp_path: Path) -> None:
    ct = read_image(shared_data / "totalseg" / "ct_sm.nii.gz")
    soft = ct.with_array(ct.array / 1000.0)
    with pytest.raises(InputError, match="non-integer"):
        write_labelmap(soft, tmp_path / "x.nrrd")
    with pytest.raises(InputError, match="0..65535"):
        write_labelmap(ct, tmp_path / "x.nrrd")  # CT values (negative) are not labels
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_existing_file(shared_data: Path, tmp_path: Path) -> None:
    good = tmp_path / "result.png"
    shutil.copy(next((shared_data / "covid_semiseg" / "train" / "masks").glob("*.png")), good)
    before = good.read_bytes()
    volume = read_image(shared_data / "totalseg" / "ct_sm.nii.gz")
    with pytest.raises(InputError, match="could not write"):
        write_image(volume.with_array(volume.array.astype(np.float64)), good)  # no float 3D PNG
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]


def test_failed_seg_write_keeps_existing_file(shared_data: Path, tmp_path: Path) -> None:
    label = read_labelmap(shared_data / "chest_ct" / "lung1_label.nrrd")
    target = tmp_path / "nodule.seg.nrrd"
    write_seg_nrrd(label, target, [NODULE])
    before = target.read_bytes()
    bad = label.with_array(label.array * 2)  # value 2 is described by no segment
    with pytest.raises(InputError):
        write_seg_nrrd(bad, target, [NODULE])
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodule.seg.nrrd"]


def test_mhd_is_refused_for_writing(tmp_path: Path) -> None:
    image = Image(array=np.ones((2, 3, 4), np.int16), spacing=(1, 1, 1), origin=(0, 0, 0), direction=np.eye(3))
    with pytest.raises(InputError, match="atomically"):
        write_image(image, tmp_path / "x.mhd")


def test_truncated_uncompressed_nifti(shared_data: Path, tmp_path: Path) -> None:
    """ITK zero-fills a truncated .nii without complaint; we must not."""
    raw = gzip.decompress((shared_data / "totalseg" / "ct_sm.nii.gz").read_bytes())
    (tmp_path / "whole.nii").write_bytes(raw)
    assert read_image(tmp_path / "whole.nii").array.shape == (30, 101, 122)
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) - 1000])
    with pytest.raises(InputError, match="truncated"):
        read_image(tmp_path / "cut.nii")
