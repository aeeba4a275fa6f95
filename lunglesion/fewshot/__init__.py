"""Few-shot segmentation (RP-Net): segment a structure from a few labelled support slices."""

from lunglesion.fewshot.segment import segment_with_support

__all__ = ["segment_with_support"]
