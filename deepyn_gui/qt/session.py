"""The session model: one clip, where the user is in it, and what the analysis has found so far.

Widgets never talk to each other or to the workers; they call the session's methods (intent) and
redraw from its signals (state). The session owns the two workers and filters their answers by clip
generation and run id, so a late answer for a clip or run the user has left is dropped here.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from ..core.pipeline import AnalysisSettings, Progress
from ..core.results import AnalysisResult, FrameResult, ModelInfo, Verdict
from .workers import AnalysisJob, AnalysisWorker, BackendFactory, DecodedFrame, DecodeWorker

log = logging.getLogger(__name__)

#: Analysis states, as shown in the status bar.
IDLE, STARTING, RUNNING, CANCELLING, DONE, CANCELLED, STOPPED = (
    "idle", "starting", "running", "cancelling", "done", "cancelled", "stopped",
)


@dataclass(frozen=True, eq=False)
class ShownFrame:
    """The frame on screen: pixels exactly as decoded, its PTS, and its analysis result if any."""

    index: int
    pts_s: float
    rgb: np.ndarray
    result: FrameResult | None
    display: np.ndarray | None = None  # the same pixels as BGRX for fast painting (see workers)


class Session(QObject):
    """State of the viewer, observed by the widgets."""

    clipOpened = Signal(object)  # VideoInfo
    openFailed = Signal(str, str)  # path, message
    positionChanged = Signal(int)  # the frame the user asked for (cursor); the picture follows
    frameShown = Signal(object)  # ShownFrame
    shownResultChanged = Signal(object)  # ShownFrame (its result just arrived)
    playingChanged = Signal(bool)
    resultsAdded = Signal(object)  # list[FrameResult]
    resultsCleared = Signal()
    verdictChanged = Signal(object)  # Verdict | None
    modelChanged = Signal(object, object)  # ModelInfo | None, backend description | None
    analysisStateChanged = Signal(str)
    analysisProgress = Signal(object)  # Progress
    analysisFinished = Signal(object)  # AnalysisResult | None
    message = Signal(str, str, bool)  # level ("info" | "warning" | "error"), text, show as dialog

    def __init__(self, parent: QObject | None = None, backend_factory: BackendFactory | None = None) -> None:
        super().__init__(parent)
        self.decoder = DecodeWorker(self)
        self.decoder.opened.connect(self._on_opened, Qt.ConnectionType.QueuedConnection)
        self.decoder.openFailed.connect(self._on_open_failed, Qt.ConnectionType.QueuedConnection)
        self.decoder.frameDecoded.connect(self._on_frame, Qt.ConnectionType.QueuedConnection)
        self.decoder.frameFailed.connect(self._on_frame_failed, Qt.ConnectionType.QueuedConnection)
        self._backend_factory = backend_factory

        # clip
        self.path: str | None = None
        self.info: Any = None  # VideoInfo of the open clip
        self._gen = -1  # generation of the clip on screen
        self._opening: dict[int, str] = {}  # generation -> path, opens in flight
        # position
        self.current_index = 0
        self.shown: ShownFrame | None = None
        self._request_times: dict[int, float] = {}
        self.seek_latencies_s: deque[float] = deque(maxlen=500)
        # playback
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._play_anchor: tuple[float, int] = (0.0, 0)
        self.playing = False
        self.frames_dropped = 0  # playback frames never shown because decoding could not keep up
        # analysis
        self.backend_name = "onnx"
        self.model_path: str | None = None
        self.threads = 2
        self.settings = AnalysisSettings()
        self.analyze_on_open = False
        self.results: dict[int, FrameResult] = {}
        self.verdict: Verdict | None = None
        self.model_info: ModelInfo | None = None
        self.backend_description: dict[str, Any] | None = None
        self.analysis_result: AnalysisResult | None = None
        self.analysis_state = IDLE
        self.progress: Progress | None = None
        self.last_cancel_latency_s: float | None = None
        self._run: AnalysisWorker | None = None
        self._runs: list[AnalysisWorker] = []  # every run whose thread may still be alive

    # ------------------------------------------------------------------ clip
    @property
    def has_clip(self) -> bool:
        return self.info is not None

    @property
    def frame_count(self) -> int:
        return int(self.info.frames) if self.info is not None else 0

    @property
    def fps(self) -> float:
        return float(self.info.fps) if self.info is not None and self.info.fps > 0 else 25.0

    def open(self, path: str | Path) -> None:
        """Open a clip (answered by ``clipOpened`` or ``openFailed``; the old clip stays until then)."""
        path = str(path)
        gen = self.decoder.open(path)
        self._opening[gen] = path
        self.message.emit("info", f"Opening {Path(path).name}…", False)

    @Slot(int, object)
    def _on_opened(self, gen: int, info: Any) -> None:
        path = self._opening.pop(gen, None)
        if path is None:
            return
        if any(g > gen for g in self._opening):  # a newer open is in flight: it wins
            return
        self.pause()
        self._cancel_current_run()
        self._gen = gen
        self.path = path
        self.info = info
        self.current_index = 0
        self.shown = None
        self._request_times.clear()
        self._clear_results()
        self.model_info = None
        self.backend_description = None
        self.modelChanged.emit(None, None)
        self._set_state(IDLE)
        self.clipOpened.emit(info)
        self.message.emit(
            "info",
            f"Opened {Path(path).name}: {info.frames} frames, {info.width}×{info.height}, {info.fps:.3g} fps",
            False,
        )
        self.seek(0)
        if self.analyze_on_open:
            self.start_analysis()

    @Slot(int, str)
    def _on_open_failed(self, gen: int, message: str) -> None:
        path = self._opening.pop(gen, "")
        log.warning("could not open %s: %s", path, message)
        self.openFailed.emit(path, message)
        self.message.emit("error", message, True)

    # ------------------------------------------------------------------ position and playback
    def seek(self, index: int) -> None:
        """Show frame ``index`` (clamped); returns at once, the picture follows from the decoder."""
        if self.info is None:
            return
        index = max(0, min(int(index), self.frame_count - 1))
        self.current_index = index
        if self.playing:
            self._play_anchor = (time.perf_counter(), index)
        self.positionChanged.emit(index)
        req = self.decoder.request(self._gen, index)
        self._request_times[req] = time.perf_counter()
        if len(self._request_times) > 256:
            for k in sorted(self._request_times)[:-64]:
                del self._request_times[k]

    def step(self, delta: int) -> None:
        """Move ``delta`` frames from the requested position (pauses playback: stepping is for study)."""
        self.pause()
        self.seek(self.current_index + delta)

    def go_home(self) -> None:
        self.pause()
        self.seek(0)

    def go_end(self) -> None:
        self.pause()
        self.seek(self.frame_count - 1)

    def play(self) -> None:
        if self.info is None or self.playing:
            return
        if self.current_index >= self.frame_count - 1:
            self.seek(0)
        self.playing = True
        self._play_anchor = (time.perf_counter(), self.current_index)
        # Ticks faster than the frame rate; the frame shown is computed from the wall clock, so a
        # slow decode drops frames instead of making the clip drift late.
        self._timer.start(max(4, int(500.0 / self.fps)))
        self.playingChanged.emit(True)

    def pause(self) -> None:
        if not self.playing:
            return
        self.playing = False
        self._timer.stop()
        self.playingChanged.emit(False)

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    @Slot()
    def _tick(self) -> None:
        t0, start = self._play_anchor
        target = start + int((time.perf_counter() - t0) * self.fps)
        last = self.frame_count - 1
        target = min(last, target)
        if target != self.current_index:
            self.current_index = target
            self.positionChanged.emit(target)
            req = self.decoder.request(self._gen, target)
            self._request_times[req] = time.perf_counter()
        if target >= last:
            self.playing = False
            self._timer.stop()
            self.playingChanged.emit(False)

    @Slot(object)
    def _on_frame(self, frame: DecodedFrame) -> None:
        if frame.generation != self._gen:
            return  # a frame of a clip we have left
        t_req = self._request_times.pop(frame.request, None)
        if t_req is not None:
            self.seek_latencies_s.append(time.perf_counter() - t_req)
        if self.playing and self.shown is not None and frame.index > self.shown.index + 1:
            self.frames_dropped += frame.index - self.shown.index - 1
        self.shown = ShownFrame(frame.index, frame.pts_s, frame.rgb, self.results.get(frame.index), frame.display)
        self.frameShown.emit(self.shown)

    @Slot(int, int, str)
    def _on_frame_failed(self, gen: int, index: int, message: str) -> None:
        if gen != self._gen:
            return
        log.warning("frame %d: %s", index, message)
        self.message.emit("warning", message, False)

    # ------------------------------------------------------------------ analysis
    @property
    def analysis_running(self) -> bool:
        return self._run is not None

    def start_analysis(self) -> bool:
        """Analyse the open clip with the chosen backend on a worker; False if it cannot start."""
        if self.info is None or self.path is None:
            self.message.emit("warning", "Open a video before analysing it.", False)
            return False
        if self._run is not None:
            return False
        self._clear_results()
        job = AnalysisJob(
            path=self.path, backend=self.backend_name, settings=self.settings, model_path=self.model_path,
            threads=self.threads, total_frames=self.frame_count,
        )
        run = AnalysisWorker(job, backend_factory=self._backend_factory, parent=self)
        run.backendReady.connect(self._on_backend_ready, Qt.ConnectionType.QueuedConnection)
        run.framesReady.connect(self._on_frames, Qt.ConnectionType.QueuedConnection)
        run.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        run.verdictReady.connect(self._on_verdict, Qt.ConnectionType.QueuedConnection)
        run.failed.connect(self._on_run_failed, Qt.ConnectionType.QueuedConnection)
        run.finished.connect(self._on_run_finished, Qt.ConnectionType.QueuedConnection)
        self._run = run
        self._runs = [r for r in self._runs if r.is_alive()] + [run]
        self.progress = None
        self._set_state(STARTING)
        run.start()
        return True

    def cancel_analysis(self) -> None:
        """Stop the running analysis; the frames analysed so far stay on the timeline."""
        if self._run is not None and not self._run.cancel_requested:
            self._run.cancel()
            self._set_state(CANCELLING)

    def _cancel_current_run(self) -> None:
        """Drop the run of a clip the user is leaving (its late answers are ignored by run id)."""
        if self._run is not None:
            self._run.cancel()
            self._run = None

    def _is_current(self, run_id: int) -> bool:
        return self._run is not None and self._run.run_id == run_id

    @Slot(int, object, object)
    def _on_backend_ready(self, run_id: int, model: ModelInfo, description: dict[str, Any]) -> None:
        if not self._is_current(run_id):
            return
        self.model_info = model
        self.backend_description = dict(description)
        self.modelChanged.emit(model, self.backend_description)
        if self.analysis_state == STARTING:
            self._set_state(RUNNING)

    @Slot(int, object)
    def _on_frames(self, run_id: int, frames: list[FrameResult]) -> None:
        if not self._is_current(run_id):
            return
        for fr in frames:
            self.results[fr.index] = fr
        self.resultsAdded.emit(frames)
        if self.shown is not None and self.shown.result is None and self.shown.index in self.results:
            self.shown = replace(self.shown, result=self.results[self.shown.index])
            self.shownResultChanged.emit(self.shown)

    @Slot(int, object)
    def _on_progress(self, run_id: int, progress: Progress) -> None:
        if not self._is_current(run_id):
            return
        self.progress = progress
        self.analysisProgress.emit(progress)

    @Slot(int, object)
    def _on_verdict(self, run_id: int, verdict: Verdict) -> None:
        if not self._is_current(run_id):
            return
        self.verdict = verdict
        self.verdictChanged.emit(verdict)

    @Slot(int, str)
    def _on_run_failed(self, run_id: int, message: str) -> None:
        if not self._is_current(run_id):
            return
        self.message.emit("error", message, True)

    @Slot(int, object)
    def _on_run_finished(self, run_id: int, result: AnalysisResult | None) -> None:
        run = next((r for r in self._runs if r.run_id == run_id), None)
        if run is not None and run.cancelled_at is not None and run.ended_at is not None:
            self.last_cancel_latency_s = run.ended_at - run.cancelled_at
        if not self._is_current(run_id):
            return
        assert self._run is not None
        cancelled = self._run.cancel_requested
        self._run = None
        self.analysis_result = result
        if result is not None:
            self.verdict = result.verdict
            self.verdictChanged.emit(result.verdict)
            state = DONE if result.complete else (CANCELLED if cancelled else STOPPED)
        else:
            state = CANCELLED if cancelled else STOPPED
        self._set_state(state)
        self.analysisFinished.emit(result)

    def _clear_results(self) -> None:
        self.results = {}
        self.verdict = None
        self.analysis_result = None
        self.progress = None
        if self.shown is not None:
            self.shown = replace(self.shown, result=None)
        self.resultsCleared.emit()
        self.verdictChanged.emit(None)

    def _set_state(self, state: str) -> None:
        self.analysis_state = state
        self.analysisStateChanged.emit(state)

    # ------------------------------------------------------------------ teardown
    def threads_alive(self) -> list[str]:
        """Names of this session's worker threads still running (for tests and shutdown checks)."""
        names = [f"analysis-{r.run_id}" for r in self._runs if r.is_alive()]
        if self.decoder.is_alive():
            names.append("decode")
        return names

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop playback, cancel every run and join every worker thread; True when none is left."""
        self.pause()
        for r in self._runs:
            r.cancel()
        deadline = time.perf_counter() + timeout
        ok = True
        for r in self._runs:
            ok = r.join(max(0.0, deadline - time.perf_counter())) and ok
        ok = self.decoder.shutdown(max(0.1, deadline - time.perf_counter())) and ok
        if not ok:
            log.warning("worker threads still running after %.1f s: %s", timeout, self.threads_alive())
        self._run = None
        return ok
