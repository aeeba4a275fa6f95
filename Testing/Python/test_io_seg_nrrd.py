"""Slicer segmentation files: our writer read back by slicer-core, Slicer's files read by us."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from io_asserts import assert_same_image
from lunglesion.errors import DimensionError, InputError
from lunglesion.image import Image
from lunglesion.io import read_labelmap, read_seg_nrrd, read_segment_names, write_labelmap, write_seg_nrrd
from lunglesion.terminology import (CONSOLIDATION, GROUND_GLASS_OPACITY, LEFT_LUNG, NODULE, RIGHT_LUNG,
                                    parse_terminology_entry, segment_for_structure)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def oblique_labels(shared_data: Path) -> Image:
    """Real TotalSegmentator labels (lung lobes -> right/left lung, liver -> 12) on an oblique grid."""
    source = read_labelmap(shared_data / "totalseg" / "ct_sm_seg_total_v2.nii.gz").array
    labels = np.zeros_like(source)
    labels[np.isin(source, (10, 11))] = 7       # left upper/lower lobe
    labels[np.isin(source, (12, 13, 14))] = 3   # right lobes
    labels[source == 5] = 12                    # the liver stands in for a third structure
    a = np.deg2rad(17.0)
    direction = np.array([[np.cos(a), 0, np.sin(a)], [0, -1, 0], [np.sin(a), 0, -np.cos(a)]]).T
    return Image(array=labels, spacing=(0.8, 1.1, 3.3), origin=(12.5, -40.75, 101.0), direction=direction)


SEGMENTS = [RIGHT_LUNG.with_label(3), LEFT_LUNG.with_label(7), GROUND_GLASS_OPACITY.with_label(12),
            NODULE.with_label(20)]


def test_round_trip_keeps_labels_names_and_codes(oblique_labels: Image, tmp_path: Path) -> None:
    assert {3, 7, 12} <= set(np.unique(oblique_labels.array))
    path = tmp_path / "lungs.seg.nrrd"
    write_seg_nrrd(oblique_labels, path, SEGMENTS)
    labels, segments = read_seg_nrrd(path)
    assert_same_image(labels, oblique_labels)
    assert segments == SEGMENTS
    assert read_segment_names(path) == ["right lung", "left lung", "ground-glass opacity", "nodule"]
    assert_same_image(read_labelmap(path), oblique_labels)


def test_slicer_reads_our_file(oblique_labels: Image, tmp_path: Path) -> None:
    slicer = pytest.importorskip("slicer", reason="slicer-core (the [slicer] extra) is not installed")
    import vtk
    from vtk.util import numpy_support

    path = tmp_path / "lungs.seg.nrrd"
    write_labelmap(oblique_labels, path, SEGMENTS)
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node) == 1
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(SEGMENTS)
    for index, expected in enumerate(SEGMENTS):
        segment = segmentation.GetNthSegment(index)
        assert segment.GetName() == expected.name
        assert segment.GetLabelValue() == expected.label_value
        np.testing.assert_allclose(segment.GetColor(), expected.color, atol=1e-5)
        assert parse_terminology_entry(segment.GetTerminology()) == (expected.category, expected.type,
                                                                      expected.type_modifier)
    # voxels and geometry as Slicer sees them (RAS = diag(-1, -1, 1) LPS)
    labelmap_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportAllSegmentsToLabelmapNode(
        node, labelmap_node, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
    matrix = vtk.vtkMatrix4x4()
    labelmap_node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    geometry = oblique_labels
    np.testing.assert_allclose(ijk_to_ras[:3, :3], LPS_TO_RAS @ geometry.direction @ np.diag(geometry.spacing),
                               atol=1e-6)
    np.testing.assert_allclose(ijk_to_ras[:3, 3], LPS_TO_RAS @ np.asarray(geometry.origin), atol=1e-6)
    data = labelmap_node.GetImageData()
    exported = numpy_support.vtk_to_numpy(data.GetPointData().GetScalars()).reshape(data.GetDimensions()[::-1])
    for index, expected in enumerate(SEGMENTS):  # Slicer exports segment i as value i + 1
        np.testing.assert_array_equal(exported == index + 1, geometry.array == expected.label_value)


def _slicer_two_layer_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Slicer writes two overlapping segments as a two-layer (4D) .seg.nrrd."""
    slicer = pytest.importorskip("slicer", reason="slicer-core (the [slicer] extra) is not installed")
    import vtk
    from vtk.util import numpy_support

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    first = np.zeros((8, 12, 10), np.uint8)
    first[2:5, 3:6, 4:7] = 1
    second = np.zeros_like(first)
    second[3:6, 4:8, 5:9] = 1
    for index, array in enumerate((first, second)):
        volume = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        volume.SetName(f"part{index + 1}")
        data = vtk.vtkImageData()
        data.SetDimensions(array.shape[::-1])
        data.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
        numpy_support.vtk_to_numpy(data.GetPointData().GetScalars())[:] = array.ravel()
        volume.SetAndObserveImageData(data)
        volume.SetSpacing(0.7, 0.8, 2.5)
        volume.SetOrigin(-12.5, 30.25, 7.0)
        if index == 0:
            node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(volume, node)
    assert node.GetSegmentation().GetNumberOfLayers() == 2
    storage = node.CreateDefaultStorageNode()
    scene.AddNode(storage)
    node.SetAndObserveStorageNodeID(storage.GetID())
    storage.SetFileName(str(path))
    assert storage.WriteData(node) == 1
    return first, second


