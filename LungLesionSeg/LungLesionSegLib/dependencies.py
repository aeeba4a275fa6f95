"""Install torch (and the package's other requirements) on first use inside Slicer.

Nothing happens at import time: the widget calls :func:`ensure_dependencies` when the user
presses Apply. torch comes from the SlicerPyTorch extension's ``PyTorchUtils`` (which picks
the wheel matching the GPU driver) when it is present, else from pip; the user confirms first.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from lunglesion.errors import LungLesionError

REQUIREMENTS = Path(__file__).resolve().parents[1] / "Resources" / "requirements.txt"
TORCH_REQUIREMENT = ">=2.0"


class DependencyError(LungLesionError):
    """A required Python package is missing and was not installed."""


def missing_packages() -> list[str]:
    """Import names of required packages that are not installed (torch first)."""
    names = ["torch"] + [line.split(">")[0].split("=")[0].split("<")[0].strip().lower()
                         for line in REQUIREMENTS.read_text().splitlines()
                         if line.strip() and not line.startswith("#")]
    import_names = {"pillow": "PIL", "simpleitk": "SimpleITK"}
    return [n for n in names if importlib.util.find_spec(import_names.get(n, n)) is None]


def _install_torch() -> None:
    try:
        import PyTorchUtils  # the SlicerPyTorch extension (EXTENSION_DEPENDS PyTorch)
    except ImportError:
        import slicer

        slicer.util.pip_install(f"torch{TORCH_REQUIREMENT}")
        return
    logic = PyTorchUtils.PyTorchUtilsLogic()
    if not logic.torchInstalled():
        logic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)


def _install_requirements() -> None:
    import slicer

    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):  # Slicer >= 5.12
        packaging.pip_ensure(packaging.load_requirements(str(REQUIREMENTS)), requester="LungLesionSeg",
                             prompt_install=False)
    else:
        slicer.util.pip_install(["-r", str(REQUIREMENTS)])


def ensure_dependencies(confirm: Callable[[str], bool]) -> None:
    """Install what is missing after ``confirm(message)`` returns True; raise otherwise."""
    missing = missing_packages()
    if not missing:
        return
    message = (f"LungLesionSeg needs these Python packages: {', '.join(missing)}. "
               "Download and install them now? (torch is about 1-3 GB; this takes a few minutes.)")
    if not confirm(message):
        raise DependencyError(f"not installed: {', '.join(missing)}; segmentation cannot run without them")
    if "torch" in missing:
        _install_torch()
    if any(name != "torch" for name in missing):
        _install_requirements()
    still = missing_packages()
    if still:
        raise DependencyError(f"installation failed for: {', '.join(still)}; see the Python console")
