"""Qt-free bridge between MRML nodes and ``lunglesion`` images.

Works in desktop Slicer and with the ``slicer-core`` wheel: every function takes the scene
(or a node) explicitly and uses only MRML, vtkSegmentationCore and VTK. This is the one
place where the LPS patient frame of :class:`lunglesion.image.Image` (ITK/DICOM) and the
RAS frame of MRML meet: ``RAS = diag(-1, -1, 1) @ LPS`` for origins and axis directions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from lunglesion.errors import DimensionError, EmptyInputError, InputError
from lunglesion.image import LPS_TO_RAS, Image
from lunglesion.io.atomic import atomic_output
from lunglesion.terminology import SegmentInfo, parse_terminology_entry

# First colour map present in the scene (file-based tables exist only in desktop Slicer).
PROBABILITY_COLOR_NODE_IDS = ("vtkMRMLColorTableNodeFileColdToHotRainbow.txt", "vtkMRMLPETProceduralColorNodePET-Heat")


# --- scalar volumes -------------------------------------------------------------------------

def volume_node_to_image(node: "slicer.vtkMRMLVolumeNode") -> Image:
    """A copy of the node's voxels with its geometry converted to ITK/LPS conventions."""
    image_data = node.GetImageData() if node is not None else None
    if image_data is None or image_data.GetPointData().GetScalars() is None:
        raise EmptyInputError(f"volume node '{node.GetName() if node else None}' holds no image data")
    if image_data.GetNumberOfScalarComponents() != 1:
        raise InputError(f"volume '{node.GetName()}' has {image_data.GetNumberOfScalarComponents()} "
                         "components; a single-component (grey) volume is needed")
    dims = image_data.GetDimensions()
    array = numpy_support.vtk_to_numpy(image_data.GetPointData().GetScalars())
    array = array.reshape(dims[2], dims[1], dims[0]).copy()
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(matrix)
    ras_direction = np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])
    return Image(array=array, spacing=node.GetSpacing(),
                 origin=LPS_TO_RAS @ np.asarray(node.GetOrigin()), direction=LPS_TO_RAS @ ras_direction)


def update_volume_node(node: "slicer.vtkMRMLVolumeNode", image: Image) -> "slicer.vtkMRMLVolumeNode":
    """Replace the node's voxels and geometry by ``image`` (3D, single component)."""
    if image.ndim != 3:
        raise DimensionError(f"a 3D volume is needed to make a volume node, got a {image.ndim}D image")
    array = np.ascontiguousarray(image.array.astype(np.uint8) if image.array.dtype == bool else image.array)
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    scalars = numpy_support.numpy_to_vtk(array.ravel(), deep=True)
    image_data.GetPointData().SetScalars(scalars)
    node.SetSpacing(*image.spacing)
    node.SetOrigin(*(LPS_TO_RAS @ np.asarray(image.origin)))
    matrix = vtk.vtkMatrix4x4()
    ras_direction = LPS_TO_RAS @ image.direction
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, float(ras_direction[r, c]))
    node.SetIJKToRASDirectionMatrix(matrix)
    node.SetAndObserveImageData(image_data)
    return node


def image_to_volume_node(image: Image, scene: "slicer.vtkMRMLScene", name: str,
                         node_class: str = "vtkMRMLScalarVolumeNode") -> "slicer.vtkMRMLVolumeNode":
    """A new volume node (with default display) in ``scene`` holding ``image``."""
    node = scene.AddNewNodeByClass(node_class, name)
    update_volume_node(node, image)
    node.CreateDefaultDisplayNodes()
    return node


def probability_to_volume_node(probability: Image, scene: "slicer.vtkMRMLScene", name: str,
                               threshold: float = 0.5,
                               node: "slicer.vtkMRMLScalarVolumeNode | None" = None
                               ) -> "slicer.vtkMRMLScalarVolumeNode":
    """A float volume in [0, 1] (probability or soft mask) shown with a colour map, window 0-1
    and values below ``threshold`` hidden, so it reads as an overlay."""
    array = np.asarray(probability.array, dtype=np.float32)
    if array.size and (float(array.min()) < 0.0 or float(array.max()) > 1.0):
        raise InputError(f"probability '{name}' has values outside [0, 1] "
                         f"({float(array.min()):.3g}..{float(array.max()):.3g})")
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    update_volume_node(node, probability.with_array(array))
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetLowerThreshold(float(threshold))
    display.SetUpperThreshold(1.0)
    display.ApplyThresholdOn()
    color_id = next((i for i in PROBABILITY_COLOR_NODE_IDS if scene.GetNodeByID(i) is not None), None)
    if color_id is not None:
        display.SetAndObserveColorNodeID(color_id)
    node.SetAttribute("LungLesionSeg.Threshold", f"{threshold:g}")
    return node


