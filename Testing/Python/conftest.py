"""Shared fixtures: the real data in ../shared/data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("LUNGLESION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real CT/MR data; the suite needs it (CI lays it beside the checkout)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data folder not found: {SHARED_DATA} (set LUNGLESION_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def lung1(shared_data: Path):
    """The chest_ct lung1 volume (HU) and its nodule label map."""
    from lunglesion.io import read_image, read_labelmap

    return (read_image(shared_data / "chest_ct" / "lung1_image.nrrd"),
            read_labelmap(shared_data / "chest_ct" / "lung1_label.nrrd"))
