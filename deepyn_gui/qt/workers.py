"""Worker threads for the GUI: decode-for-display and analysis. The GUI thread never waits on either.

Both workers are plain Python threads that report through Qt signals of a QObject living in the GUI
thread; a signal emitted from another thread is delivered to GUI-thread receivers as a queued event,
so results arrive on the GUI thread without any locking in the widgets.

* :class:`DecodeWorker` keeps one :class:`~deepyn_gui.core.video.VideoSource` open (sources are not
  thread-safe, so this thread owns its own) and serves frame requests with "newest request wins":
  a request replaces any pending one, so a fast scrub decodes only the frames the user stops near.
  ``VideoSource.frame_at`` is exact and decodes forward from where it is when that is cheaper than
  seeking, so playback reads sequentially without seeking per frame.
* :class:`AnalysisWorker` runs :func:`deepyn_gui.core.pipeline.iter_analysis` with a backend it builds
  itself (loading a model can take seconds), batches results into signals a few times per second,
  computes the provisional verdict off the GUI thread, and stops within one pipeline poll on cancel.
  Given a :class:`CacheQuery` it first looks the analysis up in the session cache and, on a hit,
  answers with the cached result without building a backend at all.
* :class:`BackgroundTask` runs one short job (hashing the evidence, reading or writing the cache).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..core.errors import Cancelled, DeepYNError
from ..core.pipeline import (
    AnalysisSettings,
    Progress,
    build_result,
    iter_analysis,
    missing_frames_reason,
    source_info,
)
from ..core.results import AnalysisResult, FrameResult, SourceInfo

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
# Evidence hash and session cache (plain functions: they run on worker threads)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheQuery:
    """What a cached analysis must match: the evidence's bytes, the model file and the settings."""

    evidence_path: str
    evidence_sha256: str
    backend: str
    model_path: str | None
    settings: dict[str, Any]
    root: str | None = None  # cache folder; None: the app data dir ($DEEPYN_DATA_DIR)
    model_sha256: str | None = None  # known from a backend this session loaded; else hashed from the file

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """What the viewer compares to decide whether two queries ask for the same analysis."""
        from ..core.cache import settings_hash

        return (self.evidence_sha256, self.backend, self.model_path, settings_hash(self.settings))


@dataclass(frozen=True)
class CacheHit:
    """A cached analysis found for a query, with when it was saved (ISO UTC)."""

    query: CacheQuery
    result: AnalysisResult
    saved_utc: str


_model_shas: dict[tuple[str, int, int], str] = {}
_model_shas_lock = threading.Lock()


def model_file_for(backend: str, model_path: str | None) -> Path | None:
    """The model file backend ``backend`` would load (None when it cannot be known without loading it)."""
    if model_path:
        return Path(model_path)
    if backend in ("onnx", "onnx-int8"):
        from ..backends import default_model_path

        return default_model_path(int8=backend == "onnx-int8")
    return None  # e.g. vart: no default model


def model_sha_for(backend: str, model_path: str | None) -> str | None:
    """SHA-256 of the model file the backend would load, as its ModelInfo will report it; None if unknown.

    Backends record the SHA-256 of their model file, so the cache can be asked before a (slow) model
    load. Memoised by path, size and mtime: a model is often hundreds of MB.
    """
    path = model_file_for(backend, model_path)
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    key = (os.path.realpath(path), int(st.st_size), int(st.st_mtime_ns))
    with _model_shas_lock:
        known = _model_shas.get(key)
    if known is not None:
        return known
    from ..core.model.metadata import sha256_file as model_sha256

    try:
        digest = model_sha256(path)
    except OSError as exc:
        log.warning("cannot hash the model %s: %s", path, exc)
        return None
    with _model_shas_lock:
        _model_shas[key] = digest
    return digest


def lookup_cache(query: CacheQuery) -> CacheHit | None:
    """The cached analysis of exactly this evidence, model and settings, or None (never raises for a miss)."""
    from ..core.cache import AnalysisCache

    model_sha = query.model_sha256 or model_sha_for(query.backend, query.model_path)
    if not model_sha or not query.evidence_sha256:
        return None
    cache = AnalysisCache(query.root)
    path = cache.path_for(query.evidence_sha256, model_sha, query.settings)
    if not path.is_file():
        return None
    result = cache.load_file(path, evidence_path=query.evidence_path)
    if result is None or result.source.sha256 != query.evidence_sha256 or result.model.sha256 != model_sha:
        return None
    saved = next((e.saved_utc for e in cache.entries(query.evidence_sha256) if e.path == path), "")
    return CacheHit(query, result, saved or result.created_utc)


def cacheable(result: AnalysisResult) -> bool:
    """Only complete analyses with no backend error are cached: anything else should be run again."""
    return (
        result.complete
        and bool(result.source.sha256)
        and bool(result.model.sha256)
        and not any(fr.state == "error" or any(f.state == "error" for f in fr.faces) for fr in result.frames)
    )


