"""The viewer's background jobs: decode-for-display, analysis, and short tasks. The GUI thread never
waits on any of them.

Each is a thin adapter over the one job class, :class:`~deepyn_gui.qt.jobs.Worker` (a thread, one
cancel, answers as signals queued to the GUI thread); the adapters only give its generic signals the
names and run ids the session filters by.

* :class:`DecodeWorker` keeps one :class:`~deepyn_gui.core.video.VideoSource` open (sources are not
  thread-safe, so this thread owns its own) and serves frame requests with "newest request wins":
  a request replaces any pending one, so a fast scrub decodes only the frames the user stops near.
  ``VideoSource.frame_at`` is exact and decodes forward from where it is when that is cheaper than
  seeking, so playback reads sequentially without seeking per frame.
* :class:`AnalysisWorker` builds a backend (loading a model can take seconds) and forwards what the
  core engine :func:`deepyn_gui.core.pipeline.run_analysis` yields -- the generator the CLI consumes --
  as signals, frames batched a few times per second; it stops within one pipeline poll on cancel.
  Given a :class:`CacheQuery` it first looks the analysis up in the session cache (the rule and the
  look-up are :mod:`deepyn_gui.core.cache`'s) and, on a hit, answers without building a backend.
* :class:`BackgroundTask` runs one short job (hashing the evidence, reading or writing the cache).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..core.cache import (  # noqa: F401 - CacheQuery, CacheHit, cacheable, save_analysis: re-exported
    CacheHit,
    CacheQuery,
    cacheable,
    lookup,
    model_file_sha256,
    save_analysis,
)
from ..core.errors import Cancelled, DeepYNError
from ..core.pipeline import AnalysisSettings, Progress, RunStopped, run_analysis
from ..core.results import AnalysisResult, FrameResult, Verdict
from .jobs import JobAdapter, Worker

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Decoding for display
# --------------------------------------------------------------------------------------------------


def to_display_buffer(rgb: np.ndarray) -> np.ndarray | None:
    """RGB -> BGRX bytes, i.e. ``QImage.Format_RGB32`` on little-endian machines, or None elsewhere.

    Qt's raster engine paints RGB32 natively; an RGB888 image is converted on every paint (about 8x
    slower for 720p here). The conversion is a byte shuffle (pixel values unchanged) and is done on
    the decode thread, so the GUI thread only paints.
    """
    if sys.byteorder != "little" or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        return None
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    """A frame decoded for display, tagged with the clip generation and request it answers."""

    generation: int
    request: int
    index: int
    pts_s: float
    rgb: np.ndarray
    decode_s: float
    display: np.ndarray | None = None  # the same pixels as BGRX (QImage.Format_RGB32), cheap to paint


class DecodeWorker(QObject):
    """Opens clips and decodes frames on its own thread; the newest request wins.

    Generations number the clips: every :meth:`open` starts a new one, and answers carry the
    generation they belong to, so the session can drop anything that belongs to a clip it has left.
    A failed open keeps the previous clip open (and its generation valid).
    """

    opened = Signal(int, object)  # generation, VideoInfo
    timesReady = Signal(int, object)  # generation, float64 array: each frame's time (s); sent before opened
    openFailed = Signal(int, str)  # generation, user-facing message
    frameDecoded = Signal(object)  # DecodedFrame
    frameFailed = Signal(int, int, str)  # generation, frame index, message

    def __init__(self, parent: QObject | None = None, decode_threads: int = 2) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._worker: Worker | None = None  # started on the first request; its cancel is the stop
        self._stop = False
        self._generation = 0
        self._request = 0
        self._open_path: tuple[int, str] | None = None
        self._want: tuple[int, int, int] | None = None  # generation, request id, index
        self._close = False
        self._decode_threads = decode_threads
        #: the video stream to show (None: the one with the most frames / largest, as analysed)
        self.video_stream: int | None = None
        self.dropped_requests = 0  # requests replaced before they were served (scrub coalescing)

    # -- GUI-thread API -----------------------------------------------------------------------------
    def open(self, path: str) -> int:
        """Ask to open ``path``; returns its generation (answered by ``opened`` or ``openFailed``)."""
        with self._cond:
            self._ensure_thread()
            self._generation += 1
            self._open_path = (self._generation, str(path))
            self._cond.notify()
            return self._generation

    def request(self, generation: int, index: int) -> int:
        """Ask for frame ``index`` of clip ``generation``, replacing any request still pending."""
        with self._cond:
            self._ensure_thread()
            self._request += 1
            if self._want is not None:
                self.dropped_requests += 1
            self._want = (generation, self._request, int(index))
            self._cond.notify()
            return self._request

    def close_clip(self) -> None:
        """Release the open clip (pending requests are dropped)."""
        with self._cond:
            self._close = True
            self._want = None
            self._cond.notify()

    def shutdown(self, timeout: float = 3.0) -> bool:
        """Stop the thread and wait for it; True when it has ended."""
        with self._cond:
            self._stop = True
            self._want = None
            worker = self._worker
            if worker is not None:
                worker.cancel()
            self._cond.notify()
        return worker is None or worker.join(timeout)

    def is_alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _ensure_thread(self) -> None:
        if self._worker is None and not self._stop:
            self._worker = Worker(self._serve, "decode", numbered=False, parent=self)
            self._worker.start()

    # -- worker thread ------------------------------------------------------------------------------
    def _serve(self, cancel: threading.Event, _emit: Callable[[Any], None]) -> None:
        """Serve open/close/frame requests until cancelled; answers go out as this object's signals
        (one hop: a scrub's latency is the decode, not a relay)."""
        from ..core.video import FrameReader, VideoSource

        src: Any = None
        src_gen = -1
        try:
            while True:
                with self._cond:
                    while not (cancel.is_set() or self._open_path or self._close or self._want):
                        self._cond.wait()
                    if cancel.is_set():
                        return
                    open_req, self._open_path = self._open_path, None
                    close, self._close = self._close, False
                    want, self._want = self._want, None
                if close and src is not None:
                    src.close()
                    src, src_gen = None, -1
                if open_req is not None:
                    gen, path = open_req
                    try:
                        source = VideoSource(path, threads=self._decode_threads, stream=self.video_stream)
                    except DeepYNError as exc:
                        self.openFailed.emit(gen, str(exc))
                    except Exception as exc:  # a bug must reach the user, not kill the thread
                        log.exception("opening %s failed", path)
                        self.openFailed.emit(gen, f"Could not open the file: {type(exc).__name__}: {exc}")
                    else:
                        if src is not None:
                            src.close()
                        src, src_gen = FrameReader(source), gen  # cached frames: cheap steps back
                        self.timesReady.emit(gen, np.asarray(source.timestamps(), dtype=np.float64))
                        self.opened.emit(gen, source.info)
                if want is not None and src is not None and want[0] == src_gen:
                    gen, req, index = want
                    t0 = time.perf_counter()
                    try:
                        frame = src.frame_at(index)
                    except (DeepYNError, IndexError) as exc:
                        self.frameFailed.emit(gen, index, str(exc))
                    except Exception as exc:
                        log.exception("decoding frame %d failed", index)
                        self.frameFailed.emit(gen, index, f"Frame {index} could not be decoded: {exc}")
                    else:
                        display = to_display_buffer(frame.rgb)
                        dt = time.perf_counter() - t0
                        self.frameDecoded.emit(
                            DecodedFrame(gen, req, frame.index, frame.pts_s, frame.rgb, dt, display)
                        )
        finally:
            if src is not None:
                src.close()


# --------------------------------------------------------------------------------------------------
# Session cache: the rule and the look-up live in core.cache; this only names the model file
# --------------------------------------------------------------------------------------------------


def model_sha_for(backend: str, model_path: str | None) -> str | None:
    """SHA-256 of the model file the backend would load, as its ModelInfo will report it; None if unknown."""
    from ..backends import model_file_for

    return model_file_sha256(model_file_for(backend, model_path))


def lookup_cache(query: CacheQuery) -> CacheHit | None:
    """The cached analysis of exactly this evidence, model and settings, or None (:func:`core.cache.lookup`)."""
    from ..backends import model_file_for

    return lookup(query, model_file_for(query.backend, query.model_path))


class BackgroundTask(JobAdapter):
    """One short job (hashing, a cache look-up or save): an adapter over :class:`~.jobs.Worker`.

    ``fn(cancel, progress)`` runs on the worker thread (``progress(done, total)``); its outcome,
    failure and progress come back as signals tagged with the task id, so the session can drop
    answers about a clip it has left. A cancelled task emits neither ``succeeded`` nor ``failed``.
    """

    progressed = Signal(int, object, object)  # task id, done, total (Python ints: files can exceed 2 GB)
    succeeded = Signal(int, object)  # task id, outcome
    failed = Signal(int, str)  # task id, user-facing message

    def __init__(self, fn: Callable[[threading.Event, Callable[[int, int], None]], Any], name: str,
                 parent: QObject | None = None) -> None:
        super().__init__(lambda cancel, emit: fn(cancel, lambda done, total: emit((done, total))), name, parent=parent)
        self.name = name
        self.task_id = self.worker.job_id

    def _on_item(self, done_total: tuple[int, int]) -> None:
        self.progressed.emit(self.task_id, *done_total)

    def _on_result(self, outcome: Any) -> None:
        self.succeeded.emit(self.task_id, outcome)

    def _on_failed(self, message: str) -> None:
        self.failed.emit(self.task_id, message)


# --------------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisJob:
    """What to analyse and how; everything here ends up in the result's provenance."""

    path: str
    backend: str
    settings: AnalysisSettings
    model_path: str | None = None
    threads: int = 2
    total_frames: int | None = None
    nice: int = 5  # analysis threads yield the CPU to the GUI thread (Linux; see _lower_thread_priority)
    #: The evidence's SHA-256 if the caller already has it, a Future of it while the caller is still
    #: hashing (the run then waits for it before finishing, unless cancelled), or None: hash it here.
    evidence_sha256: str | Future[str] | None = None
    #: Look the analysis up in the session cache first (None: always run the backend).
    cache: CacheQuery | None = None


BackendFactory = Callable[..., Any]


def _lower_thread_priority(increment: int) -> bool:
    """Make the calling thread (and the threads it starts afterwards) nicer than the GUI thread.

    On Linux the nice value is per thread and inherited by threads created later, so raising it at
    the start of the analysis thread also covers the pipeline stages and the runtime's thread pool,
    while the GUI thread keeps its priority: on a small, busy machine it then gets the CPU first and
    stays responsive. Elsewhere ``setpriority`` would renice the whole process, so this does nothing.
    """
    if increment <= 0 or not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
        return True
    except OSError:
        return False


def _default_factory(name: str, model_path: str | None = None, **options: Any) -> Any:
    from ..backends import create_backend

    return create_backend(name, model_path=model_path, **options)


@dataclass(frozen=True)
class _BackendReady:
    model: Any  # ModelInfo
    description: dict[str, Any]


class AnalysisWorker(JobAdapter):
    """One analysis run: an adapter over :class:`~.jobs.Worker`. Signals carry the run id so stale
    runs can be ignored; ``finished`` always comes last, once, with the result (partial after a cancel)."""

    backendReady = Signal(int, object, object)  # run, ModelInfo, backend description dict
    framesReady = Signal(int, object)  # run, list[FrameResult]
    progress = Signal(int, object)  # run, Progress
    verdictReady = Signal(int, object)  # run, provisional Verdict
    failed = Signal(int, str)  # run, user-facing message (the run still finishes)
    cached = Signal(int, object)  # run, CacheHit: the answer came from the session cache (then finished)
    finished = Signal(int, object)  # run, AnalysisResult | None (None: nothing could be run)

    def __init__(
        self,
        job: AnalysisJob,
        backend_factory: BackendFactory | None = None,
        flush_s: float = 0.1,
        verdict_every_s: float = 0.5,
        parent: QObject | None = None,
    ) -> None:
        self.job = job
        self._factory = backend_factory or _default_factory
        self._flush_s = flush_s
        self._verdict_every_s = verdict_every_s
        self.from_cache = False  # the run answered from the session cache, without a backend
        # the engine winds down itself on cancel and returns the frames so far: drain, do not close
        super().__init__(self._items, "analysis", drain_on_cancel=True, failure_prefix="Analysis failed: ",
                         parent=parent)
        self.run_id = self.worker.job_id

    # -- worker thread ------------------------------------------------------------------------------
    def _items(self, cancel: threading.Event, _emit: Callable[[Any], None]) -> Generator[Any, None, AnalysisResult | None]:
        """Build the backend, then re-yield what the core engine (:func:`run_analysis`) yields.

        Nothing about the analysis is decided here: warnings, error states, completeness and the
        evidence hash come from the same generator the CLI consumes. Frames are batched a few times
        a second so the GUI thread gets lists, not one event per frame. Returns the result.
        """
        job = self.job
        _lower_thread_priority(job.nice)
        if job.cache is not None:
            hit = self._cache_hit(job.cache)
            if hit is not None and not cancel.is_set():
                self.from_cache = True
                yield hit
                return hit.result
        backend: Any = None
        pending: list[FrameResult] = []
        result: AnalysisResult | None = None
        try:
            backend = self._factory(
                job.backend, model_path=job.model_path, threads=job.threads, batch_size=job.settings.batch_size
            )
            if cancel.is_set():
                raise Cancelled("analysis cancelled")
            yield _BackendReady(backend.model_info, backend.describe())
            last_flush = time.perf_counter()
            for item in run_analysis(
                job.path, backend, job.settings, cancel, evidence_sha256=job.evidence_sha256,
                total_frames=job.total_frames, verdict_every_s=self._verdict_every_s, on_cancel="result",
            ):
                now = time.perf_counter()
                if isinstance(item, FrameResult):
                    pending.append(item)
                    if now - last_flush >= self._flush_s:
                        yield list(pending)
                        pending.clear()
                        last_flush = now
                    continue
                if pending:
                    yield list(pending)
                    pending.clear()
                last_flush = now
                if isinstance(item, AnalysisResult):
                    result = item
                elif isinstance(item, RunStopped):
                    if not cancel.is_set():
                        log.warning("analysis of %s stopped: %s", job.path, item.reason)
                        yield item
                else:
                    yield item  # Progress, or a provisional Verdict (the final one is in the result)
            return result
        except GeneratorExit:
            raise
        except BaseException:
            if pending:  # the frames analysed before the failure still reach the timeline
                yield list(pending)
            raise
        finally:
            if backend is not None:
                try:
                    backend.close()
                except Exception:  # closing must not hide the result
                    log.exception("closing backend %s failed", job.backend)

    @staticmethod
    def _cache_hit(query: CacheQuery) -> CacheHit | None:
        try:
            return lookup_cache(query)
        except Exception:  # a broken cache must never stop an analysis
            log.exception("looking up the analysis cache failed")
            return None

    # -- GUI thread: one typed signal per kind of item ----------------------------------------------
    def _on_item(self, item: Any) -> None:
        rid = self.run_id
        if isinstance(item, list):
            self.framesReady.emit(rid, item)
        elif isinstance(item, Progress):
            self.progress.emit(rid, item)
        elif isinstance(item, Verdict):
            self.verdictReady.emit(rid, item)
        elif isinstance(item, RunStopped):
            self.failed.emit(rid, item.reason)
        elif isinstance(item, _BackendReady):
            self.backendReady.emit(rid, item.model, item.description)
        elif isinstance(item, CacheHit):
            self.cached.emit(rid, item)

    def _on_result(self, result: AnalysisResult | None) -> None:
        self.finished.emit(self.run_id, result)

    def _on_cancelled(self, partial: AnalysisResult | None) -> None:
        self._on_result(partial)  # a cancelled run still finishes, with the frames analysed so far

    def _on_failed(self, message: str) -> None:
        log.warning("analysis of %s stopped: %s", self.job.path, message)
        self.failed.emit(self.run_id, message)
        self.finished.emit(self.run_id, None)
