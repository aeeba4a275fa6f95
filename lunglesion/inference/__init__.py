"""Inference: slice prediction, the segmentation pipeline, nodule click-to-segment."""

from lunglesion.inference.pipeline import SegmentationResult, segment_image

__all__ = ["SegmentationResult", "segment_image"]
