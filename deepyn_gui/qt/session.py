"""The session model: one clip, where the user is in it, and what the analysis has found so far.

Widgets never talk to each other or to the workers; they call the session's methods (intent) and
redraw from its signals (state). The session owns the two workers and filters their answers by clip
generation and run id, so a late answer for a clip or run the user has left is dropped here.

Evidence integrity and the session cache are relayed here: every opened clip is hashed (SHA-256) on a
worker; core's rule (:func:`~deepyn_gui.core.evidence_index.judge_evidence`) compares the hash with the
one recorded when that path was last analysed (a mismatch is announced loudly and no earlier result is
shown); the hash is written into every analysis result and keys the session cache
(:mod:`deepyn_gui.core.cache`: its look-up and its one caching rule), from which an analysis made before
with the same model and settings is shown at once.

Size (~730 lines): the session is the one state object every widget observes; splitting it would
split that state. The rules it relays live in core (pipeline, cache, evidence_index).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from ..core.cache import CacheHit, CacheQuery, save_analysis
from ..core.errors import Cancelled
from ..core.evidence_index import (  # noqa: F401 - the status names are re-exported for the widgets
    CHANGED,
    HASH_FAILED,
    HASHED,
    HASHING,
    VERIFIED,
    EvidenceStatus,
    changed_notice,
    format_utc,
    judge_evidence,
)
from ..core.pipeline import AnalysisSettings, Progress
from ..core.results import AnalysisResult, FrameResult, ModelInfo, Verdict
from .workers import (
    AnalysisJob,
    AnalysisWorker,
    BackendFactory,
    BackgroundTask,
    DecodedFrame,
    DecodeWorker,
    lookup_cache,
)

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
    evidenceStatusChanged = Signal(object)  # EvidenceStatus
    cacheLoaded = Signal(object)  # CacheHit: the results on screen now come from the session cache

    def __init__(self, parent: QObject | None = None, backend_factory: BackendFactory | None = None) -> None:
        super().__init__(parent)
        self.decoder = DecodeWorker(self)
        self.decoder.timesReady.connect(self._on_times, Qt.ConnectionType.QueuedConnection)
        self.decoder.opened.connect(self._on_opened, Qt.ConnectionType.QueuedConnection)
        self.decoder.openFailed.connect(self._on_open_failed, Qt.ConnectionType.QueuedConnection)
        self.decoder.frameDecoded.connect(self._on_frame, Qt.ConnectionType.QueuedConnection)
        self.decoder.frameFailed.connect(self._on_frame_failed, Qt.ConnectionType.QueuedConnection)
        self._backend_factory = backend_factory

        # clip
        self._stream_path: str | None = None  # the file a chosen video stream belongs to
        self.frame_times: Any = None  # each frame's presentation time (s) from the packet table, or None
        self._times_by_gen: dict[int, Any] = {}
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
        self._run_hit: CacheHit | None = None  # the current run answered from the cache
        # evidence and cache
        self.cache_root: str | None = None  # None: the app data dir ($DEEPYN_DATA_DIR or the user's)
        self.use_cache = True
        self.evidence = EvidenceStatus()
        self.results_from_cache: CacheHit | None = None  # set while the results shown come from the cache
        self.last_cache_save: str | None = None  # path of the last cache file written (tests, status)
        self._hash_task: BackgroundTask | None = None
        self._hash_future: Future[str] | None = None
        self._lookup_task: BackgroundTask | None = None
        self._tasks: list[BackgroundTask] = []  # every task whose thread may still be alive
        self._task_handlers: dict[int, tuple[Callable[[Any], None], Callable[[str], None] | None]] = {}
        self._known_shas: dict[str, tuple[str, str]] = {}  # path -> (sha256, analysed_utc) seen this session
        self._model_shas: dict[tuple[str, str | None], str] = {}  # (backend, model path) -> loaded model's sha
        self._awaiting_sha: AnalysisResult | None = None  # finished before the evidence hash was known
        self._analyze_when_hashed = False

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
        if self._stream_path not in (None, path):  # a stream choice belongs to its file
            self._stream_path = None
            self.settings = replace(self.settings, video_stream=None)
            self.decoder.video_stream = None
        gen = self.decoder.open(path)
        self._opening[gen] = path
        self.message.emit("info", f"Opening {Path(path).name}…", False)

    def choose_stream(self, stream: int | None) -> None:
        """Show and analyse another video stream of the open file (None: the default choice)."""
        self.settings = replace(self.settings, video_stream=stream)
        self.decoder.video_stream = stream
        self._stream_path = self.path
        if self.path:
            self.open(self.path)

    @Slot(int, object)
    def _on_times(self, gen: int, times: Any) -> None:
        self._times_by_gen = {gen: times}  # only the newest open's; taken by _on_opened

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
        self.frame_times = self._times_by_gen.pop(gen, None)
        self.current_index = 0
        self.shown = None
        self._request_times.clear()
        self._clear_results()
        self.model_info = None
        self.backend_description = None
        self.modelChanged.emit(None, None)
        self._set_state(IDLE)
        self._start_hashing(path)
        self.clipOpened.emit(info)
        self.message.emit(
            "info",
            f"Opened {Path(path).name}: {info.frames} frames, {info.width}×{info.height}, {info.fps:.3g} fps",
            False,
        )
        n_streams = int(getattr(info, "video_streams", 1))
        if n_streams > 1:  # never silently: a decoy first stream once hid the real one
            self.message.emit(
                "warning",
                f"{Path(path).name} holds {n_streams} video streams; showing stream {getattr(info, 'stream', 0)} "
                f"({info.width}×{info.height}, {info.frames} frames). Analysis ▸ Video stream… chooses another.",
                False,
            )
        self.seek(0)
        # With the cache on, analyse-on-open waits for the hash: a cached analysis then needs no run.
        self._analyze_when_hashed = self.analyze_on_open and self.use_cache
        if self.analyze_on_open and not self.use_cache:
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

    def start_analysis(self, reanalyse: bool = False) -> bool:
        """Analyse the open clip on a worker; False if it cannot start.

        Unless ``reanalyse``, an analysis of the same bytes with the same model and settings is taken
        from the session cache (the worker looks it up before building a backend). ``reanalyse``
        always runs the model; its result replaces the cached one.
        """
        if self.info is None or self.path is None:
            self.message.emit("warning", "Open a video before analysing it.", False)
            return False
        if self._run is not None:
            return False
        sha = self.evidence.sha256 if self.evidence.path == self.path else ""
        query = self._cache_query(sha) if sha and self.use_cache and not reanalyse else None
        shown = self.results_from_cache
        if query is not None and shown is not None and shown.query.key == query.key:
            self.message.emit("info", "Already analysed: the results shown come from the cache. "
                              "Use Analysis ▸ Re-analyse to run the model again.", False)
            return False
        self._cancel_lookup()  # a run replaces a pending look-up
        self._analyze_when_hashed = False
        self._clear_results()
        job = AnalysisJob(
            path=self.path, backend=self.backend_name, settings=self.settings, model_path=self.model_path,
            threads=self.threads, total_frames=self.frame_count,
            evidence_sha256=sha or self._hash_future, cache=query,
        )
        run = AnalysisWorker(job, backend_factory=self._backend_factory, parent=self)
        run.cached.connect(self._on_run_cached, Qt.ConnectionType.QueuedConnection)
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
        assert self._run is not None
        if model.sha256:  # the next cache look-up for this backend and model file needs no guess
            self._model_shas[(self._run.job.backend, self._run.job.model_path)] = model.sha256
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

    @Slot(int, object)
    def _on_run_cached(self, run_id: int, hit: CacheHit) -> None:
        if self._is_current(run_id):
            self._run_hit = hit  # shown when the run's ``finished`` arrives (right after this)

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
        from_cache = self._run.from_cache
        self._run = None
        hit, self._run_hit = self._run_hit, None
        if from_cache and hit is not None:
            self._apply_hit(hit)
            self.analysisFinished.emit(hit.result)
            return
        self.analysis_result = result
        if result is not None:
            self.verdict = result.verdict
            self.verdictChanged.emit(result.verdict)
            state = DONE if result.complete else (CANCELLED if cancelled else STOPPED)
            self._after_result(result)
        else:
            state = CANCELLED if cancelled else STOPPED
        self._set_state(state)
        self.analysisFinished.emit(result)

    def _clear_results(self) -> None:
        self.results = {}
        self.verdict = None
        self.analysis_result = None
        self.results_from_cache = None
        self._awaiting_sha = None
        self.progress = None
        if self.shown is not None:
            self.shown = replace(self.shown, result=None)
        self.resultsCleared.emit()
        self.verdictChanged.emit(None)

    # ------------------------------------------------------------------ evidence hash and session cache
    def reanalyse(self) -> bool:
        """Run the model again, ignoring (and then replacing) any cached analysis."""
        return self.start_analysis(reanalyse=True)

    def _cache_query(self, sha: str) -> CacheQuery:
        return CacheQuery(
            evidence_path=str(self.path), evidence_sha256=sha, backend=self.backend_name,
            model_path=self.model_path, settings=self.settings.to_json(), root=self.cache_root,
            model_sha256=self._model_shas.get((self.backend_name, self.model_path)),
        )

    def _set_evidence(self, status: EvidenceStatus) -> None:
        self.evidence = status
        self.evidenceStatusChanged.emit(status)

    def _start_task(
        self,
        name: str,
        fn: Callable[[threading.Event, Callable[[int, int], None]], Any],
        on_ok: Callable[[BackgroundTask, Any], None],
        on_fail: Callable[[BackgroundTask, str], None] | None = None,
    ) -> BackgroundTask:
        task = BackgroundTask(fn, name, parent=self)
        task.progressed.connect(self._on_task_progress, Qt.ConnectionType.QueuedConnection)
        task.succeeded.connect(self._on_task_succeeded, Qt.ConnectionType.QueuedConnection)
        task.failed.connect(self._on_task_failed, Qt.ConnectionType.QueuedConnection)
        self._task_handlers[task.task_id] = (
            lambda out: on_ok(task, out), (lambda msg: on_fail(task, msg)) if on_fail is not None else None,
        )
        self._tasks = [t for t in self._tasks if t.is_alive()] + [task]
        task.start()
        return task

    @Slot(int, object)
    def _on_task_succeeded(self, task_id: int, outcome: Any) -> None:
        handlers = self._task_handlers.pop(task_id, None)
        if handlers is not None:
            handlers[0](outcome)

    @Slot(int, str)
    def _on_task_failed(self, task_id: int, message: str) -> None:
        handlers = self._task_handlers.pop(task_id, None)
        if handlers is not None and handlers[1] is not None:
            handlers[1](message)

    @Slot(int, object, object)
    def _on_task_progress(self, task_id: int, done: int, total: int) -> None:
        task = self._hash_task
        if task is not None and task.task_id == task_id and self.evidence.state == HASHING:
            self._set_evidence(replace(self.evidence, done=int(done), total=int(total)))

    def _cancel_lookup(self) -> None:
        if self._lookup_task is not None:
            self._lookup_task.cancel()
            self._lookup_task = None

    def _cancel_hashing(self) -> None:
        self._cancel_lookup()
        if self._hash_task is not None:
            self._hash_task.cancel()
            self._hash_task = None

    def _start_hashing(self, path: str) -> None:
        """SHA-256 of the newly opened clip on a worker (streamed; cancelled when another clip opens)."""
        self._cancel_hashing()
        future: Future[str] = Future()
        future.set_running_or_notify_cancel()
        self._hash_future = future  # a run started before the hash is known waits on this
        self._set_evidence(EvidenceStatus(HASHING, path))
        root = self.cache_root

        def work(cancel: threading.Event, progress: Callable[[int, int], None]) -> tuple[str, Any]:
            from ..core import evidence as ev
            from ..core.evidence_index import EvidenceIndex

            last = [0.0]

            def report(done: int, total: int) -> None:  # a few reports a second, not one per MB
                now = time.perf_counter()
                if now - last[0] >= 0.1:
                    last[0] = now
                    progress(done, total)

            try:
                sha = ev.sha256_file(path, progress=report, cancel=cancel)
            except BaseException as exc:
                future.set_exception(exc)
                raise
            future.set_result(sha)
            try:
                record = EvidenceIndex(root).get(path)
            except Exception:  # no record is then shown as "not analysed before"
                log.exception("reading the evidence index failed")
                record = None
            return sha, record

        self._hash_task = self._start_task("sha256", work, self._on_hashed, self._on_hash_failed)

    def _on_hashed(self, task: BackgroundTask, outcome: tuple[str, Any]) -> None:
        if task is not self._hash_task:
            return  # a clip the user has left
        self._hash_task = None
        sha, record = outcome
        path = self.evidence.path
        from ..core.evidence_index import path_key

        status = judge_evidence(path, sha, self._known_shas.get(path_key(path)), record)
        self._set_evidence(status)
        if status.state == CHANGED:
            self.message.emit("error", changed_notice(status), True)
        awaiting, self._awaiting_sha = self._awaiting_sha, None
        if awaiting is not None and awaiting.source.path == path and not awaiting.source.sha256:
            awaiting.source = replace(awaiting.source, sha256=sha)
            self._record(awaiting)
        if self._analyze_when_hashed:
            self._analyze_when_hashed = False
            if self._run is None and not self.results:
                self.start_analysis()
        elif self.use_cache and self._run is None and not self.results:
            self._start_lookup(sha)

    def _on_hash_failed(self, task: BackgroundTask, message: str) -> None:
        if task is not self._hash_task:
            return
        self._hash_task = None
        path = self.evidence.path
        self._set_evidence(EvidenceStatus(HASH_FAILED, path, message=message))
        self.message.emit("warning", f"The SHA-256 of '{Path(path).name}' could not be computed: {message}", True)
        if self._analyze_when_hashed:
            self._analyze_when_hashed = False
            self.start_analysis()

    def _start_lookup(self, sha: str) -> None:
        """Look for an analysis of these bytes with the current model and settings (off the GUI thread)."""
        self._cancel_lookup()
        query = self._cache_query(sha)

        def work(cancel: threading.Event, _progress: Callable[[int, int], None]) -> CacheHit | None:
            hit = lookup_cache(query)
            if cancel.is_set():
                raise Cancelled("cache look-up cancelled")
            return hit

        def done(task: BackgroundTask, hit: CacheHit | None) -> None:
            if task is not self._lookup_task:
                return
            self._lookup_task = None
            if hit is None or self._run is not None or self.results or self.path != hit.query.evidence_path:
                return
            if self.evidence.sha256 != hit.query.evidence_sha256:
                return
            if self._cache_query(hit.query.evidence_sha256).key != hit.query.key:
                return  # backend, model or settings changed meanwhile: not what the user now asks for
            self._apply_hit(hit)

        def failed(task: BackgroundTask, message: str) -> None:
            if task is self._lookup_task:
                self._lookup_task = None
                log.warning("cache look-up failed: %s", message)

        self._lookup_task = self._start_task("cache-lookup", work, done, failed)

    def _apply_hit(self, hit: CacheHit) -> None:
        """Show a cached analysis as if it had just finished: timeline, overlay, verdict, model."""
        result = hit.result
        self._clear_results()
        self.results = {fr.index: fr for fr in result.frames}
        self.analysis_result = result
        self.model_info = result.model
        self.backend_description = dict(result.backend)
        self.modelChanged.emit(result.model, self.backend_description)
        if result.frames:
            self.resultsAdded.emit(list(result.frames))
        if self.shown is not None and self.shown.index in self.results:
            self.shown = replace(self.shown, result=self.results[self.shown.index])
            self.shownResultChanged.emit(self.shown)
        self.verdict = result.verdict
        self.verdictChanged.emit(result.verdict)
        self.results_from_cache = hit
        self._set_state(DONE)
        self.cacheLoaded.emit(hit)
        self.message.emit(
            "info", f"Loaded from cache (analysed {format_utc(result.created_utc or hit.saved_utc)}).", False
        )

    def _after_result(self, result: AnalysisResult) -> None:
        """Give a finished run's result the evidence hash, then remember it and save it to the cache."""
        if not result.source.sha256 and self.evidence.path == result.source.path and self.evidence.sha256:
            result.source = replace(result.source, sha256=self.evidence.sha256)
        if not result.source.sha256:
            if self.evidence.state == HASHING and self.evidence.path == result.source.path:
                self._awaiting_sha = result  # filled in (and saved) when the hash arrives
            return
        self._record(result)

    def _record(self, result: AnalysisResult) -> None:
        from ..core.evidence_index import path_key

        self._known_shas[path_key(result.source.path)] = (result.source.sha256, result.created_utc)
        if not self.use_cache:
            return
        root = self.cache_root

        def work(_cancel: threading.Event, _progress: Callable[[int, int], None]) -> str | None:
            saved = save_analysis(result, root)
            return str(saved) if saved is not None else None

        def done(_task: BackgroundTask, saved: str | None) -> None:
            if saved:
                self.last_cache_save = saved

        def failed(_task: BackgroundTask, message: str) -> None:
            self.message.emit("warning", f"The analysis could not be saved to the cache: {message}", False)

        self._start_task("cache-save", work, done, failed)

    def _set_state(self, state: str) -> None:
        self.analysis_state = state
        self.analysisStateChanged.emit(state)

    # ------------------------------------------------------------------ teardown
    def threads_alive(self) -> list[str]:
        """Names of this session's worker threads still running (for tests and shutdown checks)."""
        names = [f"analysis-{r.run_id}" for r in self._runs if r.is_alive()]
        names += [f"{t.name}-{t.task_id}" for t in self._tasks if t.is_alive()]
        if self.decoder.is_alive():
            names.append("decode")
        return names

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop playback, cancel every run and join every worker thread; True when none is left."""
        self.pause()
        self._analyze_when_hashed = False
        for r in self._runs:
            r.cancel()
        for t in self._tasks:  # hashing and look-ups stop between chunks; a cache save finishes its file
            t.cancel()
        deadline = time.perf_counter() + timeout
        ok = True
        for r in self._runs:
            ok = r.join(max(0.0, deadline - time.perf_counter())) and ok
        for t in self._tasks:
            ok = t.join(max(0.0, deadline - time.perf_counter())) and ok
        ok = self.decoder.shutdown(max(0.1, deadline - time.perf_counter())) and ok
        if not ok:
            log.warning("worker threads still running after %.1f s: %s", timeout, self.threads_alive())
        self._run = None
        self._hash_task = self._lookup_task = None
        return ok
