"""Worker threads for the GUI: decode-for-display and analysis. The GUI thread never waits on either.

Both workers are plain Python threads that report through Qt signals of a QObject living in the GUI
thread; a signal emitted from another thread is delivered to GUI-thread receivers as a queued event,
so results arrive on the GUI thread without any locking in the widgets.

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
from collections.abc import Callable
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
        self._thread: threading.Thread | None = None
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
            self._cond.notify()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stop:
            self._thread = threading.Thread(target=self._run, name="deepyn-gui-decode", daemon=True)
            self._thread.start()

    # -- worker thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        from ..core.video import FrameReader, VideoSource

        src: Any = None
        src_gen = -1
        try:
            while True:
                with self._cond:
                    while not (self._stop or self._open_path or self._close or self._want):
                        self._cond.wait()
                    if self._stop:
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


class ThreadedJob:
    """The thread lifecycle shared by the GUI's workers: start, cancel, poll and join without blocking.

    A subclass calls :meth:`_init_thread` in its ``__init__`` and implements ``_run``; cancelling only
    sets an event that ``_run`` checks, so the GUI thread never waits on the work itself.
    """

    _cancel: threading.Event
    _thread: threading.Thread

    def _init_thread(self, name: str) -> None:
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` s; True when the thread has ended (or never started)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()


class BackgroundTask(ThreadedJob, QObject):
    """One short job on its own daemon thread; the GUI thread never waits on it.

    ``fn(cancel, progress)`` runs on the thread (``progress(done, total)``); its outcome, failure and
    progress come back as signals tagged with the task id, so the session can drop answers about a
    clip it has left. :class:`Cancelled` ends a task quietly (``failed`` is not emitted).
    """

    progressed = Signal(int, object, object)  # task id, done, total (Python ints: files can exceed 2 GB)
    succeeded = Signal(int, object)  # task id, outcome
    failed = Signal(int, str)  # task id, user-facing message

    _ids = 0

    def __init__(self, fn: Callable[[threading.Event, Callable[[int, int], None]], Any], name: str,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        BackgroundTask._ids += 1
        self.task_id = BackgroundTask._ids
        self.name = name
        self._fn = fn
        self._init_thread(f"deepyn-gui-{name}-{self.task_id}")

    def _run(self) -> None:
        tid = self.task_id
        try:
            outcome = self._fn(self._cancel, lambda done, total: self.progressed.emit(tid, done, total))
        except Cancelled:
            return
        except DeepYNError as exc:
            self.failed.emit(tid, str(exc))
        except Exception as exc:  # a bug must reach the user, not vanish with the thread
            log.exception("background task %s failed", self.name)
            self.failed.emit(tid, f"{type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(tid, outcome)


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


class AnalysisWorker(ThreadedJob, QObject):
    """One analysis run on its own thread. Signals carry the run id so stale runs can be ignored."""

    backendReady = Signal(int, object, object)  # run, ModelInfo, backend description dict
    framesReady = Signal(int, object)  # run, list[FrameResult]
    progress = Signal(int, object)  # run, Progress
    verdictReady = Signal(int, object)  # run, provisional Verdict
    failed = Signal(int, str)  # run, user-facing message (the run still finishes)
    cached = Signal(int, object)  # run, CacheHit: the answer came from the session cache (then finished)
    finished = Signal(int, object)  # run, AnalysisResult | None (None: nothing could be run)

    _ids = 0

    def __init__(
        self,
        job: AnalysisJob,
        backend_factory: BackendFactory | None = None,
        flush_s: float = 0.1,
        verdict_every_s: float = 0.5,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        AnalysisWorker._ids += 1
        self.run_id = AnalysisWorker._ids
        self.job = job
        self._factory = backend_factory or _default_factory
        self._flush_s = flush_s
        self._verdict_every_s = verdict_every_s
        self._init_thread(f"deepyn-gui-analysis-{self.run_id}")
        self.cancelled_at: float | None = None
        self.ended_at: float | None = None
        self.from_cache = False  # the run answered from the session cache, without a backend

    def cancel(self) -> None:
        """Ask the run to stop; it finishes (with the frames so far) within one pipeline poll."""
        if not self._cancel.is_set():
            self.cancelled_at = time.perf_counter()
            self._cancel.set()

    # -- worker thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        """Build the backend, then forward what the core engine (:func:`run_analysis`) yields as signals.

        Nothing about the analysis is decided here: warnings, error states, completeness and the
        evidence hash come from the same generator the CLI consumes.
        """
        job = self.job
        rid = self.run_id
        pending: list[FrameResult] = []
        backend: Any = None
        result: AnalysisResult | None = None

        def flush() -> None:
            if pending:
                self.framesReady.emit(rid, list(pending))
                pending.clear()

        _lower_thread_priority(job.nice)
        if job.cache is not None and self._answer_from_cache(job.cache):
            return
        try:
            backend = self._factory(
                job.backend, model_path=job.model_path, threads=job.threads, batch_size=job.settings.batch_size
            )
            if self._cancel.is_set():
                raise Cancelled("analysis cancelled")
            self.backendReady.emit(rid, backend.model_info, backend.describe())
            last_flush = time.perf_counter()
            for item in run_analysis(
                job.path, backend, job.settings, self._cancel, evidence_sha256=job.evidence_sha256,
                total_frames=job.total_frames, verdict_every_s=self._verdict_every_s, on_cancel="result",
            ):
                now = time.perf_counter()
                if isinstance(item, FrameResult):
                    pending.append(item)
                    if now - last_flush >= self._flush_s:
                        flush()
                        last_flush = now
                    continue
                flush()
                last_flush = now
                if isinstance(item, Progress):
                    self.progress.emit(rid, item)
                elif isinstance(item, Verdict):  # provisional; the final one is in the result
                    self.verdictReady.emit(rid, item)
                elif isinstance(item, RunStopped):
                    if not self._cancel.is_set():
                        log.warning("analysis of %s stopped: %s", job.path, item.reason)
                        self.failed.emit(rid, item.reason)
                else:
                    result = item
        except Cancelled:
            pass
        except DeepYNError as exc:
            log.warning("analysis of %s stopped: %s", job.path, exc)
            self.failed.emit(rid, str(exc))
        except Exception as exc:  # shown to the user and logged with the traceback
            log.exception("analysis of %s failed", job.path)
            self.failed.emit(rid, f"Analysis failed: {type(exc).__name__}: {exc}")
        finally:
            flush()
            if backend is not None:
                try:
                    backend.close()
                except Exception:  # closing must not hide the result
                    log.exception("closing backend %s failed", job.backend)
            self.ended_at = time.perf_counter()
            self.finished.emit(rid, result)

    def _answer_from_cache(self, query: CacheQuery) -> bool:
        """Finish the run with a cached analysis if there is one (True); no backend is built then."""
        try:
            hit = lookup_cache(query)
        except Exception:  # a broken cache must never stop an analysis
            log.exception("looking up the analysis cache failed")
            hit = None
        if hit is None or self._cancel.is_set():
            return False
        self.from_cache = True
        self.cached.emit(self.run_id, hit)
        self.ended_at = time.perf_counter()
        self.finished.emit(self.run_id, hit.result)
        return True
