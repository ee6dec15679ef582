"""Crop geometry both ways: frame box -> 224 px model crop, and the crop's mask back onto the frame.

Crop geometry (see :class:`~deepyn_gui.core.results.CropTransform`) uses the continuous-coordinate,
half-pixel-centre convention that ``cv2.resize`` uses: frame pixel ``i`` covers ``[i, i+1)`` and its
centre is ``i + 0.5``; crop continuous coordinate ``u = (x - x0) * size / side``. So an integer-aligned
square cut from the frame and passed to ``cv2.resize`` is *exactly* that transform, and
:func:`mask_to_frame` samples the crop at the centre of each frame pixel it covers.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..results import CROP_SIZE, Box, CropTransform
from .detection import MIN_FACE_SIDE, FaceCrop, FaceDetector
from .tracking import FaceTracker

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

