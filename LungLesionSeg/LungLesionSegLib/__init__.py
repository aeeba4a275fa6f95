"""Qt-free code of the LungLesionSeg Slicer module (MRML bridge, logic, worker, installer).

Everything here imports in desktop Slicer and with the ``slicer-core`` wheel; only
``LungLesionSeg.py`` (the thin module shell) uses Qt.
"""
