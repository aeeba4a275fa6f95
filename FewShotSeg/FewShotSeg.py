"""FewShotSeg: segment a structure in a volume from a few slices labelled with the Segment Editor.

Thin Slicer shell over ``FewShotSegLib`` (Qt-free, tested with slicer-core).
"""

from __future__ import annotations

from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from FewShotSegLib.logic import FewShotLogic


class FewShotSeg(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Few-Shot Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["LungLesionSeg developers"]
        self.parent.helpText = _("Label a structure on one or a few slices, add them to the support set and "
                                 "press Apply: RP-Net segments the rest of the volume. Fix a slice, add it, run again.")
        self.parent.acknowledgementText = _("Part of the LungLesionSeg extension.")


@parameterNodeWrapper
class FewShotSegParameterNode:
    """Choices stored in the scene (the segment selector is wired by hand)."""

    inputVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    segmentId: str = ""
    iterations: Annotated[int, WithinRange(1, 50)] = 10
    supportSlices: list[int]
    resultSegmentId: str = ""


class FewShotSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Panel: volume, segment, support slices (add / remove / jump), Apply, history."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/FewShotSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = FewShotSegLogic()
        self.ui.segmentSelectorWidget.connect("currentNodeChanged(vtkMRMLNode*)", self.onSegmentationChanged)
        self.ui.segmentSelectorWidget.connect("currentSegmentChanged(QString)", self.onSegmentChanged)
        self.ui.addSliceButton.connect("clicked(bool)", self.onAddSlice)
        self.ui.removeSliceButton.connect("clicked(bool)", self.onRemoveSlice)
        self.ui.supportTableWidget.connect("cellDoubleClicked(int,int)", self.onJumpToSlice)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.restoreButton.connect("clicked(bool)", self.onRestore)
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
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
            self.ui.segmentSelectorWidget.setCurrentNode(self._parameterNode.segmentation)
            self.ui.segmentSelectorWidget.setCurrentSegmentID(self._parameterNode.segmentId)
            self._updateGui()

    def onSegmentationChanged(self, node) -> None:
        if self._parameterNode:
            self._parameterNode.segmentation = node

    def onSegmentChanged(self, segmentId: str) -> None:
        if self._parameterNode:
            self._parameterNode.segmentId = segmentId

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        areas = {}
        if p.inputVolume and p.segmentation and p.segmentId:
            areas = {s.index: s.area_mm2 for s in self.logic.labelledSlices(p.inputVolume, p.segmentation, p.segmentId)}
        table = self.ui.supportTableWidget
        table.setRowCount(len(p.supportSlices))
        for row, k in enumerate(p.supportSlices):
            table.setItem(row, 0, qt.QTableWidgetItem(str(k)))
            table.setItem(row, 1, qt.QTableWidgetItem(f"{areas.get(k, 0.0):.1f}"))
        self.ui.applyButton.enabled = bool(p.inputVolume and p.segmentation and p.segmentId and p.supportSlices)
        self.ui.historyComboBox.clear()
        for i, run in enumerate(self.logic.history):
            self.ui.historyComboBox.addItem(_("Run {n}: slices {slices}").format(n=i + 1, slices=run.support))

    def _currentSliceIndex(self) -> int:
        """The ``k`` index of the Red view's slice in the input volume."""
        volume = self._parameterNode.inputVolume
        sliceNode = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
        center = [sliceNode.GetSliceToRAS().GetElement(r, 3) for r in range(3)] + [1.0]
        rasToIjk = vtk.vtkMatrix4x4()
        volume.GetRASToIJKMatrix(rasToIjk)
        return int(round(rasToIjk.MultiplyPoint(center)[2]))

    def onAddSlice(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not add the slice."), waitCursor=False):
            k = self._currentSliceIndex()
            slices = list(self._parameterNode.supportSlices)
            if k not in slices:
                self._parameterNode.supportSlices = sorted(slices + [k])

    def onRemoveSlice(self) -> None:
        row = self.ui.supportTableWidget.currentRow()
        slices = list(self._parameterNode.supportSlices)
        if 0 <= row < len(slices):
            del slices[row]
            self._parameterNode.supportSlices = slices

    def onJumpToSlice(self, row: int, column: int) -> None:
        volume = self._parameterNode.inputVolume
        k = self._parameterNode.supportSlices[row]
        ijkToRas = vtk.vtkMatrix4x4()
        volume.GetIJKToRASMatrix(ijkToRas)
        dims = volume.GetImageData().GetDimensions()
        ras = ijkToRas.MultiplyPoint([dims[0] / 2, dims[1] / 2, k, 1.0])
        slicer.modules.markups.logic().JumpSlicesToLocation(ras[0], ras[1], ras[2], True)

    def onApplyButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Few-shot segmentation failed."), waitCursor=True):
            p.resultSegmentId = self.logic.process(p.inputVolume, p.segmentation, p.segmentId, list(p.supportSlices),
                                                   iterations=p.iterations,
                                                   result_segment_id=p.resultSegmentId or None,
                                                   progress=lambda f, m: self._showProgress(f, m))
            self.ui.statusLabel.text = _("Done: result in segment '{name}'.").format(
                name=p.segmentation.GetSegmentation().GetSegment(p.resultSegmentId).GetName())
            self._updateGui()

    def _showProgress(self, fraction: float, message: str) -> None:
        self.ui.statusLabel.text = f"{int(100 * fraction)}% {message}"
        slicer.app.processEvents()

    def onRestore(self) -> None:
        index = self.ui.historyComboBox.currentIndex
        if index < 0:
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Could not restore the run."), waitCursor=True):
            run = self.logic.restore(index, p.inputVolume, p.segmentation)
            p.supportSlices = run.support


class FewShotSegLogic(ScriptedLoadableModuleLogic, FewShotLogic):
    """``FewShotSegLogic().process(volume, segmentation, segment_id, support_slices)``."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        FewShotLogic.__init__(self, slicer.mrmlScene)

    def getParameterNode(self):
        return FewShotSegParameterNode(super().getParameterNode())


class FewShotSegTest(ScriptedLoadableModuleTest):
    """The interactive case on the sample CT: nodule labelled on one slice, rest segmented."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_NoduleFromOneSlice()

    def test_NoduleFromOneSlice(self) -> None:
        from LungLesionSegLib.logic import load_sample_with_nodule

        volume, _, segmentation = load_sample_with_nodule(slicer.mrmlScene)
        segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
        logic = FewShotSegLogic()
        slices = logic.labelledSlices(volume, segmentation, segment_id)
        middle = slices[len(slices) // 2].index
        result_id = logic.process(volume, segmentation, segment_id, [middle])
        result = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, result_id, volume)
        self.assertGreater(int(result[middle].sum()), 0)
