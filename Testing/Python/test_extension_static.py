"""Static checks of the Slicer extension: CMake file lists, .ui files, widget names, icons."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["LungLesionSeg", "SoftMaskAnnotator", "FewShotSeg"]


def cmake_files(module: str) -> list[str]:
    """File names listed in a module's CMakeLists.txt, ${MODULE_NAME} expanded."""
    text = (ROOT / module / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", module)
    names = []
    for block in re.findall(r"set\(MODULE_PYTHON_(?:SCRIPTS|RESOURCES)(.*?)\)", text, re.S):
        names += block.split()
    return names


def ui_widgets(module: str) -> dict[str, ET.Element]:
    tree = ET.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui")
    return {w.get("name"): w for w in tree.iter("widget")}


@pytest.mark.parametrize("module", MODULES)
def test_every_file_named_in_cmake_exists_and_every_lib_file_is_named(module):
    names = cmake_files(module)
    assert f"{module}.py" in names and f"Resources/UI/{module}.ui" in names
    missing = [n for n in names if not (ROOT / module / n).is_file()]
    assert not missing, f"{module}/CMakeLists.txt names missing files: {missing}"
    lib_files = sorted(str(p.relative_to(ROOT / module)) for p in (ROOT / module / f"{module}Lib").glob("*.py"))
    unlisted = [f for f in lib_files if f not in names]
    assert not unlisted, f"not installed (missing from {module}/CMakeLists.txt): {unlisted}"
    resources = [str(p.relative_to(ROOT / module)) for p in (ROOT / module / "Resources").rglob("*") if p.is_file()]
    assert sorted(set(resources) - set(names)) == []


def test_top_level_cmake_has_metadata_and_every_module():
    text = (ROOT / "CMakeLists.txt").read_text()
    for key in ("HOMEPAGE", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS"):
        assert re.search(rf'set\(EXTENSION_{key} "[^"]+"\)', text), key
    assert 'set(EXTENSION_CATEGORY "Segmentation")' in text
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    assert re.findall(r"add_subdirectory\((\w+)\)", text) == MODULES
    assert "lunglesion/*.py" in text and "Resources/Models/*" in text
    assert (ROOT / "Resources" / "Scripts" / "batch_segment.py").is_file()


@pytest.mark.parametrize("module", MODULES)
def test_ui_parses_and_every_widget_used_exists(module):
    widgets = ui_widgets(module)
    source = (ROOT / module / f"{module}.py").read_text()
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    assert used, "module code uses no widgets"
    assert sorted(used - set(widgets)) == []


@pytest.mark.parametrize("module", MODULES)
def test_parameter_names_in_ui_match_the_parameter_node(module):
    tree = ast.parse((ROOT / module / f"{module}.py").read_text())
    wrapper = next(node for node in tree.body if isinstance(node, ast.ClassDef)
                   and any(getattr(d, "id", "") == "parameterNodeWrapper" for d in node.decorator_list))
    fields = {stmt.target.id for stmt in wrapper.body if isinstance(stmt, ast.AnnAssign)}
    bound = set()
    for widget in ui_widgets(module).values():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound.add(prop.find("string").text)
    assert bound and sorted(bound - fields) == []


@pytest.mark.parametrize("module", MODULES)
def test_module_follows_slicer_conventions(module):
    tree = ast.parse((ROOT / module / f"{module}.py").read_text())
    classes = {node.name: [getattr(b, "id", "") for b in node.bases] for node in tree.body
               if isinstance(node, ast.ClassDef)}
    assert classes[module] == ["ScriptedLoadableModule"]
    assert classes[f"{module}Widget"][0] == "ScriptedLoadableModuleWidget"
    assert classes[f"{module}Logic"][0] == "ScriptedLoadableModuleLogic"
    assert classes[f"{module}Test"] == ["ScriptedLoadableModuleTest"]
    icon = PILImage.open(ROOT / module / "Resources" / "Icons" / f"{module}.png")
    assert icon.size == (128, 128)


def test_lib_packages_do_not_import_qt():
    for module in MODULES:
        for path in (ROOT / module / f"{module}Lib").glob("*.py"):
            tree = ast.parse(path.read_text())
            imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                        for alias in node.names}
            imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                         if isinstance(node, ast.ImportFrom)}
            assert not imported & {"qt", "ctk", "PythonQt"}, path
