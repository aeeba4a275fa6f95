"""Few-shot segmentation of a volume from a few labelled axial slices of one segment.

The support set is a list of slice indices (the ``k`` axis of the volume's array, which must
be the axial one) on which the user labelled the segment;
:func:`lunglesion.fewshot.segment_with_support` gets the volume itself as support with a
label map holding only those slices (its interactive case: they keep their labels exactly)
and segments the rest. Results go into a new segment (or replace the previous result); a
history keeps each run's support set and result so the user can go back. No Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import slicer

from LungLesionSegLib import mrml_bridge
from lunglesion.errors import EmptyInputError, InputError
from lunglesion.image import Image
from lunglesion.preprocessing.slicing import axial_view


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


def support_labelmap(volume: Image, mask: np.ndarray, support_slices: list[int]) -> Image:
    """Label map (value 1, ``volume``'s geometry) holding ``mask`` on the support slices only.

    Passed with the volume itself as support, it selects the interactive case of
    :func:`lunglesion.fewshot.segment_with_support`: the support slices keep their labels exactly.
    """
    partial = np.zeros(mask.shape, dtype=np.uint8)
    partial[support_slices] = mask[support_slices]
    return volume.with_array(partial)


@dataclass
class FewShotLogic:
    """Support-set bookkeeping and runs on a volume + segmentation."""

    scene: "slicer.vtkMRMLScene | None" = None
    history: list[Run] = field(default_factory=list)

    def _segmentMask(self, volume, segmentation, segment_id: str) -> np.ndarray:
        """The segment alone as a bool array on the volume's grid (other segments may overlap it)."""
        if segmentation.GetSegmentation().GetSegment(segment_id) is None:
            raise InputError(f"segment '{segment_id}' not found in '{segmentation.GetName()}'")
        return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume) > 0

    def labelledSlices(self, volume, segmentation, segment_id: str) -> list[SupportSlice]:
        """Slices where the segment has voxels, with their area (candidates for the support set)."""
        mask = self._segmentMask(volume, segmentation, segment_id)
        spacing = volume.GetSpacing()
        counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
        return [SupportSlice(int(k), float(counts[k] * spacing[0] * spacing[1])) for k in np.flatnonzero(counts)]

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
        mask = self._segmentMask(volume, segmentation, segment_id)
        bad = [k for k in support_slices if not 0 <= k < image.array.shape[0]]
        if bad:
            raise InputError(f"support slices {bad} are outside the volume (0..{image.array.shape[0] - 1})")
        if axial_view(image).axes[0] != 0:
            raise InputError("the volume's k slices are not axial; few-shot segmentation works on axial slices "
                             "(resample the volume to an axial orientation first)")
        empty = [k for k in support_slices if not mask[k].any()]
        if empty:
            raise InputError(f"support slices {empty} hold no voxels of segment '{segment_id}'")
        support = [(image, support_labelmap(image, mask, support_slices))]
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
