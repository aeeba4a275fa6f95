"""Few-shot segmentation (RP-Net): segment a structure from a few labelled support slices.

Public API: :func:`lunglesion.fewshot.segment.segment_with_support`.
"""