# --- segmentations --------------------------------------------------------------------------

def _apply_segment_info(segment: "slicer.vtkSegment", info: SegmentInfo) -> None:
    segment.SetName(info.name)
    segment.SetColor(*[float(c) for c in info.color])
    segment.SetLabelValue(int(info.label_value))
    segment.SetTerminology(info.terminology_entry())


def labelmap_to_segmentation_node(labelmap: Image, segments: Sequence[SegmentInfo],
                                  scene: "slicer.vtkMRMLScene", name: str,
                                  reference_volume: "slicer.vtkMRMLVolumeNode | None" = None,
                                  node: "slicer.vtkMRMLSegmentationNode | None" = None
                                  ) -> "slicer.vtkMRMLSegmentationNode":
    """A segmentation node with one segment per label value of ``labelmap``.

    Segments described in ``segments`` get their name, colour, label value and terminology
    codes; listed labels absent from the labelmap become empty segments (so statistics can
    show 0 mL); label values without a description keep Slicer's ``Label_<n>`` name.
    ``node`` is cleared and reused when given (re-running a model replaces its result).
    """
    values = np.unique(labelmap.array)
    if not np.issubdtype(labelmap.array.dtype, np.integer) and labelmap.array.dtype != bool:
        raise InputError(f"labelmap for '{name}' must hold integer labels, got {labelmap.array.dtype}")
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    else:
        node.GetSegmentation().RemoveAllSegments()
    node.CreateDefaultDisplayNodes()
    temp = image_to_volume_node(labelmap.with_array(labelmap.array.astype(np.int16)), scene,
                                f"{name}_import", "vtkMRMLLabelMapVolumeNode")
    try:
        if reference_volume is not None:
            node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
            node.SetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole(), reference_volume.GetID())
        else:
            node.SetReferenceImageGeometryParameterFromVolumeNode(temp)
        if np.any(values != 0) and not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
                temp, node, ""):
            raise InputError(f"Slicer could not import the labelmap of '{name}'")
    finally:
        for display in [temp.GetDisplayNode()] if temp.GetDisplayNode() else []:
            scene.RemoveNode(display)
        scene.RemoveNode(temp)
    segmentation = node.GetSegmentation()
    by_value = {segmentation.GetSegment(segmentation.GetNthSegmentID(i)).GetLabelValue():
                segmentation.GetSegment(segmentation.GetNthSegmentID(i))
                for i in range(segmentation.GetNumberOfSegments())}
    for info in segments:
        segment = by_value.get(int(info.label_value))
        if segment is None:
            segment_id = segmentation.AddEmptySegment("", info.name, list(info.color))
            segment = segmentation.GetSegment(segment_id)
        _apply_segment_info(segment, info)
    return node


def segmentation_node_to_labelmap(node: "slicer.vtkMRMLSegmentationNode",
                                  reference_volume: "slicer.vtkMRMLVolumeNode | None" = None) -> Image:
    """The segmentation as one labelmap image holding each segment's own label value.

    Voxels are on ``reference_volume``'s grid when given, else on the segmentation's
    reference geometry. Slicer's export numbers segments 1..n by position; this maps them
    back to ``segment.GetLabelValue()`` (later segments win where segments overlap).
    """
    segmentation = node.GetSegmentation()
    segment_ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    scene = node.GetScene()
    labelmap_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{node.GetName()}_export")
    try:
        ids = vtk.vtkStringArray()
        for segment_id in segment_ids:
            ids.InsertNextValue(segment_id)
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            node, ids, labelmap_node, reference_volume, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
        if not ok or labelmap_node.GetImageData() is None:
            raise InputError(f"segmentation '{node.GetName()}' could not be exported to a labelmap "
                             "(it has no reference geometry; pass a reference volume)")
        exported = volume_node_to_image(labelmap_node)
    finally:
        if labelmap_node.GetDisplayNode() is not None:
            scene.RemoveNode(labelmap_node.GetDisplayNode())
        scene.RemoveNode(labelmap_node)
    lookup = np.zeros(len(segment_ids) + 1, dtype=np.int64)
    for index, segment_id in enumerate(segment_ids, start=1):
        lookup[index] = segmentation.GetSegment(segment_id).GetLabelValue()
    dtype = np.uint8 if lookup.max(initial=0) < 256 else np.uint16
    return exported.with_array(lookup[exported.array.astype(np.int64)].astype(dtype))


