"""Qt-free code of the SoftMaskAnnotator Slicer module (tested with slicer-core)."""
