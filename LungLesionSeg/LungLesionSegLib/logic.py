"""The module's computation without Qt: ``process`` for console, self-test and batch use,
plus the start/import pair the widget uses to run the worker in the background.

``LungLesionSeg.LungLesionSegLogic`` (desktop Slicer) derives from :class:`SegmentationLogic`
and adds only the parameter node; tests use this class directly with ``slicer-core``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import slicer

from LungLesionSegLib import mrml_bridge
from LungLesionSegLib.background import BackgroundInference
from LungLesionSegLib.worker import (ProgressCallback, SegmentationOptions, run_segmentation,
                                     segments_from_json)
from lunglesion.errors import InputError
from lunglesion.image import Image
from lunglesion.io.atomic import atomic_output
from lunglesion.terminology import SegmentInfo


@dataclass
class ProcessOutputs:
    """Nodes produced by one run and how it ran."""

    segmentation: "slicer.vtkMRMLSegmentationNode"
    table: "slicer.vtkMRMLTableNode"
    probability: "slicer.vtkMRMLScalarVolumeNode | None"
    device: str
    seconds: float


def describe_model(entry: Any) -> str:
    """One line on a registry entry: what it segments, its validation figures and speed."""
    figures = [f"{key} {value:.3g}" for key, value in entry.metrics.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)][:3]
    outputs = ", ".join(entry.outputs)
    return f"{entry.description} Segments: {outputs}." + (f" Validation: {'; '.join(figures)}." if figures else "")


def supports_multiclass(entry: Any) -> bool:
    """True when the model outputs more than one lesion class (e.g. GGO and consolidation)."""
    return len(entry.outputs) > 1


class SegmentationLogic:
    """Segment lung lesions of a scalar volume node and turn the result into MRML nodes."""

    def __init__(self, scene: "slicer.vtkMRMLScene | None" = None) -> None:
        self.scene = scene

    @property
    def mrmlScene(self) -> "slicer.vtkMRMLScene":
        """The scene the logic works on (Slicer's, or the headless one under plain Python)."""
        if self.scene is None:
            from LungLesionSegLib.headless import ensure_scene

            self.scene = ensure_scene()
        return self.scene

    def process(self, inputVolume: "slicer.vtkMRMLScalarVolumeNode", options: SegmentationOptions | None = None,
                outputSegmentation: "slicer.vtkMRMLSegmentationNode | None" = None,
                outputTable: "slicer.vtkMRMLTableNode | None" = None,
                outputProbability: "slicer.vtkMRMLScalarVolumeNode | None" = None,
                progress: ProgressCallback | None = None,
                cancel: Callable[[], bool] | None = None) -> ProcessOutputs:
        """Run the model in this process and return the output nodes (created when not given).

        Raises ``lunglesion.errors.LungLesionError`` subclasses for bad input, unknown models
        and cancellation; falls back to the CPU when the GPU runs out of memory.
        """
        if inputVolume is None:
            raise InputError("no input volume selected")
        options = options or SegmentationOptions()
        start = time.monotonic()
        image = mrml_bridge.volume_node_to_image(inputVolume)
        result, device = run_segmentation(image, options, progress, cancel)
        return self.importResult(inputVolume, result.labelmap, result.segments, result.statistics,
                                 result.probability, options, device, time.monotonic() - start,
                                 outputSegmentation, outputTable, outputProbability)

    def startProcessing(self, inputVolume: "slicer.vtkMRMLScalarVolumeNode",
                        options: SegmentationOptions) -> BackgroundInference:
        """Write the input to a temporary NRRD and start the worker process on it."""
        import SimpleITK as sitk

        from lunglesion.io.convert import to_sitk

        if inputVolume is None:
            raise InputError("no input volume selected")
        image = mrml_bridge.volume_node_to_image(inputVolume)
        work_dir = Path(tempfile.mkdtemp(prefix="lunglesion-"))
        input_path = work_dir / "input.nrrd"
        sitk.WriteImage(to_sitk(image), str(input_path), True)
        return BackgroundInference(input_path, options.as_args(), work_dir)

    def importWorkerOutputs(self, runner: BackgroundInference, inputVolume: "slicer.vtkMRMLScalarVolumeNode",
                            options: SegmentationOptions,
                            outputSegmentation: "slicer.vtkMRMLSegmentationNode | None" = None,
                            outputTable: "slicer.vtkMRMLTableNode | None" = None,
                            outputProbability: "slicer.vtkMRMLScalarVolumeNode | None" = None) -> ProcessOutputs:
        """Load what a finished worker wrote into (new or given) output nodes."""
        import SimpleITK as sitk

        from lunglesion.io.convert import from_sitk

        out = runner.output_dir
        info = json.loads((out / "result.json").read_text())
        labelmap = from_sitk(sitk.ReadImage(str(out / "labelmap.nrrd")))
        probability_path = out / "probability.nrrd"
        probability = from_sitk(sitk.ReadImage(str(probability_path))) if probability_path.exists() else None
        return self.importResult(inputVolume, labelmap, segments_from_json(info["segments"]), info["statistics"],
                                 probability, options, info["device"], float(info["seconds"]),
                                 outputSegmentation, outputTable, outputProbability)

    def importResult(self, inputVolume: "slicer.vtkMRMLScalarVolumeNode", labelmap: Image,
                     segments: list[SegmentInfo], statistics: list[dict[str, Any]], probability: Image | None,
                     options: SegmentationOptions, device: str, seconds: float,
                     outputSegmentation: "slicer.vtkMRMLSegmentationNode | None" = None,
                     outputTable: "slicer.vtkMRMLTableNode | None" = None,
                     outputProbability: "slicer.vtkMRMLScalarVolumeNode | None" = None) -> ProcessOutputs:
        """Turn a segmentation result into nodes: segments, statistics table, probability map."""
        scene = self.mrmlScene
        base = inputVolume.GetName()
        segmentation = mrml_bridge.labelmap_to_segmentation_node(
            labelmap, segments, scene, f"{base} lesions", reference_volume=inputVolume, node=outputSegmentation)
        mrml_bridge.show_segmentation(segmentation)
        table = mrml_bridge.statistics_to_table_node(statistics, scene, f"{base} lesion statistics", outputTable)
        prob_node = None
        if options.keep_probability and probability is not None:
            prob_node = mrml_bridge.probability_to_volume_node(
                probability, scene, f"{base} lesion probability", options.threshold, outputProbability)
        for node in [segmentation, table] + ([prob_node] if prob_node else []):
            node.SetAttribute("LungLesionSeg.Model", options.model or "default")
            node.SetAttribute("LungLesionSeg.Device", device)
        return ProcessOutputs(segmentation, table, prob_node, device, seconds)


def write_statistics_csv(rows: list[dict[str, Any]], path: Path | str) -> Path:
    """Write statistics rows to CSV atomically (columns in first-seen order)."""
    import csv

    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    path = Path(path)
    with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def sample_ct_path() -> Path:
    """The bundled sample chest CT: installed beside the module's resources, or in the source
    tree's top-level ``Resources/SampleData``."""
    name = "SampleData/lung1_chest_ct.nrrd"
    module_dir = Path(__file__).resolve().parents[1]
    for candidate in (module_dir / "Resources" / name, module_dir.parent / "Resources" / name):
        if candidate.is_file():
            return candidate
    raise InputError(f"bundled sample CT not found ({name} under {module_dir / 'Resources'})")


def load_sample_with_nodule(scene: "slicer.vtkMRMLScene") -> tuple["slicer.vtkMRMLScalarVolumeNode", Image,
                                                                   "slicer.vtkMRMLSegmentationNode"]:
    """The bundled sample CT, its nodule label map and a segmentation holding the nodule
    (the fixture of the SoftMaskAnnotator and FewShotSeg self-tests)."""
    from lunglesion.io import read_labelmap
    from lunglesion.terminology import NODULE

    volume = mrml_bridge.load_volume(sample_ct_path(), scene, "lung1")
    label = read_labelmap(sample_ct_path().with_name("lung1_nodule_label.nrrd"))
    segmentation = mrml_bridge.labelmap_to_segmentation_node(label, [NODULE], scene, "nodule", volume)
    return volume, label, segmentation
