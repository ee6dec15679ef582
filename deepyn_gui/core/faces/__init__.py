"""Faces: the validated face type, the detectors, an identity tracker and the crop geometry both ways.

Split by concern (it was one 1000-line module); every name keeps its old import path
``deepyn_gui.core.faces``:

* :mod:`.detection` -- :class:`Detection` / :class:`FaceCrop` (the one face type from detector to
  export), the :class:`FaceDetector` protocol, model-file look-up;
* :mod:`.detectors` -- res10 SSD, Haar, YuNet and :func:`make_detector`;
* :mod:`.tracking`  -- :class:`FaceTracker` (identity ids);
* :mod:`.crops`     -- crop geometry (box -> crop, mask -> frame) and :func:`detect_and_crop`.

The pipeline looks up ``make_detector`` here at call time, so tests may patch it on this package.
"""

from __future__ import annotations

from ..results import CROP_SIZE, Box, CropTransform  # noqa: F401 - importable from here, as before the split
from .crops import crop_transform_for_box, detect_and_crop, extract_crop, is_too_small, mask_to_frame
from .detection import (
    DETECTOR_NAMES,
    MIN_FACE_SIDE,
    Detection,
    FaceCrop,
    FaceDetector,
    haar_cascade_file,
    iou,
    res10_model_files,
)
from .detectors import HaarDetector, Res10SsdDetector, YuNetDetector, available_detectors, make_detector
from .tracking import FaceTracker

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
