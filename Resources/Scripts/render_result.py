"""Render a picture of a segmentation result on a CT, headless, through Slicer's MRML.

With plain Python and the ``slicer-core`` wheel (or ``Slicer --no-main-window --python-script``)::

    python render_result.py --seg out/lung1.seg.nrrd --auto-lungs --model bsnet -o result.png

The CT (default: the bundled sample) and the ``.seg.nrrd`` are loaded into a vtkMRMLScene
with the MRML bridge; lungs come from ``--lungs`` (labelmap 1 = right, 2 = left, or a
``.seg.nrrd``) or, with ``--auto-lungs``, from :func:`lunglesion.lungmask.segment_lungs`.
The picture has an axial slice through the largest lesion area (lung window W1500/L-600,
segment fills and outlines in their terminology colours) and a 3D view of the segments'
closed surfaces (lesions opaque, lungs translucent) rendered offscreen by VTK; the caption
gives the model, each lesion's volume and its share of the lungs. Without offscreen OpenGL
(or with ``--no-3d``) the 3D view is replaced by coronal and sagittal slices.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve()
for candidate in (HERE.parents[2], HERE.parents[2] / "LungLesionSeg"):  # installed tree, source tree
    if (candidate / "LungLesionSegLib").is_dir() or (candidate / "lunglesion").is_dir():
        sys.path.insert(0, str(candidate))
# VTK 9.6 tries X first and only then EGL; go straight to EGL when there is no display.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

import slicer  # noqa: E402
import vtk  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from LungLesionSegLib import headless, mrml_bridge  # noqa: E402
from lunglesion.errors import InputError, LungLesionError  # noqa: E402
from lunglesion.image import Image  # noqa: E402
from lunglesion.inference.pipeline import lesion_statistics  # noqa: E402
from lunglesion.io import read_labelmap  # noqa: E402
from lunglesion.io.atomic import atomic_output  # noqa: E402
from lunglesion.io.validation import require_ct  # noqa: E402
from lunglesion.lungmask import segment_lungs  # noqa: E402
from lunglesion.preprocessing.slicing import axial_view  # noqa: E402
from lunglesion.preprocessing.windowing import LUNG_WINDOW_HU, hu_to_unit  # noqa: E402
from lunglesion.terminology import ANATOMICAL_STRUCTURE, LEFT_LUNG, RIGHT_LUNG, SegmentInfo  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DEFAULT_CT = HERE.parents[2] / "Resources" / "SampleData" / "lung1_chest_ct.nrrd"
FIGURE_SIZE_PX = (1600, 800)
DPI = 100
VIEW_SIZE_PX = (760, 640)
LUNG_OPACITY = 0.18
CROP_MARGIN_MM = 15.0
FILL_ALPHA = 0.35
SLICER_3D_BACKGROUND = ((0.7568627450980392, 0.7647058823529411, 0.9098039215686274), (1.0, 1.0, 1.0))


@dataclass
class Case:
    """A CT and its segmentations in one scene, plus voxel arrays on the CT's grid."""

    nodes: list[slicer.vtkMRMLSegmentationNode]  # the result, then the lungs if any
    image: Image  # HU
    labelmap: Image  # the result's labels on the CT grid
    segments: list[SegmentInfo]  # the result's segments
    lungs: Image | None  # 1 right, 2 left, on the CT grid


def is_anatomy(info: SegmentInfo) -> bool:
    """Anatomy (lungs) is drawn translucent; everything else is a finding drawn opaque."""
    return info.category == ANATOMICAL_STRUCTURE


def load_case(ct: Path, seg: Path, lungs: Path | None, auto_lungs: bool) -> Case:
    """Load the CT, the result and the lungs into the (headless) Slicer scene."""
    if lungs is not None and auto_lungs:
        raise InputError("give either --lungs or --auto-lungs, not both")
    scene = headless.ensure_scene()
    volume = mrml_bridge.load_volume(ct, scene)
    image = require_ct(mrml_bridge.volume_node_to_image(volume), f"CT {ct}")
    result = mrml_bridge.load_segmentation(seg, scene)
    labelmap = mrml_bridge.segmentation_node_to_labelmap(result, volume)
    nodes = [result]
    lung_node = None
    if lungs is not None and str(lungs).endswith(".seg.nrrd"):
        lung_node = mrml_bridge.load_segmentation(lungs, scene, "lungs")
    elif lungs is not None or auto_lungs:
        lung_image = read_labelmap(lungs) if lungs is not None else segment_lungs(image)
        lung_node = mrml_bridge.labelmap_to_segmentation_node(lung_image, [RIGHT_LUNG, LEFT_LUNG], scene,
                                                              "lungs", volume)
    lung_labels = None
    if lung_node is not None:
        nodes.append(lung_node)
        lung_labels = mrml_bridge.segmentation_node_to_labelmap(lung_node, volume)
    return Case(nodes, image, labelmap, mrml_bridge.segment_infos(result), lung_labels)


