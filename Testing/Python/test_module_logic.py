"""The modules' Logic classes against real MRML (slicer-core) on real CT data.

Tests marked ``needs_model`` run the trained default model and ``lunglesion.fewshot``;
until those exist they fail with a clear ImportError / UnknownModelError.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import slicer_paths  # noqa: F401  (module folders on sys.path)

slicer = pytest.importorskip("slicer")

from FewShotSegLib.logic import FewShotLogic  # noqa: E402
from LungLesionSegLib import headless, mrml_bridge  # noqa: E402
from LungLesionSegLib.background import BackgroundInference  # noqa: E402
from LungLesionSegLib.logic import (SegmentationLogic, SegmentationOptions, load_sample_with_nodule,  # noqa: E402
                                   sample_ct_path)
from lunglesion.io import read_image, write_image  # noqa: E402
from lunglesion.metrics import dice  # noqa: E402
from SoftMaskAnnotatorLib.logic import SoftMaskLogic, soft_masks_for_folder  # noqa: E402



@pytest.fixture()
def scene():
    return headless.install_headless_context()


@pytest.fixture(scope="module")
def lung1_crop(lung1):
    image, label = lung1
    centre = np.round(np.argwhere(label.array > 0).mean(axis=0)).astype(int)  # the nodule (z, y, x)
    box = tuple(slice(max(c - h, 0), c + h) for c, h in zip(centre, (6, 48, 48)))
    start = image.index_to_physical(np.array([box[2].start, box[1].start, box[0].start], dtype=float))
    crop = lambda img: type(img)(array=np.ascontiguousarray(img.array[box]), spacing=img.spacing,  # noqa: E731
                                 origin=tuple(start), direction=img.direction)
    ct, nodule = crop(image), crop(label)
    assert nodule.array.sum() == (label.array > 0).sum(), "the crop must hold the whole nodule"
    return ct, nodule.with_array((nodule.array > 0).astype(np.uint8))


def nodule_segmentation(scene, ct, nodule):
    from lunglesion.terminology import NODULE

    volume = mrml_bridge.image_to_volume_node(ct, scene, "lung1")
    segmentation = mrml_bridge.labelmap_to_segmentation_node(nodule, [NODULE], scene, "nodule", volume)
    return volume, segmentation


def test_soft_mask_logic_makes_one_overlay_per_segment(scene, lung1_crop):
    ct, nodule = lung1_crop
    volume, segmentation = nodule_segmentation(scene, ct, nodule)
    logic = SoftMaskLogic(scene)
    outputs = logic.process(volume, segmentation, band=2, smoothing=0.5)
    assert len(outputs) == 1
    node = next(iter(outputs.values()))
    soft = mrml_bridge.volume_node_to_image(node)
    assert soft.same_geometry(ct) and soft.array.dtype == np.float32
    assert 0.0 <= soft.array.min() and soft.array.max() <= 1.0
    inside, outside = soft.array[nodule.array > 0], soft.array[nodule.array == 0]
    assert inside.mean() > 0.5 > outside.mean()
    assert node.GetNodeReferenceID("softMaskSourceSegmentation") == segmentation.GetID()
    again = logic.process(volume, segmentation, band=1)
    assert next(iter(again.values())) is node and node.GetAttribute("SoftMask.Band") == "1"


def test_soft_mask_batch_over_a_folder(lung1_crop, tmp_path):
    ct, nodule = lung1_crop
    (tmp_path / "in" / "images").mkdir(parents=True)
    (tmp_path / "in" / "masks").mkdir()
    write_image(ct, tmp_path / "in" / "images" / "case1.nrrd")
    write_image(nodule, tmp_path / "in" / "masks" / "case1.nrrd")
    written = soft_masks_for_folder(tmp_path / "in", tmp_path / "out")
    assert [p.name for p in written] == ["case1.nrrd"]
    soft = read_image(written[0])
    assert soft.same_geometry(ct) and soft.array[nodule.array > 0].mean() > 0.5


def test_fewshot_support_slices_report_labelled_area(scene, lung1_crop):
    ct, nodule = lung1_crop
    volume, segmentation = nodule_segmentation(scene, ct, nodule)
    segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
    slices = FewShotLogic(scene).labelledSlices(volume, segmentation, segment_id)
    counts = nodule.array.reshape(nodule.array.shape[0], -1).sum(axis=1)
    assert [s.index for s in slices] == list(np.flatnonzero(counts))
    pixel = ct.spacing[0] * ct.spacing[1]
    assert [round(s.area_mm2, 3) for s in slices] == [round(float(counts[s.index]) * pixel, 3) for s in slices]


def test_worker_cancel_kills_the_process(scene, lung1_crop, tmp_path):
    ct, _ = lung1_crop
    write_image(ct, tmp_path / "in.nrrd")
    runner = BackgroundInference(tmp_path / "in.nrrd", SegmentationOptions(device="cpu").as_args(), tmp_path / "w")
    runner.cancel()
    assert not runner.running
    events = runner.poll()
    assert [e.event for e in events][-1] == "error" and events[-1].details.get("cancelled")
    assert runner.finished and runner.poll() == []
    runner.cleanup()
    assert not (tmp_path / "w").exists()


def test_worker_reports_bad_input_as_one_error_line(tmp_path):
    runner = BackgroundInference(tmp_path / "missing.nrrd", SegmentationOptions().as_args(), tmp_path / "w")
    deadline = time.monotonic() + 60
    events = []
    while not runner.finished and time.monotonic() < deadline:
        events += runner.poll()
        time.sleep(0.1)
    assert runner.finished and runner.process.returncode == 2
    assert events[-1].event == "error" and "input volume not found" in events[-1].message
    runner.cleanup()


@pytest.mark.slow
def test_needs_model_process_on_sample_ct(scene):
    """Logic.process with the registry's default model on CPU on the bundled sample CT."""
    ct = read_image(sample_ct_path())
    volume = mrml_bridge.image_to_volume_node(ct, scene, "lung1")
    fractions = []
    outputs = SegmentationLogic(scene).process(volume, SegmentationOptions(device="cpu", keep_probability=True),
                                               progress=lambda f, m: fractions.append(f))
    labelmap = mrml_bridge.segmentation_node_to_labelmap(outputs.segmentation, volume)
    probability = mrml_bridge.volume_node_to_image(outputs.probability)
    assert labelmap.same_geometry(ct) and probability.same_geometry(ct)
    assert np.all(probability.array[labelmap.array > 0] >= 0.5)
    assert outputs.table.GetNumberOfRows() == len(mrml_bridge.segment_infos(outputs.segmentation))
    assert outputs.device == "cpu" and fractions and max(fractions) <= 1.0
    rows = {outputs.table.GetCellText(r, 0): r for r in range(outputs.table.GetNumberOfRows())}
    assert "infection" in rows  # lesion volume and lung involvement are reported per segment


