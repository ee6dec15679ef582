"""THE analysis engine, a cancellable generator: decode -> detect/track/crop -> batch -> infer -> results.

:func:`run_analysis` is what every shell drives (``deepyn analyze`` / ``report`` / ``batch`` through
:func:`analyze`, the viewer's worker directly): it yields frames, progress, provisional verdicts and
finally the :class:`AnalysisResult`, deciding warnings, error states and completeness once. The detect
stage and the result builders live in :mod:`.detect_stage` (``compare`` drives them too), the
abandonable backend call in :mod:`.infer_caller`.

Each stage runs on its own thread and hands work on through a bounded queue, so decoding, detection
and inference overlap while memory stays bounded. The generator yields :class:`FrameResult` objects in
frame order, interleaved with :class:`Progress` reports. Closing the generator (or setting the cancel
event) stops every stage within one queue timeout and joins the threads: no thread is left behind.

An exception in the decode or detect stage travels behind the frames handed on before it, so those
frames still come out; then it is re-raised in the consumer, never a hang. A detector failure on one
frame only marks that frame ``error``. A backend failure on one batch marks those faces ``error`` with
the message; ``on_error="stop"`` then ends the run, ``"continue"`` carries on with the next batch.

A backend call that does not return within ``AnalysisSettings.infer_timeout_s`` counts as such a
failure ("backend timed out after N s"). Python cannot kill a thread stuck in native code (an
onnxruntime or VART call that never returns), so the hung call is *abandoned*: it stays on its own
daemon thread ``deepyn-infer-abandoned`` until the native call returns (or the process exits), its
result is discarded, and the next batch runs on a fresh caller thread.

Memory stays bounded by the queues: the decoded-frame queue is sized by bytes (a few 8K frames at
most, eight smaller ones), prepared frames keep only their 224 px crops, and finished frames keep only
compressed masks.

Size (~620 lines): the engine's stages, their threads and queues share one stop/cancel protocol;
the detect stage and the abandonable backend call are already in their own modules.
"""

from __future__ import annotations

import datetime as _dt
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .detect_stage import BoxCarrier, DetectStage, PreparedFrame, face_result, frame_result
from .errors import BackendError, Cancelled, DeepYNError, InputError
from .infer_caller import _Abandon, _BackendTimeout, _InferCaller
from .inference import InferenceBackend, check_backend_output
from .results import (
    AnalysisResult,
    FrameResult,
    SourceInfo,
    Verdict,
)

# The detect stage lives in detect_stage.py; these names stay importable from here for bench/ and tests.
_BoxCarrier = BoxCarrier
_Prepared = PreparedFrame

