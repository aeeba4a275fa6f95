"""Put the Slicer modules' folders on ``sys.path`` so tests import their ``*Lib`` packages
as Slicer does (each module folder is on Slicer's path)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for module in ("LungLesionSeg", "SoftMaskAnnotator", "FewShotSeg"):
    if str(ROOT / module) not in sys.path:
        sys.path.insert(0, str(ROOT / module))
