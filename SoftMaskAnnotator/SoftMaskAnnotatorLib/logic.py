"""Soft masks of a segmentation's segments as float volume nodes, and a folder batch mode.

Uses :func:`lunglesion.softmask.make_soft_mask` for the computation and the LungLesionSeg
module's MRML bridge for the nodes; no Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import slicer

from LungLesionSegLib import mrml_bridge
from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image
from lunglesion.io.atomic import atomic_output

SOURCE_REFERENCE_ROLE = "softMaskSourceSegmentation"
DISPLAY_THRESHOLD = 0.02  # hide only the (near-)zero background of the overlay


class SoftMaskLogic:
    """Make one soft-mask volume per segment of a segmentation on a CT volume."""

    def __init__(self, scene: "slicer.vtkMRMLScene | None" = None) -> None:
        self.scene = scene

    def process(self, inputVolume: "slicer.vtkMRMLScalarVolumeNode",
                segmentation: "slicer.vtkMRMLSegmentationNode", segmentIds: list[str] | None = None,
                domain: str = "hu", band: int = 2, smoothing: float = 0.5,
                progress: Callable[[float, str], None] | None = None) -> dict[str, "slicer.vtkMRMLScalarVolumeNode"]:
        """Soft mask (float32 in [0, 1], the CT's grid) of each segment, keyed by segment ID.

        Existing soft-mask volumes made from the same segment are updated instead of duplicated.
        """
        from lunglesion.softmask import make_soft_mask

        if inputVolume is None or segmentation is None:
            raise InputError("select a CT volume and a segmentation")
        scene = self.scene or inputVolume.GetScene()
        image = mrml_bridge.volume_node_to_image(inputVolume)
        labelmap = mrml_bridge.segmentation_node_to_labelmap(segmentation, inputVolume)
        seg = segmentation.GetSegmentation()
        ids = segmentIds or [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]
        if not ids:
            raise EmptyInputError(f"segmentation '{segmentation.GetName()}' has no segments")
        outputs = {}
        for index, segment_id in enumerate(ids):
            segment = seg.GetSegment(segment_id)
            if segment is None:
                raise InputError(f"segment '{segment_id}' not found in '{segmentation.GetName()}'")
            if progress is not None:
                progress(index / len(ids), f"soft mask of {segment.GetName()}")
            mask = labelmap.with_array((labelmap.array == segment.GetLabelValue()).astype(np.uint8))
            soft = make_soft_mask(image, mask, domain=domain, band=band, sigma=smoothing)
            node = self._existingOutput(scene, segmentation, segment_id)
            node = mrml_bridge.probability_to_volume_node(soft, scene, f"{segment.GetName()} soft mask",
                                                          DISPLAY_THRESHOLD, node)
            node.SetNodeReferenceID(SOURCE_REFERENCE_ROLE, segmentation.GetID())
            for key, value in (("Segment", segment_id), ("Domain", domain), ("Band", str(band)),
                               ("Smoothing", f"{smoothing:g}")):
                node.SetAttribute(f"SoftMask.{key}", value)
            outputs[segment_id] = node
        return outputs

    @staticmethod
    def _existingOutput(scene: "slicer.vtkMRMLScene", segmentation: "slicer.vtkMRMLSegmentationNode",
                        segment_id: str) -> "slicer.vtkMRMLScalarVolumeNode | None":
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
            if (node.GetNodeReferenceID(SOURCE_REFERENCE_ROLE) == segmentation.GetID()
                    and node.GetAttribute("SoftMask.Segment") == segment_id):
                return node
        return None

def soft_masks_for_folder(input_dir: Path | str, output_dir: Path | str, domain: str = "hu", band: int = 2,
                          smoothing: float = 0.5) -> list[Path]:
    """Batch mode: every ``images/<stem>.*`` with a ``masks/<stem>.*`` -> ``<output>/<stem>.nrrd``."""
    import SimpleITK as sitk

    from lunglesion.io.convert import from_sitk, to_sitk
    from lunglesion.softmask import make_soft_mask

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    images = {p.name.split(".")[0]: p for p in sorted((input_dir / "images").glob("*")) if p.is_file()}
    masks = {p.name.split(".")[0]: p for p in sorted((input_dir / "masks").glob("*")) if p.is_file()}
    pairs = [(stem, images[stem], masks[stem]) for stem in images if stem in masks]
    if not pairs:
        raise InputError(f"no image/mask pairs in {input_dir} (expected images/<name> and masks/<name>)")
    written = []
    for stem, image_path, mask_path in pairs:
        image: Image = from_sitk(sitk.ReadImage(str(image_path)), str(image_path))
        mask = from_sitk(sitk.ReadImage(str(mask_path)), str(mask_path))
        soft = make_soft_mask(image, mask.with_array((mask.array > 0).astype(np.uint8)), domain=domain,
                              band=band, sigma=smoothing)
        target = output_dir / f"{stem}.nrrd"
        with atomic_output(target) as tmp:
            sitk.WriteImage(to_sitk(soft), str(tmp), True)
        written.append(target)
    return written
