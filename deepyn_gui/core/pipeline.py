"""Analysis as a cancellable generator: decode -> detect/track/crop -> batch -> infer -> results.

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
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import BackendError, Cancelled, DeepYNError, InputError
from .inference import InferenceBackend, check_backend_output
from .results import (
    AnalysisResult,
    CropTransform,
    FaceResult,
    FrameResult,
    SourceInfo,
    Verdict,
    compress_mask,
)

if TYPE_CHECKING:
    from .video import VideoFrame

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
    aggregator: str = "confident"
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
class _Prepared:
    """A frame after detection: faces with their crops, waiting for inference."""

    index: int
    pts_s: float
    faces: list[tuple[int, Any, CropTransform, np.ndarray | None]]  # track, detection, transform, crop
    results: list[FaceResult | None]
    pending: int
    error: str | None = None  # face detection failed on this frame


@dataclass
class _Failure:
    stage: str
    exc: BaseException


class _BackendTimeout(Exception):
    """A backend call ran past the inference timeout and was abandoned."""


class _Abandon(Exception):
    """The run is stopping while a backend call is still in flight."""


class _CallJob:
    __slots__ = ("crops", "done", "exc", "result")

    def __init__(self, crops: np.ndarray) -> None:
        self.crops = crops
        self.done = threading.Event()
        self.result: tuple[Any, Any] | None = None
        self.exc: BaseException | None = None


class _InferCaller:
    """Runs ``backend.infer`` on a helper thread so that a hung call can be given up on.

    One long-lived thread serves every call of a run (backends such as VART keep per-thread state,
    and a thread per batch would cost more than it saves). When a call times out, its thread is
    renamed ``deepyn-infer-abandoned``, told to exit once the call returns, and a new thread serves
    the next call. A hung native call cannot be killed from Python; it is only left behind.
    """

    def __init__(self, backend: InferenceBackend) -> None:
        self._backend = backend
        self._jobs: queue.SimpleQueue[_CallJob | None] | None = None
        self._thread: threading.Thread | None = None
        self.abandoned: list[threading.Thread] = []

    def _serve(self, jobs: queue.SimpleQueue[_CallJob | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                job.result = self._backend.infer(job.crops)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting stage
                job.exc = exc
            finally:
                job.crops = None  # type: ignore[assignment]  # free the batch even if nobody waits
                job.done.set()

    def call(self, crops: np.ndarray, timeout: float, stopping: Callable[[], bool]) -> tuple[Any, Any]:
        """The backend's answer; raises its exception, _BackendTimeout, or _Abandon when stopping."""
        if self._thread is None or self._jobs is None:
            self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=self._serve, args=(self._jobs,), name="deepyn-infer-call", daemon=True
            )
            self._thread.start()
        job = _CallJob(crops)
        self._jobs.put(job)
        deadline = time.monotonic() + timeout
        while not job.done.wait(min(_POLL_S, max(0.0, deadline - time.monotonic()))):
            if stopping():
                raise _Abandon()
            if time.monotonic() >= deadline:
                self._abandon()
                raise _BackendTimeout()
        if job.exc is not None:
            raise job.exc
        assert job.result is not None
        return job.result

    def _abandon(self) -> None:
        if self._thread is not None and self._jobs is not None:
            self._thread.name = "deepyn-infer-abandoned"
            self._jobs.put(None)  # the thread exits as soon as the hung call returns
            self.abandoned.append(self._thread)
        self._thread, self._jobs = None, None

    def close(self, timeout: float) -> None:
        """Let the serving thread finish its current call and exit; abandon it after ``timeout`` s."""
        thread, jobs = self._thread, self._jobs
        self._thread, self._jobs = None, None
        if thread is not None and jobs is not None:
            jobs.put(None)
            thread.join(max(0.0, timeout))
            if thread.is_alive():
                thread.name = "deepyn-infer-abandoned"
                self.abandoned.append(thread)


