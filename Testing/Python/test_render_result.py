"""Resources/Scripts/render_result.py on the bundled sample CT with its nodule label (no model)."""

from __future__ import annotations

import ctypes.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from lunglesion.inference.pipeline import lesion_statistics
from lunglesion.io import read_image, read_labelmap, write_labelmap
from lunglesion.io.seg_nrrd import write_seg_nrrd
from lunglesion.lungmask import segment_lungs
from lunglesion.terminology import NODULE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "Resources" / "Scripts" / "render_result.py"
SAMPLE = ROOT / "Resources" / "SampleData"
FIGURE_SIZE_PX = (1600, 800)  # render_result.FIGURE_SIZE_PX (importing the script would load VTK here)
NODULE_RGB = np.round(np.asarray(NODULE.color) * 255)
PANELS = slice(0, 700)  # pixel rows of the views; the legend and caption lie below


def render(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", **env_vars)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.fixture(scope="module")
def nodule(tmp_path_factory) -> tuple[Path, float]:
    """The sample's nodule label as a .seg.nrrd, and its volume in mL."""
    label = read_labelmap(SAMPLE / "lung1_nodule_label.nrrd")
    path = tmp_path_factory.mktemp("seg") / "nodule.seg.nrrd"
    write_seg_nrrd(label, path, [NODULE])
    return path, float((label.array == NODULE.label_value).sum() * label.voxel_volume_mm3 / 1000.0)


def picture(path: Path) -> np.ndarray:
    """RGB pixels of a PNG that has the figure's size and is not blank."""
    assert path.is_file()
    pixels = np.asarray(PILImage.open(path).convert("RGB")).astype(np.float64)
    assert pixels.shape == (FIGURE_SIZE_PX[1], FIGURE_SIZE_PX[0], 3)
    assert pixels.std() > 20  # a blank or single-colour picture fails
    return pixels


def nodule_outline_mask(pixels: np.ndarray) -> np.ndarray:
    """Pixels drawn in the nodule's exact terminology colour (its outline on a slice)."""
    return np.abs(pixels - NODULE_RGB).max(axis=2) <= 6


def nodule_outline_pixels(pixels: np.ndarray) -> int:
    return int(nodule_outline_mask(pixels).sum())


def shaded_nodule_mask(pixels: np.ndarray) -> np.ndarray:
    """Cyan-blue pixels of the lit nodule surface (background, lungs and CT are not cyan)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return (b - r > 90) & (g - r > 60) & (b > 120)


def caption_volume(stdout: str) -> float:
    match = re.search(r"nodule (\d+\.\d+) mL", stdout)
    assert match, stdout
    return float(match.group(1))


def caption_percentages(stdout: str) -> tuple[float, float, float]:
    """Share of both lungs, right lung and left lung printed for the nodule."""
    match = re.search(r"mL, (\d+\.\d+) % of the lungs \(right (\d+\.\d+) %, left (\d+\.\d+) %\)", stdout)
    assert match, stdout
    return float(match.group(1)), float(match.group(2)), float(match.group(3))


def test_slice_and_3d_view_with_lungs(nodule, tmp_path):
    seg, volume_ml = nodule
    output = tmp_path / "result.png"
    result = render("--seg", str(seg), "--auto-lungs", "--model", "reference label", "-o", str(output))
    assert result.returncode == 0, result.stderr
    pixels = picture(output)
    half = FIGURE_SIZE_PX[0] // 2
    assert nodule_outline_pixels(pixels[PANELS, :half]) > 50  # axial slice through the nodule
    # Radiological layout: the right-lung nodule lies left of the axial panel's centre (rows above the zoom inset).
    assert np.nonzero(nodule_outline_mask(pixels[:470, :half]))[1].mean() < half / 2
    assert caption_volume(result.stdout) == pytest.approx(volume_ml, abs=0.005)
    both, right, left = caption_percentages(result.stdout)
    assert 0 < both < right < 1 and left == 0  # the sample's nodule lies in the right lung
    if "3D view unavailable" in result.stdout:
        pytest.skip(f"offscreen OpenGL unavailable, 3D panel not checked: {result.stdout.splitlines()[0]}")
    assert "3D view rendered offscreen by VTK" in result.stdout
    surface = shaded_nodule_mask(pixels[PANELS, half:])
    assert surface.sum() > 100  # the opaque nodule surface
    assert np.nonzero(surface)[1].mean() < half / 2  # anterior view: patient right on the screen's left


def test_orthogonal_slices_with_a_lung_labelmap(nodule, tmp_path):
    seg, volume_ml = nodule
    lungs = segment_lungs(read_image(SAMPLE / "lung1_chest_ct.nrrd"))
    write_labelmap(lungs, tmp_path / "lungs.nrrd")
    expected = lesion_statistics(read_labelmap(SAMPLE / "lung1_nodule_label.nrrd"), [NODULE], lungs)[0]
    output = tmp_path / "slices.png"
    result = render("--seg", str(seg), "--lungs", str(tmp_path / "lungs.nrrd"), "--no-3d", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert "coronal and sagittal slices" in result.stdout
    pixels = picture(output)
    a, b = (int(f * FIGURE_SIZE_PX[0]) for f in (0.37, 0.735))  # panel borders (width ratios 1 : 1 : 0.7)
    for panel in (pixels[PANELS, :a], pixels[PANELS, a:b], pixels[PANELS, b:]):
        assert nodule_outline_pixels(panel) > 5  # axial, coronal and sagittal all cut the nodule
    assert caption_volume(result.stdout) == pytest.approx(volume_ml, abs=0.005)
    assert caption_percentages(result.stdout) == pytest.approx(
        (expected["percent_lungs"], expected["percent_right_lung"], expected["percent_left_lung"]), abs=0.005)


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is not None,
                    reason="libOSMesa is installed: vtkOSOpenGLRenderWindow works, nothing to fall back from")
def test_without_usable_offscreen_opengl_falls_back_to_slices(nodule, tmp_path):
    # Without libOSMesa this window class segfaults in Render(); the script must survive it.
    output = tmp_path / "fallback.png"
    result = render("--seg", str(nodule[0]), "-o", str(output),
                    VTK_DEFAULT_OPENGL_WINDOW="vtkOSOpenGLRenderWindow")
    assert result.returncode == 0, result.stderr
    assert "3D view unavailable: vtkOSOpenGLRenderWindow has no usable offscreen OpenGL" in result.stdout
    assert "% of the lungs" not in result.stdout  # no lungs given
    picture(output)


def test_missing_segmentation_is_a_clear_error(tmp_path):
    output = tmp_path / "none.png"
    result = render("--seg", str(tmp_path / "missing.seg.nrrd"), "-o", str(output))
    assert result.returncode == 2
    assert "error: segmentation file not found" in result.stderr
    assert not output.exists()
