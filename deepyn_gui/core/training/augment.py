"""Nuisances applied identically to real and fake crops, so "compressed" or "noisy" never means "fake".

Suspect clips arrive re-encoded, resized and noisy. Every training crop, real or self-blended, goes
through the same random chain (each step drawn independently per crop from the same distribution), so
the only systematic difference between the classes is the blend.
"""

from __future__ import annotations

import cv2
import numpy as np


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at ``quality`` (cv2.imencode; RGB in, RGB out)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed on a training crop")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if dec is None:
        raise RuntimeError("cv2.imdecode failed on a training crop")
    return cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)


def resample(img: np.ndarray, factor: float, cubic: bool = False) -> np.ndarray:
    """Downscale by ``factor`` and back up: the softness of a low-resolution source."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(8, int(w * factor)), max(8, int(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR)


def noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian sensor noise."""
    n = rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(sigma)
    n += img
    return np.clip(n, 0, 255, out=n).astype(np.uint8)


def blocky(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """H.264-like look: coarse block quantisation at a reduced resolution, then a deblocking blur."""
    h, w = img.shape[:2]
    f = rng.uniform(0.5, 0.9)
    small = cv2.resize(img, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
    small = jpeg(small, int(rng.integers(15, 35)))
    small = cv2.GaussianBlur(small, (0, 0), rng.uniform(0.4, 0.8))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global brightness/contrast/colour change of the whole crop (camera and grading variation)."""
    f = img.astype(np.float32)
    f = (f - 128.0) * rng.uniform(0.8, 1.2) + 128.0 + rng.uniform(-20, 20)
    f = f * rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    return np.clip(f, 0, 255).astype(np.uint8)


def sharpen(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsharp mask: the crisp look of a good camera, a sharpening filter or a high-resolution source."""
    sigma = rng.uniform(0.8, 2.0)
    amount = rng.uniform(0.4, 1.5)
    f = img.astype(np.float32)
    out = f + amount * (f - cv2.GaussianBlur(f, (0, 0), sigma))
    return np.clip(out, 0, 255).astype(np.uint8)


def match_quality(img: np.ndarray, is_real: bool, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Class-conditional sharpness matching, drawn *before* the shared nuisance chain.

    The training pools differ in native quality: the real crops are mostly soft video (median Laplacian
    variance 78) and the generated faces are crisper (median 138), so without this "crisp" alone leans
    towards fake and sharp real footage (film, webcam, 720p music video) gets flagged. With probability
    ``prob`` a real crop is sharpened and a generated one softened, so sharpness stops telling the classes
    apart. ``prob`` 0 leaves the crop unchanged (the 2.0 recipe).
    """
    if prob <= 0 or rng.random() >= prob:
        return img
    if is_real:
        return sharpen(img, rng)
    return resample(img, rng.uniform(0.4, 0.8), cubic=bool(rng.random() < 0.5))


def black_border(img: np.ndarray, level: int = 3) -> tuple[int, int, int, int]:
    """Depth in pixels of the all-black bands at the top, bottom, left and right of a crop.

    A face near the frame's edge gives a crop padded with black (:func:`..faces.crops.extract_crop`);
    ``level`` allows for codec noise in a band that is black in the source.
    """
    dark = img.max(axis=2) <= level if img.ndim == 3 else img <= level
    rows, cols = np.asarray(dark.all(axis=1)), np.asarray(dark.all(axis=0))

    def depth(line: np.ndarray) -> int:
        lit = np.flatnonzero(~line)
        return int(lit[0]) if len(lit) else len(line)

    return depth(rows), depth(rows[::-1]), depth(cols), depth(cols[::-1])


def with_border(img: np.ndarray, border: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of ``img`` with black bands of the given depths (top, bottom, left, right)."""
    top, bottom, left, right = border
    out = img.copy()
    h, w = out.shape[:2]
    out[: min(top, h)] = 0
    out[h - min(bottom, h):] = 0
    out[:, : min(left, w)] = 0
    out[:, w - min(right, w):] = 0
    return out


def match_border(img: np.ndarray, reals: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Give a generated crop the black frame-edge bands of a random real crop, with probability ``prob``.

    Why: 45 % of the real training crops carry black bands (faces near the frame's edge, most photos)
    against 3 % of the generated talking-head crops, so "no black band" leans towards fake: on unseen
    real photos model 2.1 scores 0.08 with a band and 0.50 without one. Copying the real crops' bands
    onto generated ones makes the band say nothing about the class. ``prob`` 0 draws nothing (the
    random stream of the 2.x recipes is unchanged).
    """
    if prob <= 0 or rng.random() >= prob:
        return img
    return with_border(img, black_border(reals[int(rng.integers(len(reals)))]))


def lowres_codec(img: np.ndarray, rng: np.random.Generator, min_side: int = 64, max_side: int = 160) -> np.ndarray:
    """The crop of a small face in a compressed video, as inference sees it: the crop (face and margin)
    shrunk to a side of ``min_side``-``max_side`` px (INTER_AREA), JPEG-coded at that size (quality 20-70),
    then enlarged back with INTER_LINEAR, as ``faces.crops.extract_crop`` enlarges a small face's crop.

    Why: ``bench/face_size_causes.py`` found that most of the rise in false alarms on small real faces
    comes from codec artefacts made at low resolution and then enlarged, which the shared chain (``blocky``:
    15 %, at least half the crop's side) rarely shows.
    """
    h, w = img.shape[:2]
    side = int(rng.integers(min_side, max_side + 1))
    small = cv2.resize(img, (max(8, side * w // max(h, w)), max(8, side * h // max(h, w))), interpolation=cv2.INTER_AREA)
    small = jpeg(small, int(rng.integers(20, 71)))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def lowres_codec_batch(imgs: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """``imgs`` [B,H,W,3] with :func:`lowres_codec` applied to each image independently with probability
    ``prob``, after every other step (a clip's last encode). Drawn from its own generator so that the rest
    of a batch is the same with and without it; ``prob`` 0 returns ``imgs`` untouched."""
    if prob <= 0:
        return imgs
    out = imgs.copy()
    for i in range(len(out)):
        if rng.random() < prob:
            out[i] = lowres_codec(out[i], rng)
    return out


def nuisance(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The random nuisance chain used on both classes (order: light, resolution, noise, codec)."""
    out = img
    if rng.random() < 0.3:
        out = photometric(out, rng)
    if rng.random() < 0.3:
        out = resample(out, rng.uniform(0.35, 0.9), cubic=bool(rng.random() < 0.5))
    if rng.random() < 0.25:
        out = noise(out, rng.uniform(1.0, 6.0), rng)
    r = rng.random()
    if r < 0.15:
        out = blocky(out, rng)
    elif r < 0.7:
        out = jpeg(out, int(rng.integers(40, 96)))
    return out


def head_region(landmarks: np.ndarray, size: int, scale: float = 1.5, sigma: float = 6.0) -> np.ndarray | None:
    """Soft mask in [0, 1] (float32 [size, size]) of the head: the landmark face hull (``sbi.hull_points``)
    scaled by ``scale`` about its centroid (forehead, hair and jaw line in), feathered with a Gaussian of
    ``sigma`` px. None when the landmarks are missing (NaN). The rest of the crop is the background."""
    from .sbi import hull_points

    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    if not np.isfinite(lm).all():
        return None
    pts = hull_points(lm, "face").astype(np.float64)
    c = pts.mean(axis=0)
    pts = c + scale * (pts - c)
    m: np.ndarray = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(pts * 16).astype(np.int32)), 1.0, lineType=cv2.LINE_AA, shift=4)
    if sigma > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigma)
    out: np.ndarray = np.clip(m, 0.0, 1.0)
    return out


def swap_background(img: np.ndarray, head: np.ndarray, donor: np.ndarray) -> np.ndarray:
    """``img``'s head (soft mask ``head`` from :func:`head_region`) over ``donor``'s background.

    Why: the models score the ~30 real videos they trained on near 0 and unseen real video near the
    threshold; a crop keeps a wide margin of room, wall or green screen around the face, which can let a
    model recognise a source instead of judging the face. Applied to both classes alike, the background
    stops telling the classes apart."""
    a = head[..., None]
    out = a * img.astype(np.float32) + (1.0 - a) * donor.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def shuffle_tiles(img: np.ndarray, rng: np.random.Generator, grid: int = 4) -> np.ndarray:
    """``img`` cut into ``grid`` x ``grid`` tiles put back in a random order (a jigsaw).

    Why (a diagnostic): the models recognise the faces they trained on; in a shuffled crop the face's layout,
    and with it most of who it is, is gone, so a generated face can only be told from a real one by its
    local texture. Pixels beyond the last whole tile (a side not divisible by ``grid``) stay in place."""
    h, w = img.shape[:2]
    th, tw = h // grid, w // grid
    tiles = [img[r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(grid) for c in range(grid)]
    order = rng.permutation(len(tiles))
    out = img.copy()
    for k, t in enumerate(order):
        r, c = divmod(k, grid)
        out[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tiles[int(t)]
    return out
