"""The MRML bridge against real MRML (slicer-core): volumes, segmentations, float volumes, tables.

Geometry and voxels are compared exactly with what SimpleITK reads from the same files.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import slicer_paths  # noqa: F401  (module folders on sys.path)

slicer = pytest.importorskip("slicer")

from LungLesionSegLib import headless, mrml_bridge  # noqa: E402
from lunglesion.errors import DimensionError, InputError  # noqa: E402
from lunglesion.image import Image  # noqa: E402
from lunglesion.io.convert import from_sitk  # noqa: E402
from lunglesion.terminology import CONSOLIDATION, NODULE, SegmentInfo  # noqa: E402


@pytest.fixture()
def scene():
    return headless.install_headless_context()


@pytest.fixture(scope="module")
def lung1(shared_data):
    image = sitk.ReadImage(str(shared_data / "chest_ct" / "lung1_image.nrrd"))
    label = sitk.ReadImage(str(shared_data / "chest_ct" / "lung1_label.nrrd"))
    return from_sitk(image), from_sitk(label)


def assert_same(image: Image, reference: Image) -> None:
    assert image.array.shape == reference.array.shape
    np.testing.assert_array_equal(image.array, reference.array)
    np.testing.assert_allclose(image.spacing, reference.spacing, rtol=0, atol=1e-9)
    np.testing.assert_allclose(image.origin, reference.origin, rtol=0, atol=1e-6)
    np.testing.assert_allclose(image.direction, reference.direction, rtol=0, atol=1e-9)


def assert_same_in_space(image: Image, reference: Image) -> None:
    """Equal voxels at equal physical positions, allowing axes stored in reverse order.

    Slicer's archetype reader stores a left-handed grid (det(direction) = -1) with its k
    axis reversed, which describes the same voxels in space.
    """
    flips = [i for i in range(3) if np.dot(image.direction[:, i], reference.direction[:, i]) < 0]
    array = np.flip(image.array, axis=[2 - i for i in flips]) if flips else image.array
    np.testing.assert_array_equal(array, reference.array)
    np.testing.assert_allclose(image.spacing, reference.spacing, rtol=0, atol=1e-9)
    corner = np.array([(image.array.shape[2 - i] - 1) if i in flips else 0 for i in range(3)], dtype=float)
    np.testing.assert_allclose(image.index_to_physical(corner), reference.origin, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.abs(image.direction), np.abs(reference.direction), rtol=0, atol=1e-9)


def oblique_image(source: Image) -> Image:
    """A small crop with a rotated, flipped direction and an off-axis origin."""
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0],
                         [0.0, 0.0, 1.0]])
    direction = rotation @ np.diag([1.0, -1.0, 1.0])
    array = np.ascontiguousarray(source.array[20:32, 200:264, 150:214])
    return Image(array=array, spacing=(0.7, 0.8, 2.5), origin=(12.5, -30.25, 7.0), direction=direction)


def test_volume_loaded_through_storage_node_matches_simpleitk(scene, lung1, shared_data):
    node = mrml_bridge.load_volume(shared_data / "chest_ct" / "lung1_image.nrrd", scene)
    assert_same(mrml_bridge.volume_node_to_image(node), lung1[0])
    ras_origin = np.array(node.GetOrigin())
    np.testing.assert_allclose(ras_origin, np.diag([-1, -1, 1]) @ np.array(lung1[0].origin))


@pytest.mark.parametrize("make", [lambda img: img, oblique_image], ids=["axial", "oblique"])
def test_image_to_node_to_file_round_trip(scene, lung1, tmp_path, make):
    image = make(lung1[0])
    node = mrml_bridge.image_to_volume_node(image, scene, "ct")
    assert_same(mrml_bridge.volume_node_to_image(node), image)
    path = mrml_bridge.save_volume(node, tmp_path / "ct.nrrd")
    assert_same(from_sitk(sitk.ReadImage(str(path))), image)
    reloaded = mrml_bridge.load_volume(path, scene)
    assert_same_in_space(mrml_bridge.volume_node_to_image(reloaded), image)


def _two_class_labelmap(label: Image) -> Image:
    """Nodule voxels as label 1, and a block of label 2 (consolidation) elsewhere."""
    array = (label.array > 0).astype(np.uint8)
    array[2:5, 100:120, 100:130] = 2
    return label.with_array(array)


@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "oblique"])
def test_segmentation_round_trip_through_seg_nrrd(scene, lung1, tmp_path, oblique):
    ct, label = lung1
    labelmap = _two_class_labelmap(label)
    if oblique:
        ct, labelmap = oblique_image(ct), oblique_image(labelmap)
        labelmap.array[0, :4, :4] = 1  # the crop holds no nodule: keep both labels present
    volume = mrml_bridge.image_to_volume_node(ct, scene, "ct")
    segments = [NODULE, CONSOLIDATION]
    node = mrml_bridge.labelmap_to_segmentation_node(labelmap, segments, scene, "lesions", volume)

    infos = {info.name: info for info in mrml_bridge.segment_infos(node)}
    assert set(infos) == {"nodule", "consolidation"}
    for expected in segments:
        got = infos[expected.name]
        assert (got.label_value, got.category, got.type) == (expected.label_value, expected.category, expected.type)
        np.testing.assert_allclose(got.color, expected.color, atol=1e-6)

    assert_same(mrml_bridge.segmentation_node_to_labelmap(node, volume), labelmap)
    path = mrml_bridge.save_segmentation(node, tmp_path / "lesions.seg.nrrd")
    on_disk = from_sitk(sitk.ReadImage(str(path)))
    assert on_disk.same_geometry(ct, atol=1e-6)
    reloaded = mrml_bridge.load_segmentation(path, scene)
    assert_same(mrml_bridge.segmentation_node_to_labelmap(reloaded, volume), labelmap)
    assert_same(mrml_bridge.segmentation_node_to_labelmap(reloaded), labelmap)  # own reference geometry
    assert [i.terminology_entry() for i in mrml_bridge.segment_infos(reloaded)] == \
        [i.terminology_entry() for i in mrml_bridge.segment_infos(node)]


def test_label_values_survive_export_renumbering(scene, lung1):
    """Slicer's export numbers segments 1..n; the bridge must give back 3 and 7."""
    ct, label = lung1
    labelmap = label.with_array(np.where(label.array > 0, 7, 0).astype(np.uint8))
    labelmap.array[10, 10:20, 10:20] = 3
    segments = [SegmentInfo("a", 3, (1, 0, 0)), SegmentInfo("b", 7, (0, 1, 0)), SegmentInfo("empty", 9, (0, 0, 1))]
    node = mrml_bridge.labelmap_to_segmentation_node(labelmap, segments, scene, "seg")
    assert node.GetSegmentation().GetNumberOfSegments() == 3
    back = mrml_bridge.segmentation_node_to_labelmap(node)
    assert_same(back, labelmap)
    assert {i.name: i.label_value for i in mrml_bridge.segment_infos(node)} == {"a": 3, "b": 7, "empty": 9}


