"""Few-shot segmentation of a volume from a few labelled axial slices of one segment.

The support set is a list of slice indices (the ``k`` axis of the volume's array) on which
the user labelled the segment; :func:`lunglesion.fewshot.segment_with_support` segments
the rest. Results go into a new segment (or replace the previous result); a history keeps
each run's support set and result so the user can go back. No Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import slicer

from LungLesionSegLib import mrml_bridge
from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image


@dataclass
class SupportSlice:
    """One labelled slice: its index along ``k`` and the labelled area in mm^2."""

    index: int
    area_mm2: float


@dataclass
class Run:
    """One few-shot run: the support set used and the labelmap it produced."""

    support: list[int]
    result: np.ndarray
    segment_id: str


def slice_pair(image: Image, mask: np.ndarray, k: int) -> tuple[Image, Image]:
    """The 2D image and mask of slice ``k`` (in-plane spacing, origin and direction kept)."""
    origin = image.index_to_physical(np.array([0.0, 0.0, float(k)]))
    geometry = dict(spacing=image.spacing[:2], origin=tuple(origin[:2]), direction=image.direction[:2, :2])
    return (Image(array=image.array[k].copy(), **geometry),
            Image(array=mask[k].astype(np.uint8), **geometry))


@dataclass
class FewShotLogic:
    """Support-set bookkeeping and runs on a volume + segmentation."""

    scene: "slicer.vtkMRMLScene | None" = None
    history: list[Run] = field(default_factory=list)

    def _segmentMask(self, volume, segmentation, segment_id: str) -> tuple[Image, np.ndarray]:
        segment = segmentation.GetSegmentation().GetSegment(segment_id)
        if segment is None:
            raise InputError(f"segment '{segment_id}' not found in '{segmentation.GetName()}'")
        labelmap = mrml_bridge.segmentation_node_to_labelmap(segmentation, volume)
        return labelmap, labelmap.array == segment.GetLabelValue()

    def labelledSlices(self, volume, segmentation, segment_id: str) -> list[SupportSlice]:
        """Slices where the segment has voxels, with their area (candidates for the support set)."""
        labelmap, mask = self._segmentMask(volume, segmentation, segment_id)
        pixel_area = labelmap.spacing[0] * labelmap.spacing[1]
        counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
        return [SupportSlice(int(k), float(counts[k] * pixel_area)) for k in np.flatnonzero(counts)]

    def process(self, volume, segmentation, segment_id: str, support_slices: list[int],
                model: str = "rpnet", iterations: int = 10, result_segment_id: str | None = None,
                progress: Callable[[float, str], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> str:
        """Segment the volume from the support slices into ``result_segment_id`` (new when None).

        Returns the result segment's ID and appends the run to :attr:`history`.
        """
        from lunglesion.fewshot import segment_with_support

        if not support_slices:
            raise EmptyInputError("the support set is empty: label the structure on a slice and add it")
        image = mrml_bridge.volume_node_to_image(volume)
        _, mask = self._segmentMask(volume, segmentation, segment_id)
        bad = [k for k in support_slices if not 0 <= k < image.array.shape[0]]
        if bad:
            raise InputError(f"support slices {bad} are outside the volume (0..{image.array.shape[0] - 1})")
        support = [slice_pair(image, mask, k) for k in support_slices]
        result = segment_with_support(image, support, model=model, iterations=iterations, label=1,
                                      progress=progress, cancel=cancel)
        result_segment_id = self._writeSegment(volume, segmentation, segment_id, result.array > 0,
                                               result_segment_id)
        self.history.append(Run(list(support_slices), result.array > 0, result_segment_id))
        return result_segment_id

    def _writeSegment(self, volume, segmentation, source_id: str, mask: np.ndarray,
                      segment_id: str | None) -> str:
        seg = segmentation.GetSegmentation()
        if segment_id is None or seg.GetSegment(segment_id) is None:
            source = seg.GetSegment(source_id)
            segment_id = seg.AddEmptySegment("", f"{source.GetName()} (few-shot)", source.GetColor())
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), segmentation, segment_id, volume)
        return segment_id

    def restore(self, index: int, volume, segmentation) -> Run:
        """Put run ``index``'s result back into its segment (going back in the history)."""
        run = self.history[index]
        self._writeSegment(volume, segmentation, run.segment_id, run.result, run.segment_id)
        return run