def save_analysis(result: AnalysisResult, root: str | None = None) -> Path | None:
    """Record the evidence's SHA-256 for its path and, when :func:`cacheable`, save the analysis.

    Returns the cache file (None when only the fingerprint was recorded). Raises DeepYNError on a
    write failure: the caller reports it, the analysis on screen is unaffected.
    """
    from ..core.cache import AnalysisCache
    from ..core.evidence_index import EvidenceIndex

    if not result.source.sha256:
        return None
    cache = AnalysisCache(root)
    EvidenceIndex(cache.root).record(result.source.path, result.source.sha256, result.created_utc)
    return cache.save(result) if cacheable(result) else None


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
        job = self.job
        rid = self.run_id
        frames: list[FrameResult] = []
        pending: list[FrameResult] = []
        backend: Any = None
        src0: SourceInfo | None = None
        complete, reason = False, ""
        warnings: list[str] = []
        missing: list[int] = []
        digest: dict[str, str] = {}
        hash_cancel = threading.Event()
        hasher: threading.Thread | None = None

        def flush() -> None:
            if pending:
                self.framesReady.emit(rid, list(pending))
                pending.clear()

        _lower_thread_priority(job.nice)
        if job.cache is not None and self._answer_from_cache(job.cache):
            return
        given = job.evidence_sha256
        if isinstance(given, str):
            digest["sha256"] = given
        try:
            backend = self._factory(
                job.backend, model_path=job.model_path, threads=job.threads, batch_size=job.settings.batch_size
            )
            if self._cancel.is_set():
                raise Cancelled("analysis cancelled")
            model = backend.model_info
            # Read the clip's facts now: a clip deleted or renamed mid-run must not lose the frames done.
            src0 = source_info(job.path, "")
            self.backendReady.emit(rid, model, backend.describe())
            if given is None:
                hasher = threading.Thread(
                    target=self._hash, args=(job.path, digest, hash_cancel), name=f"deepyn-gui-sha256-{rid}",
                    daemon=True,
                )
                hasher.start()
            last_flush = last_verdict = time.perf_counter()
            for item in iter_analysis(job.path, backend, job.settings, self._cancel, total_frames=job.total_frames):
                now = time.perf_counter()
                if isinstance(item, Progress):
                    warnings.extend(item.warnings)
                    missing.extend(item.missing_frames)
                    flush()
                    last_flush = now
                    self.progress.emit(rid, item)
                    if now - last_verdict >= self._verdict_every_s and frames:
                        last_verdict = now
                        self._emit_verdict(frames, model)
                    continue
                frames.append(item)
                pending.append(item)
                if now - last_flush >= self._flush_s:
                    flush()
                    last_flush = now
            complete = True
        except Cancelled:
            reason = "cancelled by the user"
        except DeepYNError as exc:
            reason = str(exc)
            log.warning("analysis of %s stopped: %s", job.path, exc)
            self.failed.emit(rid, str(exc))
        except Exception as exc:  # shown to the user and logged with the traceback
            reason = f"{type(exc).__name__}: {exc}"
            log.exception("analysis of %s failed", job.path)
            self.failed.emit(rid, f"Analysis failed: {reason}")
        flush()
        result = None
        try:
            if backend is not None:
                if self._cancel.is_set():
                    hash_cancel.set()  # a cancelled run should end now, not after hashing a large file
                if hasher is not None:
                    hasher.join()
                if isinstance(given, Future):
                    self._await_hash(given, digest)
                if "error" in digest and not self._cancel.is_set():
                    log.warning("hashing %s failed: %s", job.path, digest["error"])
                if src0 is None:
                    raise DeepYNError("the clip could not be read")
                src = dataclasses.replace(src0, sha256=digest.get("sha256", ""))
                if missing and complete:  # the same rule as the CLI: undecodable frames make it incomplete
                    complete, reason = False, missing_frames_reason(missing)
                result = build_result(src, backend, job.settings, frames, complete=complete, stop_reason=reason)
                result.warnings = warnings
                result.undecodable_frames = sorted(set(missing))
        except Exception as exc:
            log.exception("building the result of %s failed", job.path)
            self.failed.emit(rid, f"The analysis result could not be assembled: {exc}")
        finally:
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

    def _await_hash(self, pending: Future[str], digest: dict[str, str]) -> None:
        """Take the caller's evidence hash; wait for it unless the run is cancelled (then the caller fills it in)."""
        while True:
            try:
                digest["sha256"] = pending.result(timeout=0.05)
                return
            except TimeoutError:
                if self._cancel.is_set():
                    return
            except Cancelled:
                return
            except Exception as exc:  # noqa: BLE001 - recorded; the result then carries no hash
                digest["error"] = f"{type(exc).__name__}: {exc}"
                return

    def _emit_verdict(self, frames: list[FrameResult], model: Any) -> None:
        from ..core.verdict import video_verdict

        try:
            self.verdictReady.emit(self.run_id, video_verdict(frames, model, self.job.settings.aggregator))
        except Exception:  # a provisional verdict is optional; the final one is not
            log.exception("provisional verdict failed")

    @staticmethod
    def _hash(path: str, out: dict[str, str], cancel: threading.Event) -> None:
        """SHA-256 of the evidence, on its own thread so it overlaps the analysis."""
        try:
            from ..core.evidence import sha256_file

            out["sha256"] = sha256_file(path, cancel=cancel)
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - recorded; the result then carries no hash
            out["error"] = f"{type(exc).__name__}: {exc}"
