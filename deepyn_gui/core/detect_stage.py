"""The detect stage and the result builders every shell shares: the pipeline, compare and the bench.

:class:`DetectStage` turns a decoded frame into a :class:`PreparedFrame` (faces as the one validated
:class:`~deepyn_gui.core.faces.FaceCrop` type, with their crops) on the detect-every schedule of
:class:`BoxCarrier`; :func:`face_result` / :func:`frame_result` turn a backend's answer into the
validated results. ``analyze`` runs the stage on its detect thread, ``Comparison`` inline; both thus
make the same detector calls and the same boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DeepYNError
from .faces.crops import crop_transform_for_box, extract_crop, is_too_small
from .faces.detection import Detection, FaceCrop
from .results import FaceResult, FrameResult, compress_mask

if TYPE_CHECKING:
    from .pipeline import AnalysisSettings
    from .video import VideoFrame


@dataclass
class PreparedFrame:
    """A frame after detection: faces with their crops, waiting for inference."""

    index: int
    pts_s: float
    faces: list[FaceCrop]  # crop None: too small, or already inferred
    results: list[FaceResult | None]
    pending: int
    error: str | None = None  # face detection failed on this frame



class BoxCarrier:
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
        from . import faces  # looked up at call time: tests patch faces.make_detector

        s = self.settings = settings
        self.detector = faces.make_detector(
            s.detector, model_path=s.detector_model, min_score=s.detector_min_score, threads=s.detector_threads
        )
        self.tracker = faces.FaceTracker()
        self._near_pass = getattr(self.detector, "detect_near", None)
        self.carry = BoxCarrier(s.detect_every, s.full_detect_every if self._near_pass is not None else 1)

    def reset(self) -> None:
        """Forget tracks and detection cadence (a new clip); the loaded detector stays."""
        self.tracker.reset()
        self.carry.reset()

    def prepare(self, frame: VideoFrame) -> PreparedFrame:
        """Faces and crops of ``frame``; a detector failure is recorded on the frame, not raised."""
        s, carry = self.settings, self.carry
        faces: list[FaceCrop] = []
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
                faces.append(FaceCrop(track, det, transform, crop))
            error = None
        except Exception as exc:  # noqa: BLE001 - one odd frame must not end the run; said on that frame
            faces = []
            carry.reset()
            detail = str(exc) if isinstance(exc, DeepYNError) else f"{type(exc).__name__}: {exc}"
            error = f"face detection failed: {detail}".splitlines()[0]
        pending = sum(1 for f in faces if f[3] is not None)
        return PreparedFrame(frame.index, frame.pts_s, faces, [None] * len(faces), pending, error)


def face_result(
    face: FaceCrop,
    score: float | None = None,
    mask: np.ndarray | None = None,
    error: str | None = None,
) -> FaceResult:
    """One face's result (the builder analyze and compare share): scored, a backend error, or too small.

    ``face`` is a detect-stage face; with neither a score nor an error it was never sent to the
    backend: too small to judge.
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
