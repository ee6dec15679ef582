"""Real-face crops for training: extraction with the app's own detector and crop geometry, cache, split.

Training must see exactly what inference sees, so crops come from :func:`deepyn_gui.core.faces.make_detector`
("auto", the app default), :func:`crop_transform_for_box` (margin 1.3) and :func:`extract_crop`. Each clip
is one identity (the real-faces pool has one person per clip); the train/validation split is by identity
so no person is on both sides. Crops are cached per identity as ``.npz`` (uint8) under a work folder
that is never committed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..results import CROP_SIZE

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

#: Identities held out for validation in the shipped model (clip stems in ../shared/data/real-faces).
#: Chosen by hand for spread: two women and three men, three sources, 224 px to 700 px footage.
DEFAULT_VAL_IDS: tuple[str, ...] = (
    "tpsmm__driving",
    "liveportrait__driving_d12",
    "videoretalking__face_4",
    "dagan__driving",
    "pcavs__Pose_Source_620900105",
)

CACHE_VERSION = 1


@dataclass(frozen=True)
class IdentityCrops:
    """All cached crops of one identity: ``crops`` [N,224,224,3] uint8 RGB, ``boxes`` [N,4] face box
    (x, y, w, h) in crop pixels, ``frames`` [N] source frame indices."""

    identity: str
    crops: np.ndarray
    boxes: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return int(self.crops.shape[0])


#: Folders that hold labelled clips for validation and reporting only (``deepyn evaluate``): training and
#: calibration refuse them, so the figures reported on them stay honest.
VALIDATION_ONLY_FOLDERS: frozenset[str] = frozenset({"deepfakes-dev"})


def refuse_validation_data(*paths: str | Path | None) -> None:
    """Raise InputError if a training input is (or lies inside) a validation-only folder."""
    from ..errors import InputError

    for p in paths:
        if p is None:
            continue
        parts = {part.lower() for part in Path(p).expanduser().resolve().parts}
        hit = parts & VALIDATION_ONLY_FOLDERS
        if hit:
            raise InputError(f"{p} is in {min(hit)}/, which is for validation and reporting only "
                             "(deepyn evaluate); it is never used for training or calibration.")


def list_clips(data_dir: str | Path) -> list[Path]:
    """Video files directly in ``data_dir`` (sorted, so the order and the split are reproducible)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise InputError(f"The training data folder {d} does not exist.")
    clips = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS)
    if not clips:
        raise InputError(f"No video clips ({', '.join(VIDEO_EXTS)}) were found in {d}.")
    return clips


def flagged_in_manifest(data_dir: str | Path, flag: str = "FLAG-ENH") -> set[str]:
    """Clip stems whose MANIFEST.md table row carries ``flag`` (e.g. super-resolved "real" footage).

    The shipped model leaves these out of training: their restored, waxy skin is a generator artefact
    in the *real* class, which would teach the model that such texture is normal.
    """
    manifest = Path(data_dir) / "MANIFEST.md"
    if not manifest.is_file():
        return set()
    out: set[str] = set()
    for line in manifest.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("|") and flag in line:
            m = re.search(r"`([^`]+\.(?:mp4|avi|mov|mkv|webm|m4v))`", line)
            if m:
                out.add(Path(m.group(1)).stem)
    return out


def identity_of(clip: Path) -> str:
    """One clip, one identity: the file stem."""
    return clip.stem


