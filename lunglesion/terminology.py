"""Segment descriptions with standard codes (DICOM "Segmentation category and type").

A :class:`SegmentInfo` names one label value of a labelmap, its display colour and its
coded meaning. The codes follow DICOM PS3.16 / SNOMED CT as 3D Slicer uses them:

* anatomy: category SCT 123037004 "Anatomical Structure", type SCT 39607008 "Lung",
  modifier SCT 24028007 "Right" / SCT 7771000 "Left" (Slicer's General Anatomy list);
* findings: category SCT 49755003 "Morphologically Altered Structure" with type
  SCT 52988006 "Lesion" (lung infection, any kind), DCM 112120 "Ground glass opacity"
  (DICOM CID 6104 "Abnormal Opacity Finding or Feature"), SCT 95436008 "Lung consolidation",
  SCT 27925004 "Nodule" (CID 6104);
* anything else (few-shot structures): Slicer's default SCT 85756007 "Tissue".

Colours are RGB floats in [0, 1]; the lung colour is Slicer's (197, 165, 145), the lesion
colours are our choice, picked to stand out on a grey CT.
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass, replace

Code = tuple[str, str, str]
"""A coded concept ``(code value, coding scheme designator, code meaning)``."""

SLICER_CATEGORY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
SLICER_ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"
TERMINOLOGY_TAG = "TerminologyEntry"

ANATOMICAL_STRUCTURE: Code = ("123037004", "SCT", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED: Code = ("49755003", "SCT", "Morphologically Altered Structure")
TISSUE: Code = ("85756007", "SCT", "Tissue")


@dataclass(frozen=True)
class SegmentInfo:
    """One labelled structure: name, label value, colour and standard codes."""

    name: str
    label_value: int
    color: tuple[float, float, float]
    category: Code = TISSUE
    type: Code = TISSUE
    type_modifier: Code | None = None

    def with_label(self, label_value: int) -> "SegmentInfo":
        """The same structure stored under another label value."""
        return replace(self, label_value=int(label_value))

    def terminology_entry(self) -> str:
        """The entry string Slicer stores in a segment's ``TerminologyEntry`` tag."""
        modifier = _format_code(self.type_modifier)
        return "~".join([SLICER_CATEGORY_CONTEXT, _format_code(self.category), _format_code(self.type),
                         modifier, SLICER_ANATOMY_CONTEXT, "^^", "^^"])


def _format_code(code: Code | None) -> str:
    """Slicer writes a code as ``scheme^value^meaning``; an absent code as ``^^``."""
    if code is None:
        return "^^"
    value, scheme, meaning = code
    return f"{scheme}^{value}^{meaning}"


def _parse_code(text: str) -> Code | None:
    parts = text.split("^")
    if len(parts) != 3 or not parts[1]:
        return None
    scheme, value, meaning = parts
    return (value, scheme, meaning)


def parse_terminology_entry(entry: str) -> tuple[Code, Code, Code | None]:
    """``(category, type, type_modifier)`` of a Slicer ``TerminologyEntry`` string."""
    fields = entry.split("~")
    if len(fields) < 4:
        raise ValueError(f"not a Slicer terminology entry: {entry!r}")
    category = _parse_code(fields[1]) or TISSUE
    type_ = _parse_code(fields[2]) or TISSUE
    return category, type_, _parse_code(fields[3])


def _rgb(r: int, g: int, b: int) -> tuple[float, float, float]:
    return (r / 255.0, g / 255.0, b / 255.0)


LUNG_CODE: Code = ("39607008", "SCT", "Lung")
RIGHT: Code = ("24028007", "SCT", "Right")
LEFT: Code = ("7771000", "SCT", "Left")

LUNG = SegmentInfo("lung", 1, _rgb(197, 165, 145), ANATOMICAL_STRUCTURE, LUNG_CODE)
RIGHT_LUNG = SegmentInfo("right lung", 1, _rgb(197, 165, 145), ANATOMICAL_STRUCTURE, LUNG_CODE, RIGHT)
LEFT_LUNG = SegmentInfo("left lung", 2, _rgb(128, 174, 128), ANATOMICAL_STRUCTURE, LUNG_CODE, LEFT)
INFECTION = SegmentInfo("infection", 1, _rgb(230, 60, 50), MORPHOLOGICALLY_ALTERED,
                        ("52988006", "SCT", "Lesion"))
GROUND_GLASS_OPACITY = SegmentInfo("ground-glass opacity", 1, _rgb(250, 210, 60), MORPHOLOGICALLY_ALTERED,
                                   ("112120", "DCM", "Ground glass opacity"))
CONSOLIDATION = SegmentInfo("consolidation", 2, _rgb(200, 40, 120), MORPHOLOGICALLY_ALTERED,
                            ("95436008", "SCT", "Lung consolidation"))
NODULE = SegmentInfo("nodule", 1, _rgb(90, 200, 250), MORPHOLOGICALLY_ALTERED, ("27925004", "SCT", "Nodule"))

STANDARD_SEGMENTS: tuple[SegmentInfo, ...] = (LUNG, RIGHT_LUNG, LEFT_LUNG, INFECTION, GROUND_GLASS_OPACITY,
                                              CONSOLIDATION, NODULE)


def segment_for_structure(name: str, label_value: int = 1) -> SegmentInfo:
    """The standard segment called ``name`` (case-insensitive), else a "Tissue" segment.

    Unknown structures (few-shot targets) get a stable colour derived from their name.
    """
    key = name.strip().lower().replace("_", " ")
    for segment in STANDARD_SEGMENTS:
        if segment.name == key:
            return segment.with_label(label_value)
    hue = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    color = colorsys.hsv_to_rgb(hue, 0.65, 0.9)
    return SegmentInfo(name.strip(), int(label_value), (color[0], color[1], color[2]))