_POLL_S = 0.05  # how often blocked stages look at the stop flag: bounds cancel latency


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that changes the numbers; written into every export so a run can be reproduced."""

    stride: int = 1
    start_frame: int = 0
    max_frames: int | None = None
    detector: str = "auto"
    detector_model: str | None = None
    detector_min_score: float | None = None
    margin: float = 1.3
    min_face_side: int = 40
    batch_size: int = 8
    aggregator: str = "span"  # = verdict.DEFAULT_AGGREGATOR
    on_error: Literal["continue", "stop"] = "continue"
    detector_threads: int = 1
    # The face detector runs on every Nth analysed frame (and whenever nothing is tracked or the shot
    # changes); boxes move on by their velocity in between. 3 keeps 720p at real time on 2 cores; on
    # real talking heads it changed frame scores by 0.035 on average (less than the model's own
    # frame-to-frame variation, 0.047) and verdict scores by <= 0.044, no verdict label changed
    # (bench/accuracy_detect_every.py). 1 = the detector on every frame.
    detect_every: int = 3
    # Of those detections, every Nth looks at the whole frame; the others look again only around the
    # faces already tracked (at most two), about 2.5x cheaper per face with res10. A face that walks in
    # is found by the next whole-frame pass (within detect_every * full_detect_every frames); a tracked
    # face not found near its place triggers one. 1 = every detection looks at the whole frame.
    full_detect_every: int = 4
    #: which video stream (0-based among the video streams); None = the one with the most frames / largest
    video_stream: int | None = None
    infer_timeout_s: float | None = 60.0  # a backend call taking longer is abandoned and its faces marked error

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise InputError(f"stride must be at least 1 (got {self.stride})")
        if self.start_frame < 0:
            raise InputError("start frame must be >= 0")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError("max frames must be at least 1")
        if not 1.0 <= self.margin <= 4.0:
            raise InputError(f"crop margin must be between 1.0 and 4.0 (got {self.margin})")
        if self.batch_size < 1:
            raise InputError("batch size must be at least 1")
        if self.detect_every < 1:
            raise InputError("detect_every must be at least 1")
        if self.full_detect_every < 1:
            raise InputError("full_detect_every must be at least 1")
        if self.on_error not in ("continue", "stop"):
            raise InputError("on_error must be 'continue' or 'stop'")
        if self.infer_timeout_s is not None and not (
            isinstance(self.infer_timeout_s, (int, float)) and math.isfinite(self.infer_timeout_s)
            and self.infer_timeout_s > 0
        ):
            raise InputError(f"inference timeout must be a positive number of seconds (got {self.infer_timeout_s})")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if d.get("video_stream") is None:  # the default: left out, so cache keys of earlier runs still match
            d.pop("video_stream", None)
        return d


@dataclass(frozen=True)
class Progress:
    """How far the run is: frames analysed so far of the frames it will analyse."""

    done: int
    total: int
    fps: float
    eta_s: float | None
    elapsed_s: float
    stage_busy_s: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # non-fatal decode notices (damaged data, fewer frames than declared)
    missing_frames: tuple[int, ...] = ()  # frames asked for that could not be decoded (final report only)


@dataclass
class _Failure:
    stage: str
    exc: BaseException


_END = object()
_FRAME_QUEUE_BYTES = 192 << 20  # decoded frames waiting for detection: 8 at 1080p, 7 at 4K, 1 at 8K


class _Stages:
    """Owns the threads and queues of one run."""

    def __init__(self, path: str, backend: InferenceBackend, settings: AnalysisSettings, cancel: threading.Event):
        self.path = path
        self.backend = backend
        self.settings = settings
        self.cancel = cancel
        self.stop = threading.Event()
        self.frames_q: queue.Queue[Any] = queue.Queue(maxsize=8)
        self.prepared_q: queue.Queue[Any] = queue.Queue(maxsize=16)
        self.out_q: queue.Queue[Any] = queue.Queue(maxsize=64)
        self.busy: dict[str, float] = {"decode": 0.0, "detect": 0.0, "infer": 0.0}
        self.decode_errors: list[str] = []
        self.missing_frames: list[int] = []
        self.threads: list[threading.Thread] = []
        self.caller = _InferCaller(backend)

    # -- plumbing -------------------------------------------------------------------------------
    def stopping(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()

    def put(self, q: queue.Queue[Any], item: Any) -> bool:
        """Put unless stopping; False means the run is being torn down."""
        while not self.stopping():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: queue.Queue[Any]) -> Any:
        while not self.stopping():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END

    def start(self) -> None:
        for name, fn in (("decode", self._decode), ("detect", self._detect), ("infer", self._infer)):
            t = threading.Thread(target=self._guard, args=(name, fn), name=f"deepyn-{name}", daemon=True)
            self.threads.append(t)
            t.start()

    def _guard(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer, never swallowed
            # Decode and detect failures travel in order behind the frames already handed on, so the
            # frames before the failure still come out; an infer failure goes straight to the consumer.
            downstream = {"decode": self.frames_q, "detect": self.prepared_q}.get(name)
            if downstream is None or not self.put(downstream, _Failure(name, exc)):
                self.put_failure(name, exc)

    def put_failure(self, name: str, exc: BaseException) -> None:
        # The consumer must see the failure even if queues are full: drop queued results first.
        failure = _Failure(name, exc)
        while True:
            try:
                self.out_q.put(failure, timeout=_POLL_S)
                return
            except queue.Full:
                if self.stopping():
                    return
                try:
                    self.out_q.get_nowait()
                except queue.Empty:
                    pass

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every stage and join its thread; a backend call in flight may finish first (bounded)."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        # A call still in flight gets a second to finish (a normal batch); a hung one is abandoned.
        self.caller.close(min(1.0, deadline - time.monotonic()))

    # -- stages ---------------------------------------------------------------------------------
    def _decode(self) -> None:
        from .video import VideoSource

        s = self.settings
        with VideoSource(self.path, stream=s.video_stream) as src:
            frame_bytes = max(1, src.info.width * src.info.height * 3)
            # Bound the queue by bytes, not only by count: eight 8K frames would be 1.6 GB.
            self.frames_q.maxsize = max(1, min(8, _FRAME_QUEUE_BYTES // frame_bytes))
            stop = None if s.max_frames is None else s.start_frame + s.max_frames * s.stride
            t0 = time.perf_counter()
            for frame in src.frames(start=s.start_frame, stop=stop, step=s.stride):
                self.busy["decode"] += time.perf_counter() - t0
                if not self.put(self.frames_q, frame):
                    return
                t0 = time.perf_counter()
            self.decode_errors = list(getattr(src, "decode_errors", []) or [])
            self.missing_frames = list(getattr(src, "missing_frames", []) or [])
        self.put(self.frames_q, _END)

    def _detect(self) -> None:
        stage = DetectStage(self.settings)
        while True:
            frame = self.get(self.frames_q)
            if frame is _END or isinstance(frame, _Failure):
                self.put(self.prepared_q, frame)
                return
            t0 = time.perf_counter()
            prepared = stage.prepare(frame)
            self.busy["detect"] += time.perf_counter() - t0
            if not self.put(self.prepared_q, prepared):
                return

    def _infer(self) -> None:
        s = self.settings
        waiting: deque[PreparedFrame] = deque()  # frames in order, some still waiting for inference
        batch: list[tuple[PreparedFrame, int]] = []  # (frame, face slot)
        stop_after_flush = False

        def finish_ready() -> bool:
            while waiting and waiting[0].pending == 0:
                p = waiting.popleft()
                if not self.put(self.out_q, _frame_result(p)):
                    return False
            return True

        def run_batch() -> bool:
            nonlocal stop_after_flush
            if not batch:
                return True
            crops = np.stack([p.faces[slot][3] for p, slot in batch])  # type: ignore[misc]
            t0 = time.perf_counter()
            error: str | None = None
            try:
                if s.infer_timeout_s is None:
                    mask_prob, fake_score = self.backend.infer(crops)
                else:
                    mask_prob, fake_score = self.caller.call(crops, s.infer_timeout_s, self.stopping)
                mask_prob = np.asarray(mask_prob, dtype=np.float32)
                fake_score = np.asarray(fake_score, dtype=np.float32)
                check_backend_output(mask_prob, fake_score, len(batch))
            except _Abandon:
                return False
            except _BackendTimeout:
                error = f"backend timed out after {s.infer_timeout_s:g} s"
            except DeepYNError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - any backend failure becomes a visible error state
                error = f"{type(exc).__name__}: {exc}"
            del crops
            self.busy["infer"] += time.perf_counter() - t0
            for k, (p, slot) in enumerate(batch):
                if error is None:
                    p.results[slot] = face_result(p.faces[slot], float(fake_score[k]), mask_prob[k])
                else:
                    p.results[slot] = face_result(p.faces[slot], error=error)
                p.faces[slot] = p.faces[slot]._replace(crop=None)  # free the crop
                p.pending -= 1
            batch.clear()
            if error is not None and s.on_error == "stop":
                stop_after_flush = True
            return finish_ready()

        while True:
            item = self.get(self.prepared_q)
            if item is _END or isinstance(item, _Failure):
                if run_batch() and finish_ready():
                    self.put(self.out_q, item)
                return
            p: PreparedFrame = item
            waiting.append(p)
            for slot, face in enumerate(p.faces):
                if face[3] is not None:
                    batch.append((p, slot))
                    if len(batch) >= s.batch_size and not run_batch():
                        return
            if not finish_ready():
                return
            if stop_after_flush:
                self.put(self.out_q, _Failure("infer", BackendError("stopped after a backend error (on_error=stop)")))
                return


def _frame_result(p: PreparedFrame) -> FrameResult:
    """Turn a fully inferred frame into its validated result."""
    faces = [done if done is not None else face_result(face) for face, done in zip(p.faces, p.results)]
    return frame_result(p.index, p.pts_s, faces, p.error)


def planned_frames(total: int, settings: AnalysisSettings) -> int:
    """How many frames a run with these settings will analyse."""
    avail = max(0, total - settings.start_frame)
    n = (avail + settings.stride - 1) // settings.stride
    return n if settings.max_frames is None else min(n, settings.max_frames)


def iter_analysis(
    path: str,
    backend: InferenceBackend,
    settings: AnalysisSettings | None = None,
    cancel: threading.Event | None = None,
    total_frames: int | None = None,
    progress_every_s: float = 0.25,
) -> Iterator[FrameResult | Progress]:
    """Analyse a clip, yielding FrameResults in frame order and Progress reports.

    Stops promptly when ``cancel`` is set (raising :class:`Cancelled` after the frames so far) or
    when the consumer closes the generator. Errors from any stage are re-raised here.
    """
    settings = settings or AnalysisSettings()
    cancel = cancel or threading.Event()
    if total_frames is None:
        from .video import VideoSource

        with VideoSource(path, stream=settings.video_stream) as src:
            total_frames = src.info.frames
    total = planned_frames(total_frames, settings)
    stages = _Stages(path, backend, settings, cancel)
    stages.start()
    t_start = time.perf_counter()
    last_progress = 0.0
    done = 0
    try:
        while True:
            if cancel.is_set():
                raise Cancelled("analysis cancelled")
            try:
                item = stages.out_q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, _Failure):
                if isinstance(item.exc, DeepYNError):
                    raise item.exc
                raise DeepYNError(f"{item.stage} stage failed: {type(item.exc).__name__}: {item.exc}") from item.exc
            done += 1
            yield item
            now = time.perf_counter()
            if now - last_progress >= progress_every_s:
                last_progress = now
                yield _progress(done, total, now - t_start, stages.busy)
        final = _progress(done, done, time.perf_counter() - t_start, stages.busy)
        yield Progress(**{**final.__dict__, "warnings": tuple(stages.decode_errors),
                          "missing_frames": tuple(stages.missing_frames)})
    finally:
        stages.shutdown()


def _progress(done: int, total: int, elapsed: float, busy: dict[str, float]) -> Progress:
    fps = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / fps if fps > 0 and total >= done else None
    return Progress(done, max(total, done), fps, eta, elapsed, dict(busy))


def source_info(path: str, sha256: str, stream: int | None = None) -> SourceInfo:
    """Provenance facts for the evidence file (of the video stream analysed)."""
    from .video import VideoSource

    with VideoSource(path, stream=stream) as src:
        i = src.info
    return SourceInfo(
        path=str(path), sha256=sha256, frames=i.frames, fps=float(i.fps), width=i.width, height=i.height,
        duration_s=float(i.duration_s), rotation=int(i.rotation), codec=str(i.codec),
        container=str(i.container), size_bytes=int(i.size_bytes),
    )


def app_info() -> dict[str, Any]:
    """Versions that change decoded pixels or scores, for reproducibility."""
    import platform

    from .. import __version__

    info: dict[str, Any] = {"name": "DeepYN Viewer", "version": __version__, "python": platform.python_version()}
    for mod in ("av", "cv2", "numpy", "onnxruntime"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001, S110 - a missing optional module is simply not recorded
            pass
    return info


def missing_frames_reason(missing: list[int] | tuple[int, ...]) -> str:
    """Why a result with undecodable frames is not complete, naming the gap(s) frame by frame."""
    spans: list[str] = []
    run: list[int] = []
    for i in sorted(missing):
        if run and i != run[-1] + 1:
            spans.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(i)
    if run:
        spans.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    shown = ", ".join(spans[:12]) + (f" and {len(spans) - 12} more gaps" if len(spans) > 12 else "")
    return (f"{len(missing)} frame(s) could not be decoded (damaged data): frames {shown}; the verdict covers "
            "only the frames that were decoded")


def build_result(
    source: SourceInfo,
    backend: InferenceBackend,
    settings: AnalysisSettings,
    frames: list[FrameResult],
    complete: bool = True,
    stop_reason: str = "",
) -> AnalysisResult:
    """Bundle frames with provenance and the verdict (shared by CLI and GUI)."""
    from .verdict import video_verdict

    model = backend.model_info
    return AnalysisResult(
        source=source,
        model=model,
        backend=backend.describe(),
        settings=settings.to_json(),
        frames=frames,
        verdict=video_verdict(frames, model, settings.aggregator),
        app=app_info(),
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        complete=complete,
        stop_reason=stop_reason,
    )


@dataclass(frozen=True)
class RunStopped:
    """The run ended early because a stage or the backend failed; the final result follows, incomplete."""

    reason: str


def _await_hash(pending: Future[str], cancel: threading.Event) -> tuple[str, str]:
    """The caller's evidence hash as ``(sha, error)``; not waited for once the run is cancelled."""
    while True:
        try:
            return pending.result(timeout=_POLL_S), ""
        except FutureTimeout:
            if cancel.is_set():
                return "", ""
        except (Cancelled, FutureCancelled):
            return "", ""
        except Exception as exc:  # noqa: BLE001 - recorded; the result then carries no hash
            return "", f"{type(exc).__name__}: {exc}"