class _BoxCarrier:
    """Runs the face detector on every ``every``-th analysed frame and places the faces in between.

    The detector (res10 at 300x300) is the most expensive CPU stage (~45-65 ms a frame single-threaded);
    faces move little within a few frames, so between detections each face's box moves on at the
    velocity measured between its last two detections (constant velocity, size kept). The detector
    still runs on every frame while nothing is tracked (a frame is only called "no face" when the
    detector looked at it), when the frame size changes, and on a shot change: the frame's 32x18
    thumbnail differs from the previous frame's by more than ``CUT_DIFF`` levels (of 255) on average
    (motion changes it a few levels per frame, a cut by tens), so boxes never carry over a cut.

    With ``full_every`` > 1 and a detector that can look near known faces (``detect_near``), only every
    ``full_every``-th detection looks at the whole frame; the others look again only around the (at
    most ``MAX_NEAR``) tracked faces, at a fraction of the cost. A new face is then found by the next
    whole-frame pass (within ``every * full_every`` frames); a tracked face not found again near its
    place makes the next detection a whole-frame one.
    """

    CUT_DIFF = 24.0
    PREDICT = True  # False: boxes stay where they were last detected (bench/accuracy_detect_every.py)
    MAX_NEAR = 2  # more faces than this: one whole-frame pass is cheaper than a pass per face

    def __init__(self, every: int, full_every: int = 1) -> None:
        self.every = max(1, int(every))
        self.full_every = max(1, int(full_every))
        self.reset()

    def reset(self) -> None:
        self._since = 0  # analysed frames since the last detection (0 on the detection frame)
        self._thumb: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None
        self._last: list[tuple[int, Any]] = []
        self._velocity: dict[int, tuple[float, float]] = {}
        self._centres: dict[int, tuple[float, float]] = {}
        self._cut = False
        self._near_since_full = 0  # near-only detections since the last whole-frame one
        self._near_missed = False  # the last near pass lost a tracked face

    @staticmethod
    def _thumbnail(rgb: np.ndarray) -> np.ndarray:
        import cv2

        step = max(1, min(rgb.shape[:2]) // 90)  # a strided look first (cheap at 720p+), then area-average
        sub = np.ascontiguousarray(rgb[::step, ::step])
        return cv2.resize(sub, (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)

    def must_detect(self, rgb: np.ndarray) -> bool:
        """True when the detector must look at this frame; else the frame counts as carried."""
        if self.every == 1:
            return True
        thumb = self._thumbnail(rgb) if rgb.shape == self._shape else None
        cut = thumb is None or self._thumb is None or float(np.abs(thumb - self._thumb).mean()) > self.CUT_DIFF
        self._thumb = thumb
        self._cut = cut
        if cut or not self._last or self._since + 1 >= self.every:
            return True
        self._since += 1
        return False

    def near_boxes(self) -> list[Any] | None:
        """Where to look on a detection frame instead of the whole frame, or None for a whole-frame pass.

        Call right after :meth:`must_detect` returned True; the boxes are the tracked faces moved on
        to this frame.
        """
        if (
            self.full_every <= 1
            or self._cut
            or self._near_missed
            or not 0 < len(self._last) <= self.MAX_NEAR
            or self._near_since_full + 1 >= self.full_every
        ):
            return None
        return [det.box for _, det in self._moved(self._since + 1)]

    def detected(self, rgb: np.ndarray, tracked: list[tuple[int, Any]], near: bool = False) -> None:
        """Record the detector's faces on this frame (``FaceTracker.update`` output).

        ``near``: they come from a pass around the tracked faces only (see :meth:`near_boxes`).
        """
        if near:
            self._near_since_full += 1
            self._near_missed = len(tracked) < len(self._last)
        else:
            self._near_since_full = 0
            self._near_missed = False
        gap = self._since + 1  # frames from the previous detection to this one
        if self._cut:  # motion across a shot change means nothing
            self._centres = {}
        centres = {t: (d.box[0] + d.box[2] / 2.0, d.box[1] + d.box[3] / 2.0) for t, d in tracked}
        self._velocity = {
            t: ((c[0] - self._centres[t][0]) / gap, (c[1] - self._centres[t][1]) / gap)
            for t, c in centres.items()
            if t in self._centres
        }
        self._centres = centres
        self._last = tracked
        self._since = 0
        if rgb.shape != self._shape:
            self._shape = rgb.shape
            self._thumb = self._thumbnail(rgb) if self.every > 1 else None

    def faces(self) -> list[tuple[int, Any]]:
        """The faces on the current frame: as detected, or moved on by their velocity."""
        if self._since == 0:
            return self._last
        return self._moved(self._since)

    def _moved(self, frames: int) -> list[tuple[int, Any]]:
        """The last detected faces moved on by ``frames`` frames at their velocity."""
        from .faces import Detection

        if self._shape is None or not self.PREDICT:
            return self._last
        h, w = self._shape[:2]
        out: list[tuple[int, Any]] = []
        for track, det in self._last:
            vx, vy = self._velocity.get(track, (0.0, 0.0))
            if vx == 0.0 and vy == 0.0:
                out.append((track, det))
                continue
            x, y, bw, bh = det.box
            cx = min(max(x + bw / 2.0 + vx * frames, 0.0), float(w))
            cy = min(max(y + bh / 2.0 + vy * frames, 0.0), float(h))
            out.append((track, Detection(box=(cx - bw / 2.0, cy - bh / 2.0, bw, bh), score=det.score)))
        return out


class DetectStage:
    """The detect stage's work on one frame: detection cadence, tracking, crops (no threads, no queues).

    The pipeline runs it on its detect thread; ``bench/run_all.py`` times it alone, so the stage it
    measures is exactly the one that runs.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        from .faces import FaceTracker, make_detector

        s = self.settings = settings
        self.detector = make_detector(
            s.detector, model_path=s.detector_model, min_score=s.detector_min_score, threads=s.detector_threads
        )
        self.tracker = FaceTracker()
        self._near_pass = getattr(self.detector, "detect_near", None)
        self.carry = _BoxCarrier(s.detect_every, s.full_detect_every if self._near_pass is not None else 1)

    def reset(self) -> None:
        """Forget tracks and detection cadence (a new clip); the loaded detector stays."""
        self.tracker.reset()
        self.carry.reset()

    def prepare(self, frame: VideoFrame) -> _Prepared:
        """Faces and crops of ``frame``; a detector failure is recorded on the frame, not raised."""
        from .faces import crop_transform_for_box, extract_crop, is_too_small

        s, carry = self.settings, self.carry
        faces: list[tuple[int, Any, CropTransform, np.ndarray | None]] = []
        try:
            if carry.must_detect(frame.rgb):
                near = carry.near_boxes()
                if near is not None and self._near_pass is not None:
                    carry.detected(frame.rgb, self.tracker.update(self._near_pass(frame.rgb, near)), near=True)
                else:
                    carry.detected(frame.rgb, self.tracker.update(self.detector.detect(frame.rgb)))
            for track, det in carry.faces():
                transform = crop_transform_for_box(det.box, margin=s.margin)
                crop = None if is_too_small(det.box, s.min_face_side) else extract_crop(frame.rgb, transform)
                faces.append((track, det, transform, crop))
            error = None
        except Exception as exc:  # noqa: BLE001 - one odd frame must not end the run; said on that frame
            faces = []
            carry.reset()
            detail = str(exc) if isinstance(exc, DeepYNError) else f"{type(exc).__name__}: {exc}"
            error = f"face detection failed: {detail}".splitlines()[0]
        pending = sum(1 for f in faces if f[3] is not None)
        return _Prepared(frame.index, frame.pts_s, faces, [None] * len(faces), pending, error)


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
        waiting: deque[_Prepared] = deque()  # frames in order, some still waiting for inference
        batch: list[tuple[_Prepared, int]] = []  # (frame, face slot)
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
                track, det, transform, _crop = p.faces[slot]
                p.faces[slot] = (track, det, transform, None)  # free the crop
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
            p: _Prepared = item
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


def face_result(
    face: tuple[int, Any, CropTransform, np.ndarray | None],
    score: float | None = None,
    mask: np.ndarray | None = None,
    error: str | None = None,
) -> FaceResult:
    """One face's result (the builder analyze and compare share): scored, a backend error, or too small.

    ``face`` is a detect-stage face ``(track, detection, transform, crop)``; with neither a score nor
    an error it was never sent to the backend: too small to judge.
    """
    track, det, transform, _crop = face
    common: dict[str, Any] = {
        "track": track, "box": tuple(float(v) for v in det.box), "detector_score": float(det.score), "crop": transform,
    }
    if error is not None:
        return FaceResult(state="error", error=f"backend error: {error}", **common)
    if score is None or mask is None:
        return FaceResult(state="too_small", **common)
    return FaceResult(state="ok", fake_score=float(score), mask_blob=compress_mask(mask), **common)


def frame_result(index: int, pts_s: float, faces: list[FaceResult], error: str | None = None) -> FrameResult:
    """A frame's validated result from its faces' results (or the detect stage's error on it)."""
    if error is not None:
        return FrameResult(index, pts_s, "error", error=error)
    if not faces:
        return FrameResult(index, pts_s, "no_face")
    if any(f.state == "ok" for f in faces) or all(f.state == "too_small" for f in faces):
        return FrameResult(index, pts_s, "ok", tuple(faces))
    errors = [f.error for f in faces if f.error]
    return FrameResult(index, pts_s, "error", tuple(faces), error=errors[0] if errors else "error")


def _frame_result(p: _Prepared) -> FrameResult:
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