# --- slices ---------------------------------------------------------------------------------

def _overlay(grey: np.ndarray, labels: np.ndarray, segments: list[SegmentInfo]) -> np.ndarray:
    """Lung-windowed grey slice with each segment filled and outlined in its colour."""
    rgb = np.repeat(hu_to_unit(grey, LUNG_WINDOW_HU)[..., None], 3, axis=2)
    for info in segments:
        mask = labels == info.label_value
        if not mask.any():
            continue
        color = np.asarray(info.color, dtype=np.float32)
        alpha = FILL_ALPHA * (0.5 if is_anatomy(info) else 1.0)
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * color
        rgb[mask & ~ndi.binary_erosion(mask, border_value=1)] = color
    return rgb


def _label_planes(case: Case) -> tuple[np.ndarray, list[SegmentInfo]]:
    """Result and lung labels merged for display (result drawn over the lungs)."""
    result = case.labelmap.array.astype(np.int32)
    if case.lungs is None:
        return result, case.segments
    offset = int(result.max(initial=0)) + 1
    lungs = np.where(case.lungs.array > 0, case.lungs.array.astype(np.int32) + offset - 1, 0)
    merged = np.where(result > 0, result, lungs)
    lung_segments = [RIGHT_LUNG.with_label(offset), LEFT_LUNG.with_label(offset + 1)]
    return merged, lung_segments + case.segments


def _lesion_mask(case: Case) -> np.ndarray:
    findings = [info.label_value for info in case.segments if not is_anatomy(info)]
    return np.isin(case.labelmap.array, findings)


