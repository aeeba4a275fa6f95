"""Qt-free code of the FewShotSeg Slicer module (tested with slicer-core)."""
