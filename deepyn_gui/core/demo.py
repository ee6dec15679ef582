"""The demo clip the project owns: a public-domain portrait, a moving camera, one manipulated span.

Why generated, not shipped: no third-party footage is redistributed, and the ground truth is known
exactly. The bundled NASA portrait (``resources/demo/astronaut.jpg``) is placed on a plain backdrop
and filmed by a virtual camera that pans and zooms smoothly (1280x720, 25 fps, 9 s, H.264 via PyAV).
On one span (3 s to 6 s by default) the face is replaced by a *self-blended* version of itself made
by the very code the default model was trained with (:func:`deepyn_gui.core.training.sbi.self_blend`
on the 224 px face crop that the app's detector and crop geometry give, exactly as in training). The
blend is made once, in scene coordinates, so it is identical on every frame of the span and moves with
the face. The blend weight ``alpha`` filmed by the same camera is the ground-truth mask; it is saved
beside the clip (a JSON manifest and a compressed ``.npz``, no pickle) so a viewer can show the truth.

Qt-free: used by ``deepyn demo`` and the tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..resources import resource_path
from .errors import Cancelled, ExportError, InputError, ModelError
from .results import CROP_SIZE

#: Bumped whenever the clip or its manifest would come out different; an older demo is regenerated.
DEMO_VERSION = 1
CLIP_NAME = "deepyn-demo.mp4"
PORTRAIT = ("demo", "astronaut.jpg")
_MARGIN = 1.3  # the app's crop margin (AnalysisSettings.margin, training's extract_clip_crops)
_BACKDROP_TOP = (58, 66, 78)  # RGB of the plain studio backdrop (top and bottom of a soft gradient)
_BACKDROP_BOTTOM = (22, 25, 30)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class DemoSpec:
    """What to render. ``span`` is the manipulated frame range [start, stop)."""

    width: int = 1280
    height: int = 720
    fps: int = 25
    frames: int = 225
    span: tuple[int, int] = (75, 150)
    seed: int = 0  # fixed before the clip was ever scored; the SBI draws come from this generator
    crf: int = 18
    preset: str = "veryfast"
    canvas: tuple[int, int] = (1920, 1080)  # scene size (w, h); the camera sees part of it

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 64 or self.height < 64:
            raise InputError("the demo frame size must be even and at least 64x64")
        if self.frames < 1 or self.fps < 1:
            raise InputError("the demo needs at least one frame and a positive frame rate")
        a, b = self.span
        if not 0 <= a < b <= self.frames:
            raise InputError(f"the manipulated span {self.span} must lie inside 0..{self.frames}")


@dataclass(frozen=True)
class DemoScene:
    """The filmed scene: ``clean`` and ``fake`` canvases (uint8 RGB) that differ only where ``alpha``
    (float32 blend weight of the altered copy, exactly 0 elsewhere) is non-zero."""

    clean: np.ndarray
    fake: np.ndarray
    alpha: np.ndarray
    face_box: tuple[float, float, float, float]  # the detector's box on the canvas (x, y, w, h)
    crop: tuple[float, float, float]  # x0, y0, side of the crop the blend was made on (canvas px)
    detector: str
    portrait_scale: float


@dataclass(frozen=True)
class DemoFrame:
    """One rendered frame: ``rgb`` is what the clip shows; ``clean`` the same frame never manipulated;
    ``alpha`` the blend weight on this frame (None outside the span)."""

    index: int
    rgb: np.ndarray
    clean: np.ndarray
    alpha: np.ndarray | None


@dataclass(frozen=True)
class DemoClip:
    """Where the demo lives: the clip, its manifest (JSON) and its masks (``.npz``)."""

    clip: Path
    manifest: Path
    masks: Path
    created: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def manipulated_frames(self) -> list[int]:
        return [int(i) for i in self.info.get("manipulated_frames", [])]


# --------------------------------------------------------------------------------------------------
# Where
# --------------------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The user's DeepYN data folder (``$DEEPYN_DATA_DIR`` or platformdirs'), shared with the cache."""
    from .cache import data_dir as app_data_dir

    return app_data_dir()


def default_demo_path() -> Path:
    """``<data dir>/demo/deepyn-demo.mp4``."""
    return data_dir() / "demo" / CLIP_NAME