def run_analysis(
    path: str,
    backend: InferenceBackend,
    settings: AnalysisSettings | None = None,
    cancel: threading.Event | None = None,
    *,
    evidence_sha256: str | Future[str] | None = None,
    total_frames: int | None = None,
    verdict_every_s: float | None = None,
    on_cancel: Literal["raise", "result"] = "raise",
) -> Iterator[FrameResult | Progress | Verdict | RunStopped | AnalysisResult]:
    """THE analysis engine every shell drives: yields frames, progress, provisional verdicts, then the result.

    The CLI (:func:`analyze`) and the viewer's worker iterate this same generator, so warnings, error
    states, completeness and the evidence hash are decided once, here. The last item is always the
    :class:`AnalysisResult`; a stage failing part-way yields :class:`RunStopped` just before it. An
    error before the first frame is raised (a backend stop is not: its result says why). Cancelling
    raises :class:`Cancelled`, or with ``on_cancel="result"`` ends with the frames so far, incomplete.

    ``evidence_sha256``: the hash if known, a Future of it (waited for unless cancelled), or None:
    hashed here on its own thread while the pipeline runs.
    """
    from .evidence import sha256_file
    from .verdict import video_verdict

    settings = settings or AnalysisSettings()
    cancel = cancel or threading.Event()
    src_probe = source_info(path, "", settings.video_stream)  # raises InputError early for files that are not videos
    digest: dict[str, str] = {}
    stop_hashing = threading.Event()
    hasher: threading.Thread | None = None
    if isinstance(evidence_sha256, str):
        digest["sha"] = evidence_sha256
    elif evidence_sha256 is None:

        def hash_evidence() -> None:
            try:
                digest["sha"] = sha256_file(path, cancel=stop_hashing)
            except Cancelled:
                pass
            except Exception as exc:  # noqa: BLE001 - reported as a warning below, never a silent ""
                digest["error"] = str(exc) if isinstance(exc, DeepYNError) else f"{type(exc).__name__}: {exc}"

        hasher = threading.Thread(target=hash_evidence, name="deepyn-sha256", daemon=True)
        hasher.start()
    frames: list[FrameResult] = []
    warnings: list[str] = []
    missing: list[int] = []
    complete, reason = True, ""
    finished = False
    last_verdict = time.perf_counter()
    try:
        try:
            total = total_frames if total_frames is not None else src_probe.frames
            for item in iter_analysis(path, backend, settings, cancel, total_frames=total):
                if isinstance(item, Progress):
                    warnings.extend(item.warnings)
                    missing.extend(item.missing_frames)
                    yield item
                    now = time.perf_counter()
                    if verdict_every_s is not None and frames and now - last_verdict >= verdict_every_s:
                        last_verdict = now
                        yield video_verdict(frames, backend.model_info, settings.aggregator)
                else:
                    frames.append(item)
                    yield item
        except Cancelled:
            if on_cancel == "raise":
                raise
            complete, reason = False, "cancelled by the user"
        except BackendError as exc:
            complete, reason = False, str(exc)
        except DeepYNError as exc:  # a stage failed part-way: keep the frames analysed so far, say why
            if not frames:
                raise
            complete, reason = False, str(exc)
        finished = True
    finally:
        if not finished or cancel.is_set():  # leaving with an error or cancelled: do not keep hashing
            stop_hashing.set()
        if hasher is not None:
            hasher.join()
    if isinstance(evidence_sha256, Future):
        digest["sha"], error = _await_hash(evidence_sha256, cancel)
        if error:
            digest["error"] = error
    if not complete:
        yield RunStopped(reason)
    if "error" in digest:
        warnings.append(f"The SHA-256 of the evidence file could not be computed: {digest['error']}")
    source = SourceInfo(**{**src_probe.to_json(), "sha256": digest.get("sha", "")})
    if missing and complete:  # complete only when every frame was decoded or is named here
        complete, reason = False, missing_frames_reason(missing)
    result = build_result(source, backend, settings, frames, complete, reason)
    result.warnings = warnings
    result.undecodable_frames = sorted(set(missing))
    yield result


def analyze(
    path: str,
    backend: InferenceBackend,
    settings: AnalysisSettings | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    evidence_sha256: str | Future[str] | None = None,
) -> AnalysisResult:
    """Run a whole analysis and return the result: :func:`run_analysis`, consumed (the CLI's path).

    An error part-way (decode, a stage, a backend stop) keeps the valid frames and marks the result
    incomplete with the reason; an error before the first frame is raised. Cancelling raises
    :class:`Cancelled`.
    """
    result: AnalysisResult | None = None
    for item in run_analysis(path, backend, settings, cancel, evidence_sha256=evidence_sha256):
        if isinstance(item, Progress):
            if on_progress:
                on_progress(item)
        elif isinstance(item, FrameResult):
            if on_frame:
                on_frame(item)
        elif isinstance(item, AnalysisResult):
            result = item
    assert result is not None  # run_analysis always ends with the result or raises
    return result