def test_read_slicer_multilayer_file(tmp_path: Path) -> None:
    path = tmp_path / "layers.seg.nrrd"
    first, second = _slicer_two_layer_file(path)
    labels, segments = read_seg_nrrd(path)
    # both segments use LabelValue 1 in their own layer: renumbered 1, 2; the later layer wins overlaps
    assert [s.label_value for s in segments] == [1, 2]
    assert [s.name for s in segments] == ["part1", "part2"]
    np.testing.assert_array_equal(labels.array == 2, second.astype(bool))
    np.testing.assert_array_equal(labels.array == 1, first.astype(bool) & ~second.astype(bool))
    np.testing.assert_allclose(labels.origin, (12.5, -30.25, 7.0), atol=1e-6)  # LPS of RAS (-12.5, 30.25, 7)
    np.testing.assert_allclose(labels.spacing, (0.7, 0.8, 2.5), atol=1e-6)


def test_default_segments_for_seg_nrrd(oblique_labels: Image, tmp_path: Path) -> None:
    write_labelmap(oblique_labels, tmp_path / "auto.seg.nrrd")
    assert read_segment_names(tmp_path / "auto.seg.nrrd") == ["Label_3", "Label_7", "Label_12"]


def test_undescribed_label_is_refused(oblique_labels: Image, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"values \[12\] that no segment describes"):
        write_seg_nrrd(oblique_labels, tmp_path / "x.seg.nrrd", SEGMENTS[:2])
    assert not list(tmp_path.iterdir())


def test_2d_labelmap_is_refused(tmp_path: Path) -> None:
    image = Image(array=np.ones((4, 5), np.uint8), spacing=(1, 1), origin=(0, 0), direction=np.eye(2))
    with pytest.raises(DimensionError):
        write_seg_nrrd(image, tmp_path / "x.seg.nrrd", [NODULE])


def test_terminology_entry_format() -> None:
    assert CONSOLIDATION.terminology_entry() == (
        "Segmentation category and type - 3D Slicer General Anatomy list"
        "~SCT^49755003^Morphologically Altered Structure~SCT^95436008^Lung consolidation~^^"
        "~Anatomic codes - DICOM master list~^^~^^")
    assert parse_terminology_entry(LEFT_LUNG.terminology_entry()) == (
        LEFT_LUNG.category, LEFT_LUNG.type, ("7771000", "SCT", "Left"))


def test_segment_for_structure() -> None:
    assert segment_for_structure("Nodule", 4) == NODULE.with_label(4)
    liver = segment_for_structure("liver", 5)
    assert liver.name == "liver" and liver.label_value == 5 and liver.type[2] == "Tissue"
    assert segment_for_structure("liver").color == liver.color != segment_for_structure("spleen").color
