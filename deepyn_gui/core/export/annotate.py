"""Draw findings onto a frame: mask overlay, face boxes, track ids, scores and a caption strip.

One pure function, :func:`annotate`, is used by the GUI, the CLI, the annotated video and the report,
so the same frame + result + style always gives the same pixels; :func:`encode_png` then gives the
same bytes (fixed PNG parameters, no timestamps in the file). Text is drawn with OpenCV's Hershey
fonts, which are rasterised by OpenCV itself (no system font lookup), hence deterministic.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..results import AnalysisResult, FaceResult, FrameResult

#: Mask colormaps by name (the viewer offers the same names); None = solid red, stronger = purer.
COLORMAPS: dict[str, int | None] = {
    "red": None,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "turbo": cv2.COLORMAP_TURBO,
    "jet": cv2.COLORMAP_JET,
    "magma": cv2.COLORMAP_MAGMA,
}
MASK_MODES: tuple[str, ...] = ("fill", "contour")

# RGB colours of face boxes by what the face's score means.
COLOR_FAKE = (230, 40, 40)
COLOR_UNCERTAIN = (240, 170, 20)
COLOR_REAL = (40, 200, 80)
COLOR_UNSCORED = (160, 160, 160)
COLOR_ERROR = (200, 60, 220)
_STRIP_BG = (20, 20, 24)
_STRIP_FG = (240, 240, 240)
_STRIP_DIM = (170, 170, 180)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 6, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_DEFAULT]


@dataclass(frozen=True)
class AnnotateStyle:
    """How findings are drawn. ``mask_threshold`` hides mask pixels below it (probability 0..1)."""

    show_mask: bool = True
    colormap: str = "red"
    opacity: float = 0.5
    mask_threshold: float = 0.5
    mask_mode: str = "fill"
    show_boxes: bool = True
    show_ids: bool = True
    show_scores: bool = True
    show_caption: bool = True
    fake_threshold: float = 0.5  # box colour: red at or above
    real_below: float = 0.3  # box colour: green below; amber between

    def __post_init__(self) -> None:
        if self.colormap not in COLORMAPS:
            raise ValueError(f"unknown colormap {self.colormap!r}; choose from {', '.join(COLORMAPS)}")
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"unknown mask mode {self.mask_mode!r}; choose fill or contour")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be within [0, 1] (got {self.opacity})")
        if not 0.0 <= self.mask_threshold <= 1.0:
            raise ValueError(f"mask threshold must be within [0, 1] (got {self.mask_threshold})")

    @classmethod
    def for_result(cls, result: AnalysisResult, **overrides: object) -> AnnotateStyle:
        """The default style with box colours following the model's own threshold."""
        base: dict[str, object] = {
            "fake_threshold": result.model.threshold,
            "real_below": min(result.model.real_below, result.model.threshold),
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Caption:
    """Provenance printed under the frame, so a single exported PNG still says where it came from."""

    file_name: str
    frame_index: int
    pts_s: float
    model: str = ""
    backend: str = ""
    evidence_sha256: str = ""
    trained: bool = True

    @classmethod
    def for_frame(cls, result: AnalysisResult, index: int, pts_s: float) -> Caption:
        """Caption facts for frame ``index`` of ``result`` (also for frames that were not analysed)."""
        model = result.model.name + (f" {result.model.version}" if result.model.version else "")
        return cls(
            file_name=Path(result.source.path).name,
            frame_index=int(index),
            pts_s=float(pts_s),
            model=model,
            backend=str(result.backend.get("name", "")),
            evidence_sha256=result.source.sha256,
            trained=result.model.trained,
        )


def timecode(pts_s: float) -> str:
    """``HH:MM:SS.mmm`` (milliseconds, so frames at any rate stay distinct)."""
    ms = round(max(0.0, pts_s) * 1000.0)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def ascii_text(text: str) -> str:
    """Hershey fonts draw ASCII only: fold accents, replace everything else with '?'."""
    folded = unicodedata.normalize("NFKD", text)
    out = []
    for ch in folded:
        if unicodedata.combining(ch):
            continue
        out.append(ch if 32 <= ord(ch) < 127 else "?")
    return "".join(out)


def face_color(face: FaceResult, style: AnnotateStyle) -> tuple[int, int, int]:
    """Box colour: red/amber/green by score band, grey when unscored, violet on error."""
    if face.state == "error":
        return COLOR_ERROR
    if face.fake_score is None:
        return COLOR_UNSCORED
    if face.fake_score >= style.fake_threshold:
        return COLOR_FAKE
    if face.fake_score < style.real_below:
        return COLOR_REAL
    return COLOR_UNCERTAIN


def face_label(face: FaceResult, style: AnnotateStyle) -> str:
    parts = []
    if style.show_ids:
        parts.append(f"#{face.track}")
    if style.show_scores:
        if face.fake_score is not None:
            parts.append(f"{face.fake_score:.2f}")
        elif face.state == "too_small":
            parts.append("too small")
        elif face.state == "error":
            parts.append("error")
    return " ".join(parts)


def frame_status(frame_result: FrameResult | None, style: AnnotateStyle) -> str:
    """The caption's verdict part for one frame."""
    if frame_result is None:
        return "not analysed"
    if frame_result.state == "no_face":
        return "no face found"
    if frame_result.state == "error":
        return f"error: {frame_result.error or 'unknown'}"
    score = frame_result.max_score
    if score is None:
        return "faces too small to judge"
    word = "fake" if score >= style.fake_threshold else ("real" if score < style.real_below else "uncertain")
    n = len(frame_result.faces)
    return f"score {score:.3f} ({word}), {n} face{'s' if n != 1 else ''}"


def _scale_for(width: int, height: int) -> tuple[float, int]:
    """Font scale and line thickness that stay legible from 64 px thumbnails to 4K frames."""
    side = min(width, height)
    scale = max(0.3, min(1.2, side / 600.0))
    thick = max(1, round(side / 400.0))
    return scale, thick


def _fit_text(text: str, max_w: int, scale: float, thick: int) -> tuple[str, float]:
    """Shrink the font (down to 0.3) and then cut the text with '...' until it fits ``max_w``."""
    text = ascii_text(text)
    while scale > 0.3:
        (w, _), _ = cv2.getTextSize(text, _FONT, scale, thick)
        if w <= max_w:
            return text, scale
        scale = max(0.3, scale - 0.05)
    (w, _), _ = cv2.getTextSize(text, _FONT, scale, thick)
    while w > max_w and len(text) > 4:
        text = text[:-4].rstrip() + "..."
        (w, _), _ = cv2.getTextSize(text, _FONT, scale, thick)
    return text, scale


def colormap_lut(name: str) -> np.ndarray:
    """256x3 uint8 RGB colours for mask values 0..255."""
    code = COLORMAPS[name]
    if code is None:
        lut = np.zeros((256, 3), np.uint8)
        lut[:, 0] = 255
        lut[:, 1] = np.linspace(90, 0, 256).astype(np.uint8)  # stronger mask -> purer red
        return lut
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return cv2.cvtColor(cv2.applyColorMap(ramp, code), cv2.COLOR_BGR2RGB).reshape(256, 3)


def mask_cut(threshold: float) -> int:
    """Smallest uint8 mask value shown at ``threshold``; 0 (not manipulated) is never shown."""
    return max(1, math.ceil(threshold * 255.0 - 1e-6))


def _overlay_mask(img: np.ndarray, face: FaceResult, style: AnnotateStyle) -> None:
    """Blend the face's mask (colour-mapped, thresholded) onto ``img`` in place."""
    from ..faces import mask_to_frame

    mask = face.mask()
    if mask is None or face.crop is None:
        return
    placed = mask_to_frame(mask, face.crop, img.shape[:2])
    if placed is None:
        return
    x, y, roi = placed
    roi = np.ascontiguousarray(roi, dtype=np.uint8)
    keep = roi >= mask_cut(style.mask_threshold)
    if not keep.any():
        return
    lut = colormap_lut(style.colormap)
    h, w = roi.shape
    region = img[y : y + h, x : x + w]
    if style.mask_mode == "contour":
        contours, _ = cv2.findContours(keep.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        peak = tuple(int(c) for c in lut[int(roi[keep].max())])
        _, thick = _scale_for(img.shape[1], img.shape[0])
        layer = region.copy()
        cv2.drawContours(layer, contours, -1, peak, thick, cv2.LINE_8)
        keep = np.any(layer != region, axis=2)
        color = layer
    else:
        color = lut[roi]
    alpha = np.where(keep, np.float32(style.opacity), np.float32(0.0))[..., None]
    blended = region.astype(np.float32) * (1.0 - alpha) + color.astype(np.float32) * alpha
    region[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _draw_face(img: np.ndarray, face: FaceResult, style: AnnotateStyle) -> None:
    h, w = img.shape[:2]
    scale, thick = _scale_for(w, h)
    color = face_color(face, style)
    x, y, bw, bh = face.box
    p1 = (round(x), round(y))
    p2 = (round(x + bw) - 1, round(y + bh) - 1)
    if style.show_boxes:
        cv2.rectangle(img, p1, p2, color, thick, cv2.LINE_8)
    label = face_label(face, style)
    if not label:
        return
    fs = scale * 0.9
    (tw, th), base = cv2.getTextSize(label, _FONT, fs, thick)
    lx = min(max(0, p1[0]), max(0, w - tw - 4))
    ly = p1[1] - 3 if p1[1] - th - base - 3 >= 0 else min(h - 1, p2[1] + th + base + 3)
    cv2.rectangle(img, (lx, ly - th - base), (lx + tw + 4, ly + 2), color, -1, cv2.LINE_8)
    cv2.putText(img, label, (lx + 2, ly - base + 1), _FONT, fs, (0, 0, 0), thick, cv2.LINE_AA)


def _caption_lines(caption: Caption, frame_result: FrameResult | None, style: AnnotateStyle) -> list[str]:
    sha = caption.evidence_sha256[:16] if caption.evidence_sha256 else "not hashed"
    untrained = " [UNTRAINED MODEL]" if not caption.trained else ""
    return [
        f"{caption.file_name} | frame {caption.frame_index} | {timecode(caption.pts_s)}",
        frame_status(frame_result, style) + untrained,
        f"model {caption.model or '?'} | backend {caption.backend or '?'}",
        f"evidence sha256 {sha}",
    ]


def caption_strip(width: int, lines: list[str]) -> np.ndarray:
    """A dark strip with one line of text per entry, as wide as the frame."""
    scale = max(0.3, min(0.6, width / 800.0))
    thick = 1
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, thick)
    line_h = th + base + max(3, th // 2)
    pad = max(3, th // 2)
    height = pad * 2 + line_h * len(lines)
    height += height % 2  # even, so H.264 4:2:0 needs no extra padding for the strip
    strip = np.empty((height, width, 3), np.uint8)
    strip[...] = _STRIP_BG
    y = pad + th
    for i, line in enumerate(lines):
        text, fs = _fit_text(line, width - 2 * pad, scale, thick)
        color = _STRIP_FG if i < 2 else _STRIP_DIM
        cv2.putText(strip, text, (pad, y), _FONT, fs, color, thick, cv2.LINE_AA)
        y += line_h
    return strip


def annotate(
    frame_rgb: np.ndarray,
    frame_result: FrameResult | None,
    style: AnnotateStyle | None = None,
    caption: Caption | None = None,
) -> np.ndarray:
    """Return a new RGB image: the frame with the overlay and boxes drawn, plus a caption strip below.

    ``frame_result`` None means the frame was not analysed (e.g. skipped by the stride): the frame is
    drawn clean and the caption says so. The input array is never modified.
    """
    style = style or AnnotateStyle()
    rgb = np.asarray(frame_rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"annotate needs an HxWx3 uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
    img = np.array(rgb, dtype=np.uint8, copy=True, order="C")
    if frame_result is not None:
        if style.show_mask and style.opacity > 0:
            for face in frame_result.faces:
                _overlay_mask(img, face, style)
        if style.show_boxes or style.show_ids or style.show_scores:
            for face in frame_result.faces:
                _draw_face(img, face, style)
    if style.show_caption and caption is not None:
        strip = caption_strip(img.shape[1], _caption_lines(caption, frame_result, style))
        img = np.concatenate([img, strip], axis=0)
    return img


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes with fixed parameters: the same pixels always give the same file."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), _PNG_PARAMS)
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(buf.tobytes())


def decode_png(data: bytes) -> np.ndarray:
    """RGB pixels of PNG bytes (tests and the report use it)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a PNG image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
