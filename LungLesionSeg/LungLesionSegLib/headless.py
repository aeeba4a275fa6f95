"""A minimal Slicer application context for plain Python with the ``slicer-core`` wheel.

Desktop Slicer (and ``Slicer --no-main-window``) already provides ``slicer.mrmlScene`` and
``slicer.modules``; under plain Python they do not exist, and a few ``slicer.util`` helpers
and module logics need them. :func:`ensure_scene` returns the scene in both cases and only
builds the stand-in when there is no Slicer application.
"""

from __future__ import annotations

import types

import slicer


def in_slicer_application() -> bool:
    """True inside a real Slicer process (GUI or ``--no-main-window``)."""
    return hasattr(slicer, "app")


def install_headless_context(scene: "slicer.vtkMRMLScene | None" = None) -> "slicer.vtkMRMLScene":
    """Set ``slicer.mrmlScene`` and ``slicer.modules`` (colors, volumes, segmentations,
    subject hierarchy logics) on a fresh or given scene; never fakes ``slicer.app``."""
    scene = scene or slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.GetColorLogic().SetMRMLScene(scene)
    app_logic.GetColorLogic().AddDefaultColorNodes()
    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetName("default")
    scene.AddNode(crosshair)
    modules = {}
    for name, cls in [("Colors", slicer.vtkMRMLColorLogic), ("Volumes", slicer.vtkSlicerVolumesLogic),
                      ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
                      ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic)]:
        logic = cls()
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app_logic)
        app_logic.SetModuleLogic(name, logic)
        modules[name.lower()] = types.SimpleNamespace(logic=lambda lg=logic: lg)
    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(**modules)
    slicer._lunglesion_app_logic = app_logic  # keep the application logic alive
    return scene


def ensure_scene() -> "slicer.vtkMRMLScene":
    """The application's scene inside Slicer, else a fresh headless context's scene."""
    if in_slicer_application():
        return slicer.mrmlScene
    if getattr(slicer, "mrmlScene", None) is None:
        return install_headless_context()
    return slicer.mrmlScene