def segment_infos(node: "slicer.vtkMRMLSegmentationNode") -> list[SegmentInfo]:
    """Each segment's name, label value, colour and terminology codes, in segment order."""
    segmentation = node.GetSegmentation()
    infos = []
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetSegment(segmentation.GetNthSegmentID(i))
        codes = parse_terminology_entry(segment.GetTerminology()) if segment.HasTerminology() else ()
        infos.append(SegmentInfo(segment.GetName(), segment.GetLabelValue(),
                                 tuple(float(c) for c in segment.GetColor()), *codes))
    return infos


def show_segmentation(node: "slicer.vtkMRMLSegmentationNode", show_3d: bool = True) -> None:
    """Show in slice views (outline + fill) and, optionally, as a 3D surface."""
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetVisibility(True)
    display.SetVisibility2DFill(True)
    display.SetVisibility2DOutline(True)
    display.SetVisibility3D(show_3d)
    if show_3d:
        node.CreateClosedSurfaceRepresentation()


# --- tables ---------------------------------------------------------------------------------

def statistics_to_table_node(rows: Sequence[dict[str, Any]], scene: "slicer.vtkMRMLScene", name: str,
                             node: "slicer.vtkMRMLTableNode | None" = None) -> "slicer.vtkMRMLTableNode":
    """A table node with one row per dict; numeric columns are doubles (NaN for missing)."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    table.Initialize()
    for column in columns:
        values = [row.get(column) for row in rows]
        numeric = all(v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
                      for v in values)
        array = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        array.SetName(column)
        for value in values:
            if numeric:
                array.InsertNextValue(math.nan if value is None else float(value))
            else:
                array.InsertNextValue("" if value is None else str(value))
        table.AddColumn(array)
    node.Modified()
    return node


def table_node_to_rows(node: "slicer.vtkMRMLTableNode") -> list[dict[str, Any]]:
    """The table's rows as dicts (doubles as float, the rest as str)."""
    table = node.GetTable()
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c in range(table.GetNumberOfColumns()):
            column = table.GetColumn(c)
            value = column.GetValue(r)
            row[column.GetName()] = float(value) if isinstance(column, vtk.vtkDataArray) else str(value)
        rows.append(row)
    return rows


# --- storage --------------------------------------------------------------------------------

def _read(path: Path | str, scene: "slicer.vtkMRMLScene", name: str | None, node_class: str,
          storage_class: str, what: str, needs_image_data: bool = False) -> "slicer.vtkMRMLStorableNode":
    """Read ``path`` into a new ``node_class`` node through a ``storage_class`` storage node
    (``what`` names the kind of file in errors; ``needs_image_data``: a read without voxels fails)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    node = scene.AddNewNodeByClass(node_class, name or path.name.split(".")[0])
    storage = scene.AddNewNodeByClass(storage_class)
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node) or (needs_image_data and node.GetImageData() is None):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise InputError(f"cannot read a {what} from {path}")
    node.CreateDefaultDisplayNodes()
    return node


def load_volume(path: Path | str, scene: "slicer.vtkMRMLScene", name: str | None = None
                ) -> "slicer.vtkMRMLScalarVolumeNode":
    """Read a NRRD/NIfTI/MHA volume through MRML's archetype storage node."""
    return _read(path, scene, name, "vtkMRMLScalarVolumeNode", "vtkMRMLVolumeArchetypeStorageNode", "volume",
                 needs_image_data=True)


def _write(node: "slicer.vtkMRMLStorableNode", path: Path | str) -> Path:
    path = Path(path)
    scene = node.GetScene()
    storage = node.GetStorageNode()
    if storage is None:
        storage = node.CreateDefaultStorageNode()
        scene.AddNode(storage)
        node.SetAndObserveStorageNodeID(storage.GetID())
    with atomic_output(path) as tmp:
        storage.SetFileName(str(tmp))
        if not storage.WriteData(node):
            raise InputError(f"could not write '{node.GetName()}' to {path}")
    storage.SetFileName(str(path))
    return path


def save_segmentation(node: "slicer.vtkMRMLSegmentationNode", path: Path | str) -> Path:
    """Write a ``.seg.nrrd`` (atomically) through the segmentation storage node."""
    if not str(path).endswith(".seg.nrrd"):
        raise InputError(f"segmentation file name must end with .seg.nrrd: {path}")
    return _write(node, path)


def save_volume(node: "slicer.vtkMRMLVolumeNode", path: Path | str) -> Path:
    """Write a volume (format from the extension) atomically through its storage node."""
    return _write(node, path)


def load_segmentation(path: Path | str, scene: "slicer.vtkMRMLScene", name: str | None = None
                      ) -> "slicer.vtkMRMLSegmentationNode":
    """Read a ``.seg.nrrd`` (segment IDs, names, colours, label values, terminology)."""
    return _read(path, scene, name, "vtkMRMLSegmentationNode", "vtkMRMLSegmentationStorageNode", "segmentation")
