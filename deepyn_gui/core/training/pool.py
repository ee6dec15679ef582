"""The training pool for the pretrained-encoder model: real faces (two folders) and generated faces.

Crops come from the app's own detector and crop geometry (as in :mod:`.data`), so the model trains on
what inference feeds it. Each crop also carries five landmarks found by YuNet *on the crop* (training
time only; NaN where YuNet finds nothing), from which :mod:`.sbi` builds landmark-hull blend masks.

Generated faces come from ``fakes-train`` (one folder per generator). Its manifest's ``layout`` column
says where the generated face is in side-by-side files; faces outside that region are never used as
fakes, and grids whose layout mixes real and generated faces in a way we cannot locate are skipped.
Every source file is cached as one ``.npz`` under the work folder (never committed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..results import CROP_SIZE
from .data import IMAGE_EXTS, VIDEO_EXTS, _evenly_spaced, _frame_count, iter_frames

POOL_VERSION = 1
MIN_SIDE = 48.0  # smaller faces give crops upsampled > 3.5x: blur, not evidence

XRanges = list[tuple[float, float]]


def layout_regions(layout: str) -> XRanges | None:
    """Horizontal ranges (fractions of the frame width) where a generated face may be, or None to skip.

    Keyed on the wording of fakes-train/MANIFEST.md's ``layout`` column. A face counts when its box
    centre lies in one of the ranges.
    """
    t = layout.lower()
    if "grid 2x2 triplets" in t or "includes real" in t or "top row real" in t:
        return None  # real source/target panels interleaved with results: cannot locate safely
    if "middle = " in t and "output" in t:
        return [(1 / 3, 2 / 3)]
    if "right = " in t and ("output" in t or "swapped" in t):
        return [(0.5, 1.0)]
    if "training-preview grid" in t:  # columns src | src-pred | dst | dst-pred | swap
        return [(0.2, 0.4), (0.6, 1.0)]
    return [(0.0, 1.0)]


@dataclass
class PoolPart:
    """Crops of one source file: ``crops`` [N,224,224,3] uint8, ``boxes`` [N,4] (crop px),
    ``landmarks`` [N,5,2] float32 (crop px, NaN when not found)."""

    key: str
    crops: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return int(self.crops.shape[0])


class CropLandmarker:
    """YuNet run on a 224 crop; returns the five points of the face nearest the crop centre."""

    def __init__(self, model_path: str | Path) -> None:
        self._det = cv2.FaceDetectorYN.create(str(model_path), "", (CROP_SIZE, CROP_SIZE), 0.5, 0.3, 10)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        _, faces = self._det.detect(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if faces is None or len(faces) == 0:
            return np.full((5, 2), np.nan, np.float32)
        rows = np.asarray(faces, np.float64).reshape(-1, 15)
        c = CROP_SIZE / 2.0
        d = (rows[:, 0] + rows[:, 2] / 2 - c) ** 2 + (rows[:, 1] + rows[:, 3] / 2 - c) ** 2
        return rows[int(np.argmin(d)), 4:14].reshape(5, 2).astype(np.float32)


def _gif_frames(path: Path, k: int) -> Iterator[tuple[int, np.ndarray]]:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        n = getattr(im, "n_frames", 1)
        wanted = set(_evenly_spaced(n, k))
        for i, fr in enumerate(ImageSequence.Iterator(im)):
            if i in wanted:
                yield i, np.asarray(fr.convert("RGB"))


def _frames_of(path: Path, k: int) -> Iterator[tuple[int, np.ndarray]]:
    ext = path.suffix.lower()
    if ext == ".gif":
        yield from _gif_frames(path, k)
    elif ext in VIDEO_EXTS:
        yield from iter_frames(path, set(_evenly_spaced(_frame_count(path), k)))
    elif ext in IMAGE_EXTS:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            yield 0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def extract_part(
    path: Path,
    key: str,
    frames: int,
    landmarker: CropLandmarker,
    regions: XRanges | None = None,
    all_faces: bool = False,
    max_faces: int = 6,
    detector_name: str = "auto",
) -> PoolPart:
    """Crops from ``frames`` evenly spaced frames of ``path`` (or the image): the best face, or with
    ``all_faces`` every face of side >= MIN_SIDE, whose centre lies in ``regions``."""
    from ..faces import crop_transform_for_box, extract_crop, make_detector

    det = make_detector(detector_name, threads=1)
    crops: list[np.ndarray] = []
    boxes: list[list[float]] = []
    lms: list[np.ndarray] = []
    rs = regions or [(0.0, 1.0)]
    for _, rgb in _frames_of(path, frames):
        w = rgb.shape[1]
        dets = [
            d
            for d in det.detect(rgb)
            if max(d.box[2], d.box[3]) >= MIN_SIDE
            and any(lo <= (d.box[0] + d.box[2] / 2) / w <= hi for lo, hi in rs)
        ]
        dets.sort(key=lambda d: -d.score)
        for d in dets[: (max_faces if all_faces else 1)]:
            t = crop_transform_for_box(d.box, margin=1.3)
            crop = extract_crop(rgb, t)
            x, y, bw, bh = d.box
            s = t.scale
            crops.append(crop)
            boxes.append([(x - t.x0) * s, (y - t.y0) * s, bw * s, bh * s])
            lms.append(landmarker(crop))
    if not crops:
        return PoolPart(key, np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8), np.zeros((0, 4), np.float32),
                        np.zeros((0, 5, 2), np.float32))
    return PoolPart(key, np.stack(crops), np.asarray(boxes, np.float32), np.stack(lms).astype(np.float32))


def cached_part(cache: Path, path: Path, key: str, make: Callable[[], PoolPart], params: object) -> PoolPart:
    """``make()`` once per (file, parameters); later calls read the ``.npz``."""
    text = json.dumps([POOL_VERSION, path.name, path.stat().st_size, params], default=str)
    f = cache / f"{key.replace('/', '__')}-{hashlib.sha256(text.encode()).hexdigest()[:10]}.npz"
    if f.is_file():
        with np.load(f) as z:
            return PoolPart(key, z["crops"], z["boxes"], z["landmarks"])
    part = make()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f.name + ".tmp.npz")
    np.savez(tmp, crops=part.crops, boxes=part.boxes, landmarks=part.landmarks)
    tmp.replace(f)
    return part


@dataclass
class SourceFile:
    """One file of a pool: ``group`` is the identity (reals) or the generator (fakes)."""

    path: Path
    key: str
    group: str
    family: str
    regions: XRanges | None
    all_faces: bool


def real_sources(real_dirs: Sequence[str | Path]) -> list[SourceFile]:
    """Clips directly in each folder (one identity per clip) and, in ``images/``/``videos/`` sub-folders,
    one group per file (a file's people appear in no other file, per real-faces-2/MANIFEST.md)."""
    out: list[SourceFile] = []
    for d in map(Path, real_dirs):
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                out.append(SourceFile(p, f"{d.name}/{p.name}", p.stem, "real", None, False))
        for sub in ("images", "videos"):
            if (d / sub).is_dir():
                for p in sorted((d / sub).iterdir()):
                    if p.suffix.lower() in VIDEO_EXTS + IMAGE_EXTS:
                        out.append(SourceFile(p, f"{d.name}/{sub}/{p.name}", p.stem, "real", None, True))
    return out


def fake_sources(fakes_dir: str | Path) -> tuple[list[SourceFile], list[str]]:
    """Files listed in ``fakes_dir/manifest.json`` with their generator folder and usable regions;
    also the files skipped because their layout mixes real and generated faces."""
    d = Path(fakes_dir)
    meta = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    files = meta["files"] if isinstance(meta, dict) else meta
    out: list[SourceFile] = []
    skipped: list[str] = []
    for f in files:
        regions = layout_regions(str(f.get("layout", "")))
        if regions is None:
            skipped.append(f["path"])
            continue
        p = d / f["path"]
        out.append(SourceFile(p, f"fakes/{f['path']}", f["path"].split("/")[0], str(f.get("family", "")),
                              regions, True))
    return out, skipped


def collect(
    sources: Sequence[SourceFile],
    cache: Path,
    landmarker: CropLandmarker,
    video_frames: int,
    log: Callable[[str], None] = print,
) -> list[tuple[SourceFile, PoolPart]]:
    """Extract (or read back) every source's crops."""
    out = []
    for i, s in enumerate(sources):
        params = [video_frames, s.regions, s.all_faces]
        max_faces = 4 if s.path.suffix.lower() in (*VIDEO_EXTS, ".gif") else 8

        def make(s: SourceFile = s, max_faces: int = max_faces) -> PoolPart:
            return extract_part(s.path, s.key, video_frames, landmarker, s.regions, s.all_faces, max_faces=max_faces)

        part = cached_part(cache, s.path, s.key, make, params)
        out.append((s, part))
        if (i + 1) % 20 == 0:
            log(f"  {i + 1}/{len(sources)} files")
    return out
