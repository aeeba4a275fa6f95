"""Run :mod:`LungLesionSegLib.worker` in a subprocess, polled from the GUI thread.

Qt-free: a reader thread only parses the worker's stdout into a queue; the caller (a
``qt.QTimer`` in the widget, or a loop in tests) calls :meth:`BackgroundInference.poll` and
touches MRML only from its own thread. :meth:`cancel` kills the worker, so Cancel really
stops the computation and frees its memory.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import lunglesion

WORKER_SCRIPT = Path(__file__).with_name("worker.py")


def python_executable() -> str:
    """Slicer's ``PythonSlicer`` inside Slicer, else the running interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


@dataclass
class WorkerEvent:
    """One line reported by the worker (``progress``, ``log``, ``done``, ``error``)."""

    event: str
    message: str = ""
    fraction: float = 0.0
    details: dict = field(default_factory=dict)


class BackgroundInference:
    """A running worker process on one input file, writing into a temporary folder."""

    def __init__(self, input_path: Path, options_args: list[str], work_dir: Path | None = None) -> None:
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="lunglesion-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir = self.work_dir / "outputs"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(Path(lunglesion.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
        self._stderr = (self.work_dir / "worker.log").open("w")
        self.process = subprocess.Popen(
            [python_executable(), str(WORKER_SCRIPT), "--input", str(input_path),
             "--output-dir", str(self.output_dir), *options_args],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env, start_new_session=True)
        self._events: queue.Queue[WorkerEvent] = queue.Queue()
        self.cancelled = False
        self.finished = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                self._events.put(WorkerEvent("log", message=line.rstrip()))
                continue
            self._events.put(WorkerEvent(data.pop("event"), message=data.pop("message", ""),
                                         fraction=float(data.pop("fraction", 0.0)), details=data))

    def _drain(self) -> list[WorkerEvent]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def poll(self) -> list[WorkerEvent]:
        """Events reported since the last call. Exactly one final ``done`` or ``error`` event
        is returned over the run (a crash or a kill becomes an ``error`` with the log's tail)."""
        events = self._drain()
        if not self.finished and self.process.poll() is not None:
            self._reader.join(timeout=1.0)  # the pipe closes with the process: read its last lines
            events += self._drain()
            if not any(e.event in ("done", "error") for e in events):
                events.append(self._exit_event())
        if any(e.event in ("done", "error") for e in events):
            self.finished = True
            self.process.wait()
        return events

    def _exit_event(self) -> WorkerEvent:
        if self.cancelled:
            return WorkerEvent("error", message="cancelled by the user", details={"cancelled": True})
        self._stderr.flush()
        tail = (self.work_dir / "worker.log").read_text(errors="replace").strip().splitlines()[-3:]
        return WorkerEvent("error", message=f"the segmentation process stopped (exit status "
                                            f"{self.process.returncode}): {' | '.join(tail)}")

    @property
    def running(self) -> bool:
        """True while the worker process is alive."""
        return self.process.poll() is None

    def cancel(self) -> None:
        """Kill the worker and its children now."""
        self.cancelled = True
        if self.running:
            if hasattr(os, "killpg"):
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()
        self.process.wait()

    def cleanup(self) -> None:
        """Stop the worker if needed and delete its temporary folder."""
        if self.running:
            self.cancel()
        self._stderr.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)