def _crop(mask_view: np.ndarray, spacing_rc: tuple[float, float], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns around ``mask_view`` (the lungs, any slice) plus a margin, or everything."""
    if not mask_view.any():
        return slice(None), slice(None)
    rows = np.flatnonzero(mask_view.any(axis=(0, 2)))
    cols = np.flatnonzero(mask_view.any(axis=(0, 1)))
    mr, mc = (int(round(CROP_MARGIN_MM / s)) for s in spacing_rc)
    return (slice(max(rows[0] - mr, 0), min(rows[-1] + mr + 1, shape[0])),
            slice(max(cols[0] - mc, 0), min(cols[-1] + mc + 1, shape[1])))


@dataclass
class Views:
    """Radiological axial view arrays of CT, labels and lesions, and the chosen slice."""

    grey: np.ndarray
    labels: np.ndarray
    lesion: np.ndarray
    spacing: tuple[float, float, float]
    segments: list[SegmentInfo]
    slice_index: int
    rows: slice
    cols: slice


def axial_views(case: Case) -> Views:
    """Arrays in radiological layout; the slice with the largest lesion area (else the middle)."""
    labels, segments = _label_planes(case)
    view = axial_view(case.image)
    grey = view.array
    labels_view = axial_view(case.image.with_array(labels)).array
    lesion_view = axial_view(case.image.with_array(_lesion_mask(case))).array
    areas = lesion_view.sum(axis=(1, 2))
    index = int(np.argmax(areas)) if areas.any() else grey.shape[0] // 2
    rows, cols = slice(None), slice(None)
    if case.lungs is not None:
        rows, cols = _crop(axial_view(case.lungs).array > 0, view.spacing[1:], grey.shape[1:])
    return Views(grey, labels_view, lesion_view, view.spacing, segments, index, rows, cols)


def _mark(ax: Axes, top: str, bottom: str, left: str, right: str, color: str = "yellow") -> None:
    """Patient-direction letters at the middle of each edge of a view."""
    style = dict(color=color, fontsize=12, fontweight="bold", transform=ax.transAxes, ha="center", va="center")
    if color == "yellow":
        style["bbox"] = dict(boxstyle="round,pad=0.15", facecolor="black", alpha=0.6, edgecolor="none")
    for text, x, y in ((top, 0.5, 0.96), (bottom, 0.5, 0.04), (left, 0.03, 0.5), (right, 0.97, 0.5)):
        ax.text(x, y, text, **style)


def draw_axial(ax: Axes, views: Views) -> None:
    """The axial slice through the largest lesion area, anterior up, patient right on the left."""
    k, rows, cols = views.slice_index, views.rows, views.cols
    rgb = _overlay(views.grey[k][rows, cols], views.labels[k][rows, cols], views.segments)
    ax.imshow(rgb, interpolation="nearest", aspect=views.spacing[1] / views.spacing[2])
    ax.set_title(f"axial slice {k + 1} of {views.grey.shape[0]} (largest lesion area), W1500/L-600",
                 fontsize=11)
    ax.axis("off")
    _mark(ax, "A", "P", "R", "L")
    lesion = views.lesion[k][rows, cols]
    if lesion.any():
        r, c = np.nonzero(lesion)
        height, width = lesion.shape
        if (np.ptp(r) + 1) < height / 4 and (np.ptp(c) + 1) < width / 4:
            _zoom_inset(ax, rgb, r, c, views.spacing[1] / views.spacing[2])


def _zoom_inset(ax: Axes, rgb: np.ndarray, r: np.ndarray, c: np.ndarray, aspect: float) -> None:
    """A magnified view of a small lesion in the lower right corner."""
    half = int(max(np.ptp(r), np.ptp(c))) + 12
    rc, cc = int(r.mean()), int(c.mean())
    r0, c0 = max(rc - half, 0), max(cc - half, 0)
    inset = ax.inset_axes((0.66, 0.02, 0.32, 0.32))
    inset.imshow(rgb[r0:rc + half + 1, c0:cc + half + 1], interpolation="nearest", aspect=aspect)
    inset.set_xticks([])
    inset.set_yticks([])
    for spine in inset.spines.values():
        spine.set_color("yellow")
    ax.indicate_inset((c0, r0, 2 * half, 2 * half), inset, edgecolor="yellow")


def draw_orthogonal(ax_coronal: Axes, ax_sagittal: Axes, views: Views) -> None:
    """Coronal and sagittal slices through the largest lesion area's centre (3D-free fallback)."""
    k = views.slice_index
    lesion = views.lesion[k]
    r, c = (int(v.mean()) for v in np.nonzero(lesion)) if lesion.any() else (
        views.grey.shape[1] // 2, views.grey.shape[2] // 2)
    slice_mm, row_mm, col_mm = views.spacing
    coronal = _overlay(views.grey[::-1, r, views.cols], views.labels[::-1, r, views.cols], views.segments)
    ax_coronal.imshow(coronal, interpolation="nearest", aspect=slice_mm / col_mm)
    ax_coronal.set_title("coronal", fontsize=11)
    _mark(ax_coronal, "S", "I", "R", "L")
    sagittal = _overlay(views.grey[::-1, views.rows, c], views.labels[::-1, views.rows, c], views.segments)
    ax_sagittal.imshow(sagittal, interpolation="nearest", aspect=slice_mm / row_mm)
    ax_sagittal.set_title("sagittal", fontsize=11)
    _mark(ax_sagittal, "S", "I", "A", "P")
    for ax in (ax_coronal, ax_sagittal):
        ax.axis("off")


# --- 3D -------------------------------------------------------------------------------------

class NoThreeDView(RuntimeError):
    """No 3D view: VTK cannot render offscreen here, or there is no surface to show."""


GL_PROBE = """
import vtk
window = vtk.vtkRenderWindow()
window.SetOffScreenRendering(1)
window.SetSize(32, 32)
print(window.GetClassName(), flush=True)
renderer = vtk.vtkRenderer()
window.AddRenderer(renderer)
sphere = vtk.vtkSphereSource()
mapper = vtk.vtkPolyDataMapper()
mapper.SetInputConnection(sphere.GetOutputPort())
actor = vtk.vtkActor()
actor.SetMapper(mapper)
renderer.AddActor(actor)
window.Render()
grab = vtk.vtkWindowToImageFilter()
grab.SetInput(window)
grab.Update()
low, high = grab.GetOutput().GetScalarRange()
raise SystemExit(0 if high > low else 3)
"""
GL_PACKAGES = "apt: libegl1 libgl1-mesa-dri (EGL), or libosmesa6 for vtkOSOpenGLRenderWindow"


def offscreen_gl_problem() -> str | None:
    """Why VTK cannot render offscreen here, or None. A sphere is rendered in a child process
    because a missing GL library can crash VTK: without libOSMesa, vtkOSOpenGLRenderWindow
    even reports OpenGL support and then segfaults in Render()."""
    try:
        probe = subprocess.run([sys.executable, "-c", GL_PROBE], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"OpenGL probe failed ({error}); {GL_PACKAGES}"
    if probe.returncode == 0:
        return None
    window = probe.stdout.strip() or "the VTK render window"
    how = f"signal {-probe.returncode}" if probe.returncode < 0 else f"exit status {probe.returncode}"
    return f"{window} has no usable offscreen OpenGL ({how}); {GL_PACKAGES}"


def _offscreen_window(size: tuple[int, int]) -> vtk.vtkRenderWindow:
    problem = offscreen_gl_problem()
    if problem:
        raise NoThreeDView(problem)
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(*size)
    window.SetMultiSamples(0)
    window.SetAlphaBitPlanes(1)
    return window


def _window_pixels(window: vtk.vtkRenderWindow) -> np.ndarray:
    """The window's RGB pixels, top row first."""
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    width, height, _ = grab.GetOutput().GetDimensions()
    pixels = numpy_support.vtk_to_numpy(grab.GetOutput().GetPointData().GetScalars())
    return pixels.reshape(height, width, -1)[::-1].copy()


def _surface_actor(surface: vtk.vtkPolyData, info: SegmentInfo) -> vtk.vtkActor:
    """A lit actor in the segment's colour; anatomy translucent, findings opaque."""
    normals = vtk.vtkPolyDataNormals()
    normals.SetInputData(surface)
    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputConnection(normals.GetOutputPort())
    mapper.ScalarVisibilityOff()
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*info.color)
    actor.GetProperty().SetOpacity(LUNG_OPACITY if is_anatomy(info) else 1.0)
    actor.GetProperty().SetSpecular(0.2)
    return actor


def render_surfaces(nodes: list[slicer.vtkMRMLSegmentationNode],
                    size: tuple[int, int] = VIEW_SIZE_PX) -> np.ndarray:
    """RGB pixels of every segment's closed surface seen from anterior (patient right on the left)."""
    window = _offscreen_window(size)
    renderer = vtk.vtkRenderer()
    renderer.GradientBackgroundOn()
    renderer.SetBackground(*SLICER_3D_BACKGROUND[0])
    renderer.SetBackground2(*SLICER_3D_BACKGROUND[1])
    renderer.SetUseDepthPeeling(1)
    renderer.SetMaximumNumberOfPeels(12)
    window.AddRenderer(renderer)
    vtk.vtkLightKit().AddLightsToRenderer(renderer)
    for node in nodes:
        node.CreateClosedSurfaceRepresentation()
        segmentation = node.GetSegmentation()
        for index, info in enumerate(mrml_bridge.segment_infos(node)):
            surface = vtk.vtkPolyData()
            node.GetClosedSurfaceRepresentation(segmentation.GetNthSegmentID(index), surface)
            if surface.GetNumberOfPoints() > 0:
                renderer.AddActor(_surface_actor(surface, info))
    if renderer.GetActors().GetNumberOfItems() == 0:
        raise NoThreeDView("no segment has a surface to show")
    camera = renderer.GetActiveCamera()
    camera.SetFocalPoint(0.0, 0.0, 0.0)
    camera.SetPosition(0.0, 1.0, 0.0)  # RAS: in front of the patient, looking posterior
    camera.SetViewUp(0.0, 0.0, 1.0)
    renderer.ResetCamera()
    camera.Zoom(1.25)
    window.Render()
    pixels = _window_pixels(window)
    window.Finalize()
    if pixels.std() == 0:
        raise NoThreeDView(f"{window.GetClassName()} rendered a blank image")
    return pixels


def draw_3d(ax: Axes, pixels: np.ndarray) -> None:
    """The VTK rendering with the anterior view's orientation letters."""
    ax.imshow(pixels, interpolation="nearest")
    ax.set_title("3D segment surfaces (Slicer closed surfaces), anterior view", fontsize=11)
    ax.axis("off")
    _mark(ax, "S", "I", "R", "L", color="black")


# --- caption and figure ---------------------------------------------------------------------

def caption(case: Case, model: str, ct_name: str) -> str:
    """Model, CT, and each lesion's volume and share of the lungs."""
    findings = [info for info in case.segments if not is_anatomy(info)]
    parts = []
    for row in lesion_statistics(case.labelmap, findings, case.lungs):
        text = f"{row['segment']} {row['volume_ml']:.2f} mL"
        if "percent_lungs" in row:
            text += (f", {row['percent_lungs']:.2f} % of the lungs (right {row['percent_right_lung']:.2f} %, "
                     f"left {row['percent_left_lung']:.2f} %)")
        parts.append(text)
    return f"{ct_name} | model: {model} | " + ("; ".join(parts) if parts else "no lesion segment")


def legend_handles(segments: list[SegmentInfo]) -> list[Patch]:
    """One coloured patch per segment."""
    return [Patch(facecolor=info.color, edgecolor="black", label=info.name) for info in segments]


def compose(case: Case, model: str, ct_name: str, output: Path, three_d: bool) -> tuple[str, str]:
    """Draw and write the PNG atomically; returns what the right-hand side shows and the caption."""
    views = axial_views(case)
    pixels, right = None, "coronal and sagittal slices (--no-3d)"
    if three_d:
        try:
            pixels = render_surfaces(case.nodes)
            right = "3D view rendered offscreen by VTK"
        except NoThreeDView as reason:
            right = f"coronal and sagittal slices (3D view unavailable: {reason})"
    width, height = FIGURE_SIZE_PX
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    if pixels is not None:
        ax_axial, ax_3d = fig.subplots(1, 2, gridspec_kw=dict(left=0.01, right=0.99, top=0.93, bottom=0.12,
                                                               wspace=0.03))
        draw_3d(ax_3d, pixels)
    else:
        ax_axial, ax_coronal, ax_sagittal = fig.subplots(
            1, 3, gridspec_kw=dict(left=0.01, right=0.99, top=0.93, bottom=0.12, wspace=0.03,
                                   width_ratios=(1.0, 1.0, 0.7)))
        draw_orthogonal(ax_coronal, ax_sagittal, views)
    draw_axial(ax_axial, views)
    present = sorted({int(v) for v in np.unique(views.labels)} - {0})
    fig.legend(handles=legend_handles([s for s in views.segments if s.label_value in present]),
               loc="lower center", bbox_to_anchor=(0.5, 0.055), ncol=max(1, len(present)), fontsize=11,
               frameon=False)
    text = caption(case, model, ct_name)
    fig.text(0.5, 0.02, text, ha="center", va="center", fontsize=12)
    with atomic_output(output) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return right, text


def run(argv: list[str] | None = None) -> int:
    """Render one picture; returns the exit status."""
    parser = argparse.ArgumentParser(description="Render a segmentation result on its CT (slice + 3D view).")
    parser.add_argument("--ct", type=Path, default=DEFAULT_CT, help="CT volume (default: the bundled sample)")
    parser.add_argument("--seg", type=Path, required=True, help="segmentation (.seg.nrrd) on that CT")
    parser.add_argument("--lungs", type=Path, default=None,
                        help="lung labelmap (1 right, 2 left) or lung .seg.nrrd, drawn translucent")
    parser.add_argument("--auto-lungs", action="store_true", help="segment the lungs from the CT")
    parser.add_argument("--model", default="unspecified", help="model name shown in the caption")
    parser.add_argument("--no-3d", dest="three_d", action="store_false",
                        help="coronal and sagittal slices instead of the 3D view")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        case = load_case(args.ct, args.seg, args.lungs, args.auto_lungs)
        right, text = compose(case, args.model, args.ct.name, args.output, args.three_d)
    except LungLesionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: axial slice + {right}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run())