def test_reusing_a_segmentation_node_replaces_its_segments(scene, lung1):
    ct, label = lung1
    first = label.with_array((label.array > 0).astype(np.uint8))
    node = mrml_bridge.labelmap_to_segmentation_node(first, [NODULE], scene, "seg")
    second = label.with_array(np.zeros_like(first.array))
    second.array[5, 0:10, 0:10] = 1
    same = mrml_bridge.labelmap_to_segmentation_node(second, [NODULE], scene, "seg", node=node)
    assert same is node and node.GetSegmentation().GetNumberOfSegments() == 1
    assert_same(mrml_bridge.segmentation_node_to_labelmap(node), second)


def test_probability_volume_keeps_values_and_shows_threshold(scene, lung1, tmp_path):
    ct = oblique_image(lung1[0])
    probability = ct.with_array(np.clip((ct.array.astype(np.float32) + 1000) / 1400, 0, 1).astype(np.float32))
    node = mrml_bridge.probability_to_volume_node(probability, scene, "prob", threshold=0.3)
    assert_same(mrml_bridge.volume_node_to_image(node), probability)
    display = node.GetDisplayNode()
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == pytest.approx(0.3)
    assert (display.GetWindow(), display.GetLevel()) == pytest.approx((1.0, 0.5))
    assert display.GetColorNodeID() in mrml_bridge.PROBABILITY_COLOR_NODE_IDS
    with pytest.raises(InputError, match="outside"):
        mrml_bridge.probability_to_volume_node(ct.with_array(ct.array.astype(np.float32)), scene, "bad")


def test_statistics_table_round_trip(scene):
    rows = [{"segment": "infection", "volume_ml": 12.5, "percent_right_lung": 3.25, "percent_left_lung": None},
            {"segment": "nodule", "volume_ml": 0.42, "percent_right_lung": 0.0, "percent_left_lung": 0.1}]
    node = mrml_bridge.statistics_to_table_node(rows, scene, "stats")
    assert node.GetNumberOfRows() == 2 and node.GetNumberOfColumns() == 4
    back = mrml_bridge.table_node_to_rows(node)
    assert back[0]["segment"] == "infection" and back[0]["volume_ml"] == 12.5
    assert np.isnan(back[0]["percent_left_lung"]) and back[1]["percent_left_lung"] == pytest.approx(0.1)


def test_bad_inputs_raise_clear_errors(scene, tmp_path):
    with pytest.raises(DimensionError):
        mrml_bridge.image_to_volume_node(Image(np.zeros((4, 4)), (1, 1), (0, 0), np.eye(2)), scene, "flat")
    with pytest.raises(InputError, match="not found"):
        mrml_bridge.load_volume(tmp_path / "missing.nrrd", scene)
    (tmp_path / "junk.nrrd").write_text("not a nrrd")
    with pytest.raises(InputError, match="cannot read"):
        mrml_bridge.load_volume(tmp_path / "junk.nrrd", scene)
