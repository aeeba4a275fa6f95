"""LungLesionSeg: segment lung lesions (COVID-19 infection, GGO, consolidation, nodules) on chest CT.

Thin Slicer shell: the computation, the MRML bridge and the background worker live in
``LungLesionSegLib`` (Qt-free, tested with slicer-core); this file holds the Module,
Widget, Logic (parameter node only) and Test classes.
"""

from __future__ import annotations

from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from LungLesionSegLib.logic import (SegmentationLogic, SegmentationOptions, describe_model, sample_ct_path,
                                    supports_multiclass)

DEVICES = ["auto", "cpu", "cuda"]


class LungLesionSeg(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Lung Lesion Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["LungLesionSeg developers"]
        self.parent.helpText = _(
            "Segments lung lesions (COVID-19 infection, ground-glass opacity, consolidation, nodules) "
            "on chest CT with PyTorch models (BSNet, nCoVSegNet, U-Net ...). Outputs a segmentation "
            "with standard terminology, lesion volume and percent of each lung, and optionally the "
            "probability map. Research use only, not for diagnosis.")
        self.parent.acknowledgementText = _(
            "Models are trained on public data sets (see each model card); sample CT from the "
            "pyradiomics test data (BSD-3-Clause).")


@parameterNodeWrapper
class LungLesionSegParameterNode:
    """Choices stored in the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    model: str = ""
    device: Annotated[str, Choice(DEVICES)] = "auto"
    threshold: Annotated[float, WithinRange(0.05, 0.95)] = 0.5
    restrictToLungs: bool = True
    keepProbability: bool = False
    multiclass: bool = False
    outputSegmentation: vtkMRMLSegmentationNode
    outputTable: vtkMRMLTableNode
    outputProbability: vtkMRMLScalarVolumeNode


class LungLesionSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Panel: inputs, model, device, options, Apply/Cancel, progress."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._runner = None
        self._runOptions = None
        self._timer = qt.QTimer()
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.onPollWorker)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungLesionSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungLesionSegLogic()
        self.populateModels()
        self.ui.modelComboBox.currentIndexChanged.connect(self.onModelChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def populateModels(self) -> None:
        """Fill the model combo box with the registry's lesion models (name as item, entry as data)."""
        from lunglesion.registry import lesion_models

        self._models = {entry.name: entry for entry in lesion_models()}
        self.ui.modelComboBox.clear()
        for name in self._models:
            self.ui.modelComboBox.addItem(name)
        if not self._models:
            self.ui.modelDescriptionLabel.text = _("No trained model is registered (Resources/Models/models.json).")

    def cleanup(self) -> None:
        self._stopRunner()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        self._stopRunner()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.inputVolume = firstVolume

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            index = self.ui.modelComboBox.findText(self._parameterNode.model)
            if index >= 0:
                self.ui.modelComboBox.currentIndex = index
            self.onModelChanged()
            self._checkCanApply()

    def onModelChanged(self, _index: int | None = None) -> None:
        entry = self._models.get(self.ui.modelComboBox.currentText)
        if entry is None:
            return
        if self._parameterNode:
            self._parameterNode.model = entry.name
        self.ui.modelDescriptionLabel.text = describe_model(entry)
        self.ui.multiclassCheckBox.enabled = supports_multiclass(entry)
        if not supports_multiclass(entry) and self._parameterNode:
            self._parameterNode.multiclass = False

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self._runner is not None:
            return
        ready = bool(self._parameterNode and self._parameterNode.inputVolume and self._models)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = _("Run the model") if ready else _("Select an input volume")

    def onApplyButton(self) -> None:
        """Start a run, or cancel the running one."""
        if self._runner is not None:
            self._stopRunner()
            self.ui.statusLabel.text = _("Cancelled.")
            return
        from LungLesionSegLib.dependencies import ensure_dependencies

        with slicer.util.tryWithErrorDisplay(_("Failed to start the segmentation."), waitCursor=True):
            ensure_dependencies(lambda message: slicer.util.confirmOkCancelDisplay(message))
            p = self._parameterNode
            self._runOptions = SegmentationOptions(p.model, p.device, p.threshold, p.keepProbability,
                                                   p.restrictToLungs, p.multiclass)
            self._runner = self.logic.startProcessing(p.inputVolume, self._runOptions)
            self._setRunning(True)

    def _setRunning(self, running: bool) -> None:
        self.ui.applyButton.text = _("Cancel") if running else _("Apply")
        self.ui.progressBar.visible = running
        self.ui.progressBar.value = 0
        for widget in (self.ui.inputsCollapsibleButton, self.ui.optionsCollapsibleButton,
                       self.ui.outputsCollapsibleButton):
            widget.enabled = not running
        if running:
            self.ui.statusLabel.text = _("Starting...")
            self._timer.start()
        else:
            self._timer.stop()
            self._checkCanApply()

    def _stopRunner(self) -> None:
        if self._runner is not None:
            self._runner.cleanup()
            self._runner = None
            self._setRunning(False)

    def onPollWorker(self) -> None:
        """Show the worker's progress; import its outputs when it finishes."""
        if self._runner is None:
            return
        for event in self._runner.poll():
            if event.event == "progress":
                self.ui.progressBar.value = int(100 * event.fraction)
                self.ui.statusLabel.text = event.message
            elif event.event == "log":
                self.ui.statusLabel.text = event.message
            elif event.event == "error":
                message = event.message
                self._stopRunner()
                with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=False):
                    raise RuntimeError(message)
                return
            elif event.event == "done":
                self._finishRun()
                return

    def _finishRun(self) -> None:
        p = self._parameterNode
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to load the segmentation result."), waitCursor=True):
                outputs = self.logic.importWorkerOutputs(self._runner, p.inputVolume, self._runOptions,
                                                         p.outputSegmentation, p.outputTable,
                                                         p.outputProbability)
                p.outputSegmentation, p.outputTable = outputs.segmentation, outputs.table
                if outputs.probability is not None:
                    p.outputProbability = outputs.probability
                self.logic.showOutputs(p.inputVolume, outputs)
                self.ui.statusLabel.text = _("Done in {seconds:.1f} s on {device}.").format(
                    seconds=outputs.seconds, device=outputs.device)
        finally:
            self._stopRunner()