@pytest.mark.slow
def test_needs_model_fewshot_from_one_slice(scene, lung1_crop):
    """Interactive case: the labelled slice is kept exactly, the rest is segmented on the volume's grid."""
    ct, nodule = lung1_crop
    volume, segmentation = nodule_segmentation(scene, ct, nodule)
    segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
    logic = FewShotLogic(scene)
    labelled = [s.index for s in logic.labelledSlices(volume, segmentation, segment_id)]
    middle = labelled[len(labelled) // 2]
    fractions = []
    result_id = logic.process(volume, segmentation, segment_id, [middle], iterations=2,
                              progress=lambda f, m: fractions.append(f))
    result = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, result_id, volume) > 0
    truth = nodule.array > 0
    assert result_id != segment_id and result.shape == truth.shape
    assert np.array_equal(logic.history[0].result, result)
    assert np.array_equal(result[middle], truth[middle])  # the support slice keeps its label exactly
    merged = mrml_bridge.segmentation_node_to_labelmap(segmentation, volume)
    assert merged.same_geometry(ct)
    # the nodule's neighbouring slices are found (the light weights do not yet stop where the
    # nodule ends: see test_fewshot_segment.py::test_interactive_nodule_beats_copy_nearest)
    near = [middle - 1, middle + 1]
    assert dice(result[near], truth[near]) > 0.4 and fractions and max(fractions) <= 1.0
    # a second run with one more support slice replaces the result; the source segment is untouched
    extra = labelled[0]
    again = logic.process(volume, segmentation, segment_id, [extra, middle], iterations=2, result_segment_id=result_id)
    result2 = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, result_id, volume) > 0
    assert again == result_id and len(logic.history) == 2 and logic.history[0].support == [middle]
    assert np.array_equal(result2[[extra, middle]], truth[[extra, middle]])
    source = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume) > 0
    assert np.array_equal(source, truth)


def test_sample_ct_is_bundled():
    assert sample_ct_path().name == "lung1_chest_ct.nrrd"


def test_self_test_fixture_loads_the_sample_nodule(scene):
    """The SoftMaskAnnotator and FewShotSeg self-tests start from this: the nodule as a segment."""
    volume, label, segmentation = load_sample_with_nodule(scene)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
    voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume) > 0
    assert np.array_equal(voxels, label.array > 0) and voxels.sum() == 837