def split_identities(
    identities: Sequence[str], val_ids: Sequence[str] | None = None, n_val: int = 5, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split identities into (train, val) with no overlap.

    ``val_ids`` given: those (the ones present) go to validation. Otherwise ``n_val`` are drawn with a
    seeded generator from the sorted list, so the split is reproducible.
    """
    ids = sorted(set(identities))
    if val_ids is not None:
        wanted = set(val_ids)
        val = [i for i in ids if i in wanted]
    else:
        rng = np.random.default_rng(seed)
        k = min(max(n_val, 0), max(len(ids) - 1, 0))
        val = sorted(rng.choice(ids, size=k, replace=False).tolist()) if k else []
    train = [i for i in ids if i not in set(val)]
    return train, val


def iter_frames(path: Path, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 frame) for the wanted frame indices, decoded by the app's own
    :class:`~deepyn_gui.core.video.VideoSource` (same colour conversion and rotation as inference)."""
    from ..video import VideoSource

    if not wanted:
        return
    with VideoSource(str(path)) as src:
        for f in src.frames(min(wanted), max(wanted) + 1):
            if f.index in wanted:
                yield f.index, f.rgb


def _frame_count(path: Path) -> int:
    """Frame count from the container header (demuxing when it has none).

    Kept as the header count (not the decodable count) because the shipped model's crops were
    chosen from it; a clip whose header overstates its length just loses its last sample.
    """
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.frames and s.frames > 0:
            return int(s.frames)
        return sum(1 for p in c.demux(s) if p.size > 0)


def _evenly_spaced(n_total: int, k: int) -> list[int]:
    if n_total <= 0:
        return []
    if n_total <= k:
        return list(range(n_total))
    return sorted({round(float(v)) for v in np.linspace(0, n_total - 1, k)})


def extract_clip_crops(
    clip: Path, frames_per_clip: int = 60, detector_name: str = "auto", margin: float = 1.3
) -> IdentityCrops:
    """Crops of the best-scoring face on ``frames_per_clip`` evenly spaced frames (frames without a face
    are skipped). Uses the app's detector and crop geometry, so train and inference crops match."""
    from ..faces import crop_transform_for_box, extract_crop, make_detector

    detector = make_detector(detector_name, threads=1)
    n = _frame_count(clip)
    wanted = set(_evenly_spaced(n, frames_per_clip))
    crops: list[np.ndarray] = []
    boxes: list[list[float]] = []
    idx: list[int] = []
    for i, rgb in iter_frames(clip, wanted):
        dets = detector.detect(rgb)
        if not dets:
            continue
        det = max(dets, key=lambda d: d.score)
        t = crop_transform_for_box(det.box, margin=margin)
        crops.append(extract_crop(rgb, t))
        x, y, w, h = det.box
        s = t.scale
        boxes.append([(x - t.x0) * s, (y - t.y0) * s, w * s, h * s])
        idx.append(i)
    if not crops:
        return IdentityCrops(
            identity_of(clip),
            np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.int64),
        )
    return IdentityCrops(
        identity_of(clip), np.stack(crops), np.asarray(boxes, np.float32), np.asarray(idx, np.int64)
    )


def _cache_key(clip: Path, frames_per_clip: int, detector_name: str, margin: float) -> str:
    st = clip.stat()
    text = json.dumps([CACHE_VERSION, clip.name, st.st_size, frames_per_clip, detector_name, margin])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_or_extract(
    clips: Iterable[Path],
    cache_dir: str | Path,
    frames_per_clip: int = 60,
    detector_name: str = "auto",
    margin: float = 1.3,
    progress: bool = False,
) -> dict[str, IdentityCrops]:
    """Crops per identity, from ``cache_dir`` when present, else extracted and cached (atomically)."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    clips = list(clips)
    it: Iterable[Path] = clips
    if progress:
        from tqdm import tqdm

        it = tqdm(clips, desc="face crops", unit="clip")
    out: dict[str, IdentityCrops] = {}
    for clip in it:
        f = cache / f"{identity_of(clip)}-{_cache_key(clip, frames_per_clip, detector_name, margin)}.npz"
        if f.is_file():
            with np.load(f) as z:
                out[identity_of(clip)] = IdentityCrops(identity_of(clip), z["crops"], z["boxes"], z["frames"])
            continue
        ic = extract_clip_crops(clip, frames_per_clip, detector_name, margin)
        tmp = f.with_name(f.name + ".tmp.npz")
        np.savez(tmp, crops=ic.crops, boxes=ic.boxes, frames=ic.frames)
        tmp.replace(f)
        out[ic.identity] = ic
    return out


def default_box(size: int = CROP_SIZE, margin: float = 1.3) -> np.ndarray:
    """Where the face box sits in a crop made with ``margin``: centred, side ``size / margin``."""
    side = size / margin
    o = (size - side) / 2.0
    return np.array([o, o, side, side], np.float32)


def load_image_folder(folder: str | Path) -> np.ndarray:
    """All images in a folder as 224x224 RGB uint8 crops (resized if needed), sorted by name."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS)
    out = []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{p} is not a readable image.")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if rgb.shape[:2] != (CROP_SIZE, CROP_SIZE):
            rgb = cv2.resize(rgb, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
        out.append(rgb)
    return np.stack(out) if out else np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
