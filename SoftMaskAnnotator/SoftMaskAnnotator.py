"""SoftMaskAnnotator: soft (partial-volume) masks of segments, shown as colour overlays.

Thin Slicer shell over ``SoftMaskAnnotatorLib`` (Qt-free, tested with slicer-core).
"""

from __future__ import annotations

from typing import Annotated

import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from SoftMaskAnnotatorLib.logic import SoftMaskLogic, soft_masks_for_folder


class SoftMaskAnnotator(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Soft Mask Annotator")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["LungLesionSeg developers"]
        self.parent.helpText = _("Turns hard segments into soft masks (values 0-1 at the lesion edge, "
                                 "following the CT's partial-volume intensities), one float volume per segment.")
        self.parent.acknowledgementText = _("Part of the LungLesionSeg extension.")


@parameterNodeWrapper
class SoftMaskAnnotatorParameterNode:
    """Choices stored in the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    domain: Annotated[str, Choice(["hu", "uint8", "zscore"])] = "hu"
    band: Annotated[int, WithinRange(1, 5)] = 2
    smoothing: Annotated[float, WithinRange(0.0, 2.0)] = 0.5


class SoftMaskAnnotatorWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Panel: CT, segmentation, options, Apply; batch folder conversion."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SoftMaskAnnotator.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SoftMaskAnnotatorLogic()
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.batchApplyButton.connect("clicked(bool)", self.onBatchButton)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, lambda *a: self.setParameterNode(None))
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, lambda *a: self.initializeParameterNode())
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        p = self._parameterNode
        self.ui.applyButton.enabled = bool(p and p.inputVolume and p.segmentation)

    def onApplyButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to compute soft masks."), waitCursor=True):
            outputs = self.logic.process(p.inputVolume, p.segmentation, domain=p.domain, band=p.band,
                                         smoothing=p.smoothing)
            first = next(iter(outputs.values()))
            slicer.util.setSliceViewerLayers(background=p.inputVolume, foreground=first, foregroundOpacity=0.5)
            self.ui.statusLabel.text = _("{count} soft mask volume(s) made.").format(count=len(outputs))

    def onBatchButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Batch conversion failed."), waitCursor=True):
            written = soft_masks_for_folder(self.ui.batchInputDirectoryButton.directory,
                                            self.ui.batchOutputDirectoryButton.directory,
                                            domain=p.domain, band=p.band, smoothing=p.smoothing)
            self.ui.statusLabel.text = _("{count} soft masks written.").format(count=len(written))


class SoftMaskAnnotatorLogic(ScriptedLoadableModuleLogic, SoftMaskLogic):
    """``SoftMaskAnnotatorLogic().process(volume, segmentation)``; computation in SoftMaskAnnotatorLib."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        SoftMaskLogic.__init__(self, slicer.mrmlScene)

    def getParameterNode(self):
        return SoftMaskAnnotatorParameterNode(super().getParameterNode())


class SoftMaskAnnotatorTest(ScriptedLoadableModuleTest):
    """Soft mask of the bundled sample CT's nodule label."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_SoftMaskOfSampleNodule()

    def test_SoftMaskOfSampleNodule(self) -> None:
        from LungLesionSegLib.logic import load_sample_with_nodule

        volume, label, segmentation = load_sample_with_nodule(slicer.mrmlScene)
        outputs = SoftMaskAnnotatorLogic().process(volume, segmentation)
        soft = slicer.util.arrayFromVolume(next(iter(outputs.values())))
        hard = label.array > 0
        self.assertGreater(float(soft[hard].mean()), float(soft[~hard].mean()))
        self.assertTrue(0.0 <= float(soft.min()) and float(soft.max()) <= 1.0)
