"""Run this folder's pytest suite inside Slicer (registered by LungLesionSeg/CMakeLists.txt).

``Slicer --no-main-window --python-script run_pytest.py <folder>``; exits with pytest's status.
"""

import sys

import pytest

sys.exit(int(pytest.main([sys.argv[1] if len(sys.argv) > 1 else ".", "-q", "-m", "not slow"])))
