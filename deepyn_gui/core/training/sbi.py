"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): a fake made from one real face and itself.

A copy of the crop is slightly altered (colour, contrast, hue, blur or sharpen, scale/shift, a gentle
elastic warp) and pasted back through a soft, randomly deformed mask of the face region. The only
evidence left is the blend itself (boundary, colour and frequency mismatch), which is what face-swap
and face-reenactment pipelines also leave, so a detector trained on it generalises beyond any one
generator. The effective blend weight (mask x ratio) is returned as the ground-truth manipulation map.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Effective blend weights below this are set to exactly zero, so "unchanged" pixels are bit-identical.
ALPHA_EPS = 1e-3
#: Pixels whose effective blend weight exceeds this are the "manipulated" class of the mask target.
MASK_TARGET_THRESHOLD = 0.15
_BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # as in the SBI paper: mostly full-strength blends


@dataclass(frozen=True)
class SelfBlend:
    """``image`` the blended crop (uint8 RGB) and ``alpha`` the per-pixel weight of the altered copy in
    [0, 1] (exactly 0 where the image is unchanged)."""

    image: np.ndarray
    alpha: np.ndarray


def _smooth_field(rng: np.random.Generator, h: int, w: int, grid: int, amp: float) -> np.ndarray:
    """A smooth random displacement field (coarse noise upsampled), in pixels."""
    coarse = rng.uniform(-amp, amp, size=(grid, grid)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _elastic(img: np.ndarray, rng: np.random.Generator, amp: float, grid: int = 4) -> np.ndarray:
    """Warp ``img`` by a smooth random field of amplitude ``amp`` pixels."""
    h, w = img.shape[:2]
    dx = _smooth_field(rng, h, w, grid, amp)
    dy = _smooth_field(rng, h, w, grid, amp)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _deform(m: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """The SBI mask deformations: smooth elastic warp, random erosion/dilation, one or two Gaussian
    blurs of random width (hard or soft seams); the maximum is rescaled to 1."""
    m = _elastic(m, rng, amp=rng.uniform(2.0, 0.08 * size), grid=int(rng.integers(3, 7)))
    r = int(rng.integers(0, 4))
    if r:  # random erosion or dilation: masks of different extents
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        m = cv2.erode(m, k) if rng.random() < 0.5 else cv2.dilate(m, k)
    sigma = rng.uniform(1.5, 10.0)
    m = cv2.GaussianBlur(m, (0, 0), sigma)
    if rng.random() < 0.5:  # SBI blurs twice with different kernels: a smoother or harder edge mix
        m = cv2.GaussianBlur(m, (0, 0), rng.uniform(1.0, 4.0))
    peak = float(m.max())
    if peak <= 0:
        return np.zeros((size, size), np.float32)
    m = np.clip(m / peak, 0.0, 1.0)
    m[m < ALPHA_EPS] = 0.0
    return m.astype(np.float32)


def face_mask(box: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft, randomly deformed face-region mask in [0, 1] (float32 [size, size]) from the face box.

    An ellipse fitted to the detector's face box (random centre, axes and tilt), then :func:`_deform`.
    The fallback when no landmarks were found: :func:`landmark_mask` follows the face's real shape.
    """
    x, y, w, h = (float(v) for v in box)
    cx = x + w * (0.5 + rng.uniform(-0.06, 0.06))
    cy = y + h * (0.55 + rng.uniform(-0.06, 0.06))
    ax = w * rng.uniform(0.30, 0.50)
    ay = h * rng.uniform(0.38, 0.58)
    angle = rng.uniform(-15, 15)
    m: np.ndarray = np.zeros((size, size), np.float32)
    cv2.ellipse(m, ((cx, cy), (2 * ax, 2 * ay), angle), 1.0, thickness=-1, lineType=cv2.LINE_AA)
    return _deform(m, rng, size)


#: Regions a landmark hull can cover: the whole inner face (face swap) or the lower face (lip-sync).
REGIONS = ("face", "mouth")


def hull_points(landmarks: np.ndarray, region: str = "face", rng: np.random.Generator | None = None) -> np.ndarray:
    """Outline points [K,2] of the face (or mouth) region from five landmarks, before the convex hull.

    Landmarks are YuNet's order: right eye, left eye, nose tip, right and left mouth corner (image
    coordinates). A dense landmarker would give the outline directly; five points give it through the
    face's own axes: ``u`` (eye to eye) and ``v`` (eyes to mouth), so the hull turns, scales and leans
    with the face. ``rng`` jitters each point by up to ~8 % of the eye-mouth distance.
    """
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    re, le, nose, rm, lmo = lm
    u = le - re
    v = (rm + lmo) / 2.0 - (re + le) / 2.0
    mc = (rm + lmo) / 2.0
    if region == "face":
        pts = [
            re - 0.25 * u - 0.55 * v, le + 0.25 * u - 0.55 * v,  # brows / lower forehead
            re - 0.45 * u + 0.1 * v, le + 0.45 * u + 0.1 * v,  # temples / outer cheeks
            rm - 0.35 * u + 0.55 * v, lmo + 0.35 * u + 0.55 * v,  # jaw
            mc + 0.85 * v,  # chin
        ]
    else:
        pts = [
            nose - 0.45 * u - 0.1 * v, nose + 0.45 * u - 0.1 * v,
            rm - 0.3 * u + 0.4 * v, lmo + 0.3 * u + 0.4 * v,
            mc + 0.75 * v,
        ]
    out = np.asarray(pts, np.float64)
    if rng is not None:
        scale = 0.08 * float(np.hypot(*v))
        out = out + rng.uniform(-scale, scale, size=out.shape)
    return out.astype(np.float32)


def landmark_mask(
    landmarks: np.ndarray, size: int, rng: np.random.Generator, region: str = "face"
) -> np.ndarray:
    """Soft blend mask in [0, 1]: convex hull of :func:`hull_points`, then the SBI deformations
    (Shiohara & Yamasaki, CVPR 2022 use a dense landmark hull; see :func:`hull_points`)."""
    pts = hull_points(landmarks, region, rng)
    m: np.ndarray = np.zeros((size, size), np.float32)
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    cv2.fillConvexPoly(m, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    if not m.any():
        return m
    return _deform(m, rng, size)


def _colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB shift, hue/saturation/value shift, brightness/contrast: the colour mismatch of a swap."""
    f = img.astype(np.float32)
    if rng.random() < 0.5:
        f = f + rng.uniform(-20, 20, size=3).astype(np.float32)
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180.0
        hsv[..., 1] = hsv[..., 1] * rng.uniform(0.8, 1.2)
        hsv[..., 2] = hsv[..., 2] * rng.uniform(0.85, 1.15)
        f = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.random() < 0.7:
        alpha = rng.uniform(0.85, 1.15)
        beta = rng.uniform(-15, 15)
        mean = f.mean()
        f = (f - mean) * alpha + mean + beta
    return np.clip(f, 0, 255).astype(np.uint8)


def _frequency(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, sharpen or resample: the resolution/frequency mismatch of a generated face."""
    r = rng.random()
    if r < 0.3:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    if r < 0.55:
        blur = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
        return cv2.addWeighted(img, 1.0 + (a := rng.uniform(0.3, 1.2)), blur, -a, 0)
    if r < 0.8:
        h, w = img.shape[:2]
        f = rng.uniform(0.4, 0.8)
        small = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return img


def _geometry(img: np.ndarray, rng: np.random.Generator, centre: tuple[float, float]) -> np.ndarray:
    """Small scale and translation about the face centre, then (sometimes) a gentle elastic warp."""
    h, w = img.shape[:2]
    s = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.03, 0.03, size=2) * np.array([w, h])
    m = cv2.getRotationMatrix2D(centre, 0.0, s)
    m[:, 2] += (tx, ty)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        out = _elastic(out, rng, amp=rng.uniform(0.5, 2.5), grid=4)
    return out


def self_blend(
    img: np.ndarray,
    box: np.ndarray,
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
    mouth_prob: float = 0.0,
) -> SelfBlend:
    """Blend ``img`` (uint8 RGB crop) with an altered copy of itself inside a soft face mask.

    ``box`` is the face box (x, y, w, h) in crop pixels. With ``landmarks`` ([5,2], finite) the mask is
    the landmark hull (:func:`landmark_mask`), of the mouth region with probability ``mouth_prob``
    (lip-sync edits only the lower face); otherwise the box ellipse (:func:`face_mask`). Pixels where
    the returned ``alpha`` is 0 are bit-identical to ``img``.
    """
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"self_blend needs an HxWx3 uint8 image, got {img.shape} {img.dtype}")
    h, w = img.shape[:2]
    centre = (float(box[0] + box[2] / 2.0), float(box[1] + box[3] / 2.0))
    # SBI alters source or target at random; both give a blend whose two sides differ.
    altered = img.copy()
    for _ in range(10):  # make sure the copy really differs from the original
        altered = _colour_jitter(img, rng)
        altered = _frequency(altered, rng)
        altered = _geometry(altered, rng, centre)
        if np.abs(altered.astype(np.int16) - img.astype(np.int16)).mean() > 1.0:
            break
    use_lm = landmarks is not None and bool(np.all(np.isfinite(landmarks)))
    if use_lm and h == w:
        region = "mouth" if rng.random() < mouth_prob else "face"
        mask = landmark_mask(np.asarray(landmarks), w, rng, region)
        if not mask.any():  # degenerate landmarks (all on one point): fall back to the box
            mask = face_mask(box, w, rng)
    else:
        mask = face_mask(box, w, rng) if h == w else cv2.resize(face_mask(box, max(h, w), rng), (w, h))
    ratio = float(rng.choice(_BLEND_RATIOS))
    alpha = (mask * ratio).astype(np.float32)
    alpha[alpha < ALPHA_EPS] = 0.0
    a = alpha[..., None]
    base = img.astype(np.float32)
    blended = base + (altered.astype(np.float32) - base) * a  # = img*(1-a) + altered*a
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    untouched = alpha == 0
    out[untouched] = img[untouched]
    return SelfBlend(out, alpha)


def mask_target(alpha: np.ndarray, threshold: float = MASK_TARGET_THRESHOLD) -> np.ndarray:
    """Hard per-pixel label (1 = manipulated) from the blend weight.

    Thresholding (rather than soft targets) follows the original U-YNet, which marked a pixel
    manipulated where the fake differed strongly from the real frame; 0.15 counts every pixel carrying
    a visible share of the altered copy, including the blurred seam, which is the evidence.
    """
    return (alpha > threshold).astype(np.int64)