class LungLesionSegLogic(ScriptedLoadableModuleLogic, SegmentationLogic):
    """Entry point for the console and scripts: ``LungLesionSegLogic().process(volume, options)``.

    All computation is in :class:`LungLesionSegLib.logic.SegmentationLogic`; this adds the
    typed parameter node and the view set-up.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        SegmentationLogic.__init__(self, slicer.mrmlScene)

    def getParameterNode(self):
        return LungLesionSegParameterNode(super().getParameterNode())

    def showOutputs(self, inputVolume, outputs) -> None:
        """Show the CT with the segmentation (2D + 3D), the probability overlay and the table."""
        foreground = outputs.probability
        slicer.util.setSliceViewerLayers(background=inputVolume, foreground=foreground,
                                         foregroundOpacity=0.4 if foreground else None, fit=True)
        layoutManager = slicer.app.layoutManager()
        if layoutManager is not None:
            layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(outputs.table.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
            layoutManager.threeDWidget(0).threeDView().resetFocalPoint()


class LungLesionSegTest(ScriptedLoadableModuleTest):
    """Loads the bundled sample CT, runs the default model on the CPU and checks the result."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_DefaultModelOnSampleCT()

    def test_DefaultModelOnSampleCT(self) -> None:
        import numpy as np

        from LungLesionSegLib import mrml_bridge

        self.delayDisplay("Loading the bundled sample CT")
        volume = mrml_bridge.load_volume(sample_ct_path(), slicer.mrmlScene, "lung1")
        logic = LungLesionSegLogic()
        fractions = []
        outputs = logic.process(volume, SegmentationOptions(device="cpu", keep_probability=True),
                                progress=lambda fraction, message: fractions.append(fraction))
        labelmap = mrml_bridge.segmentation_node_to_labelmap(outputs.segmentation, volume)
        self.assertEqual(labelmap.array.shape, slicer.util.arrayFromVolume(volume).shape)
        self.assertGreater(outputs.segmentation.GetSegmentation().GetNumberOfSegments(), 0)
        self.assertGreater(outputs.table.GetNumberOfRows(), 0)
        self.assertIsNotNone(outputs.probability)
        probability = slicer.util.arrayFromVolume(outputs.probability)
        self.assertTrue(0.0 <= float(probability.min()) and float(probability.max()) <= 1.0)
        self.assertTrue(np.all(probability[labelmap.array > 0] >= 0.5))
        self.assertTrue(fractions and max(fractions) <= 1.0)
        self.delayDisplay("Test passed")