def companion_paths(clip: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(manifest, masks) beside ``clip``: ``<stem>.json`` and ``<stem>-masks.npz``."""
    p = Path(clip)
    return p.with_name(p.stem + ".json"), p.with_name(p.stem + "-masks.npz")


# --------------------------------------------------------------------------------------------------
# Scene
# --------------------------------------------------------------------------------------------------


def load_portrait() -> np.ndarray:
    """The bundled public-domain portrait as RGB uint8 (see ``resources/demo/PROVENANCE.md``)."""
    path = resource_path(*PORTRAIT)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if bgr is None:
        raise InputError(f"The demo portrait {path} is missing or unreadable; reinstall DeepYN Viewer.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _backdrop(w: int, h: int) -> np.ndarray:
    """A plain, soft vertical gradient: nothing in it can look like a face."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top = np.array(_BACKDROP_TOP, np.float32)
    bottom = np.array(_BACKDROP_BOTTOM, np.float32)
    col = top * (1 - t) + bottom * t
    return np.ascontiguousarray(np.broadcast_to(np.rint(col), (h, w, 3)).astype(np.uint8))


def _best_face(detector: Any, rgb: np.ndarray) -> tuple[float, float, float, float]:
    dets = detector.detect(rgb)
    if not dets:
        raise ModelError("The face detector found no face in the demo portrait.")
    d = max(dets, key=lambda d: d.score)
    return tuple(float(v) for v in d.box)  # type: ignore[return-value]


def build_scene(seed: int = 0, canvas: tuple[int, int] = (1920, 1080), detector: str = "auto") -> DemoScene:
    """Lay the portrait on the backdrop and make the self-blended twin of the canvas.

    The portrait is scaled so that its face crop (margin 1.3, as the app and training use) is about
    224 px on the canvas, so the blend made on the 224 px crop goes back with (almost) no resampling.
    The blend is :func:`self_blend` on :func:`extract_crop` of the canvas at the detector's box, with
    the box in crop pixels: the same inputs training gives it.
    """
    from .faces import crop_transform_for_box, extract_crop, make_detector
    from .training.sbi import self_blend

    cw, ch = canvas
    portrait = load_portrait()
    det = make_detector(detector, threads=1)

    def lay_out(k: float) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        side = round(portrait.shape[0] * k)
        if side > min(cw, ch):
            raise InputError("the demo canvas is too small for the portrait")
        img = _backdrop(cw, ch)
        px, py = (cw - side) // 2, (ch - side) // 2
        img[py : py + side, px : px + side] = cv2.resize(portrait, (side, side), interpolation=cv2.INTER_CUBIC)
        return img, _best_face(det, img)

    # The detector's box does not scale exactly with the picture: a few fixed-point steps bring the
    # crop side to 224 px (then the crop is a plain copy and the blend goes back bit-exact).
    _, _, fw, fh = _best_face(det, portrait)
    k = CROP_SIZE / (_MARGIN * max(fw, fh))
    clean, box = lay_out(k)
    for _ in range(4):
        t = crop_transform_for_box(box, margin=_MARGIN)
        if round(t.side) == CROP_SIZE:
            break
        k *= CROP_SIZE / t.side
        clean, box = lay_out(k)
    t = crop_transform_for_box(box, margin=_MARGIN)
    x0, y0, s = round(t.x0), round(t.y0), round(t.side)
    if x0 < 0 or y0 < 0 or x0 + s > cw or y0 + s > ch:
        raise InputError("the demo face crop does not fit on the canvas")
    crop = extract_crop(clean, t)
    x, y, w, h = box
    crop_box = np.array([(x - t.x0) * t.scale, (y - t.y0) * t.scale, w * t.scale, h * t.scale], np.float32)
    sb = self_blend(crop, crop_box, np.random.default_rng(seed))

    diff: np.ndarray = sb.image.astype(np.float32) - crop.astype(np.float32)
    a: np.ndarray = sb.alpha
    if s != CROP_SIZE:  # carry the blend's change back to the canvas resolution (the crop was a plain resize)
        diff = cv2.resize(diff, (s, s), interpolation=cv2.INTER_LINEAR)
        a = cv2.resize(a, (s, s), interpolation=cv2.INTER_LINEAR)
        a[a < 1e-3] = 0.0
    alpha = np.zeros((ch, cw), np.float32)
    alpha[y0 : y0 + s, x0 : x0 + s] = a
    block = clean[y0 : y0 + s, x0 : x0 + s].astype(np.float32)
    new = np.clip(np.rint(block + diff), 0, 255).astype(np.uint8)
    keep = a == 0
    new[keep] = clean[y0 : y0 + s, x0 : x0 + s][keep]
    fake = clean.copy()
    fake[y0 : y0 + s, x0 : x0 + s] = new
    name = str(det.describe().get("name", detector)) if hasattr(det, "describe") else detector
    return DemoScene(clean, fake, alpha, box, (t.x0, t.y0, t.side), name, float(k))


# --------------------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------------------

#: (time as a fraction of the clip, centre x, centre y as offsets from the face centre in canvas px, zoom)
_KEYS: tuple[tuple[float, float, float, float], ...] = (
    (0.00, 40.0, 200.0, 1.00),
    (0.25, 10.0, 110.0, 1.20),
    (0.50, -30.0, 90.0, 1.30),
    (0.75, 60.0, 130.0, 1.15),
    (1.00, 40.0, 190.0, 1.00),
)


def _catmull_rom(p0: float, p1: float, p2: float, p3: float, u: float) -> float:
    return 0.5 * ((2 * p1) + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u * u
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * u ** 3)


def camera(index: int, spec: DemoSpec, face_centre: tuple[float, float]) -> tuple[float, float, float]:
    """(centre x, centre y, zoom) of the virtual camera on frame ``index``: a smooth Catmull-Rom path
    through a few keyframes, eased at both ends so the clip starts and ends at rest."""
    f = index / max(spec.frames - 1, 1)
    f = f * f * (3 - 2 * f)  # smoothstep: gentle start and stop
    keys = _KEYS
    for j in range(len(keys) - 1):
        if keys[j][0] <= f <= keys[j + 1][0]:
            break
    u = (f - keys[j][0]) / (keys[j + 1][0] - keys[j][0])
    pts = [keys[max(j - 1, 0)], keys[j], keys[j + 1], keys[min(j + 2, len(keys) - 1)]]
    cx, cy, z = (_catmull_rom(pts[0][c], pts[1][c], pts[2][c], pts[3][c], u) for c in (1, 2, 3))
    return face_centre[0] + cx, face_centre[1] + cy, z


def camera_matrix(cx: float, cy: float, zoom: float, w: int, h: int) -> np.ndarray:
    """Canvas -> frame affine map (pixel centres): canvas point (cx, cy) lands on the frame centre."""
    return np.array(
        [[zoom, 0.0, (w - 1) / 2.0 - zoom * cx], [0.0, zoom, (h - 1) / 2.0 - zoom * cy]], dtype=np.float64
    )


def render_frames(spec: DemoSpec, scene: DemoScene | None = None) -> Iterator[DemoFrame]:
    """Film the scene: one :class:`DemoFrame` per frame. Manipulated and clean frames use the same
    camera matrix and the same bilinear warp, so they differ only where the filmed alpha is non-zero."""
    sc = scene if scene is not None else build_scene(spec.seed, spec.canvas)
    x, y, w, h = sc.face_box
    centre = (x + w / 2.0, y + h / 2.0)
    a, b = spec.span
    size = (spec.width, spec.height)
    for i in range(spec.frames):
        m = camera_matrix(*camera(i, spec, centre), spec.width, spec.height)
        clean = cv2.warpAffine(sc.clean, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if a <= i < b:
            rgb = cv2.warpAffine(sc.fake, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            alpha = cv2.warpAffine(sc.alpha, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            yield DemoFrame(i, rgb, clean, alpha)
        else:
            yield DemoFrame(i, clean, clean, None)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(clip: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest beside ``clip`` if it is one of ours, current, and its files are all there."""
    manifest, masks = companion_paths(clip)
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("demo_version") != DEMO_VERSION:
        return None
    p = Path(clip)
    if not (p.is_file() and masks.is_file()) or p.stat().st_size != info.get("clip_bytes"):
        return None
    return info


def load_masks(clip: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: (frame indices [N] int32, blend weight [N, H, W] as uint8 0..255, where any
    non-zero weight is at least 1). Read with ``allow_pickle=False``."""
    _, masks = companion_paths(clip)
    with np.load(masks, allow_pickle=False) as z:
        return z["frames"].astype(np.int32), z["alpha"]


def _alpha_u8(alpha: np.ndarray) -> np.ndarray:
    """Blend weight as uint8, rounded up so that every touched pixel is non-zero."""
    out: np.ndarray = np.ceil(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out


def write_demo(
    clip: str | os.PathLike[str] | None = None,
    spec: DemoSpec | None = None,
    force: bool = False,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    threads: int = 2,
) -> DemoClip:
    """Write the demo clip, its masks and its manifest (each atomically; the manifest last, so its
    presence means the set is complete). Does nothing when a current demo is already there, unless
    ``force``."""
    import av

    from .export.atomic import atomic_path, write_bytes_atomic
    from .training.sbi import MASK_TARGET_THRESHOLD

    spec = spec or DemoSpec()
    path = Path(clip) if clip is not None else default_demo_path()
    manifest_path, masks_path = companion_paths(path)
    if not force:
        existing = read_manifest(path)
        if existing is not None:
            return DemoClip(path, manifest_path, masks_path, False, existing)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the demo folder {path.parent}: {exc.strerror or exc}") from exc

    scene = build_scene(spec.seed, spec.canvas)
    manipulated: list[int] = []
    masks: list[np.ndarray] = []
    boxes: list[list[int]] = []
    with atomic_path(path) as tmp:
        try:
            with av.open(str(tmp), mode="w", format="mp4") as out:
                stream = out.add_stream(
                    "libx264", rate=Fraction(spec.fps, 1),
                    options={"crf": str(spec.crf), "preset": spec.preset, "threads": str(max(1, threads)),
                             "g": str(2 * spec.fps), "bf": "2"},
                )
                stream.width, stream.height = spec.width, spec.height
                stream.pix_fmt = "yuv420p"
                for fr in render_frames(spec, scene):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("writing the demo clip was cancelled")
                    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(fr.rgb), format="rgb24")
                    vf.pts = fr.index
                    vf.time_base = Fraction(1, spec.fps)
                    for packet in stream.encode(vf):
                        out.mux(packet)
                    if fr.alpha is not None:
                        m = _alpha_u8(fr.alpha)
                        ys, xs = np.nonzero(m)
                        manipulated.append(fr.index)
                        masks.append(m)
                        boxes.append([int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                      int(ys.max() - ys.min() + 1)] if len(xs) else [0, 0, 0, 0])
                    if on_progress is not None:
                        on_progress(fr.index + 1, spec.frames)
                for packet in stream.encode():
                    out.mux(packet)
        except av.error.FFmpegError as exc:
            raise ExportError(f"could not encode the demo clip: {exc}") from exc

    with atomic_path(masks_path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, frames=np.asarray(manipulated, np.int32),
                            alpha=np.stack(masks) if masks else np.zeros((0, spec.height, spec.width), np.uint8))

    a, b = spec.span
    info: dict[str, Any] = {
        "demo_version": DEMO_VERSION,
        "clip": path.name,
        "clip_bytes": path.stat().st_size,
        "clip_sha256": _sha256(path),
        "masks": masks_path.name,
        "width": spec.width,
        "height": spec.height,
        "fps": spec.fps,
        "frames": spec.frames,
        "duration_s": spec.frames / spec.fps,
        "manipulated_span": {"start_frame": a, "stop_frame": b, "start_s": a / spec.fps, "stop_s": b / spec.fps},
        "manipulated_frames": manipulated,
        "mask_boxes": boxes,
        "mask_format": ("npz (no pickle): frames int32 [N]; alpha uint8 [N,H,W] = ceil(255 x blend weight); "
                        f"training's hard target is weight > {MASK_TARGET_THRESHOLD}"),
        "mask_target_threshold": MASK_TARGET_THRESHOLD,
        "method": ("self-blended image (deepyn_gui.core.training.sbi.self_blend) of the 224 px face crop "
                   "from the app's detector and crop geometry (margin 1.3), made once in scene coordinates "
                   "and filmed by the same camera as the clean frames"),
        "seed": spec.seed,
        "detector": scene.detector,
        "scene_face_box": [round(v, 2) for v in scene.face_box],
        "scene_crop": [round(v, 2) for v in scene.crop],
        "spec": {k: v for k, v in asdict(spec).items()},
        "source_image": {"file": "/".join(PORTRAIT), "sha256": _sha256(resource_path(*PORTRAIT)),
                         "credit": "NASA portrait of astronaut Eileen Collins (public domain), via scikit-image"},
        "note": "The manipulation is synthetic, made by DeepYN Viewer for demonstration; it says nothing "
                "about the person pictured.",
    }
    write_bytes_atomic(manifest_path, (json.dumps(info, indent=1) + "\n").encode("utf-8"))
    return DemoClip(path, manifest_path, masks_path, True, info)
