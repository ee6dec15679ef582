"""Synthetic media for tests: tiny clips written on the fly so the suite runs on a fresh machine.

Qt-free on purpose (core tests and Qt tests both reuse it). Clips are written with PyAV, which bundles
libx264, so tests get real H.264 with B-frames, rotation side data and several containers without any
system FFmpeg. ``moving_pattern_frames`` stamps the frame index into the picture as a coarse binary
code that survives lossy coding, so a test can check *which* frame it got, not only that it got one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "BITS",
    "astronaut_clip_frames",
    "decode_pattern_index",
    "moving_pattern_frames",
    "truncate_copy",
    "write_audio_only",
    "write_clip",
    "write_mjpg_avi",
]

#: Number of index bits stamped by :func:`moving_pattern_frames` (indexes up to 65535).
BITS = 16
_CELL = 8  # side of one code cell in pixels: big enough to survive 4:2:0 + lossy coding
# Where YuNet finds the face in skimage's astronaut portrait, as fractions of the portrait's side.
_FACE_W, _FACE_CX, _FACE_CY = 0.18, 0.44, 0.235


def write_clip(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float = 25,
    codec: str = "libx264",
    bframes: int = 2,
    gop: int = 12,
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    faststart: bool = False,
    timestamps_ms: Sequence[int] | None = None,
) -> Path:
    """Encode RGB uint8 frames (HxWx3) into ``path``; the container follows the file extension.

    ``rotation`` is the clockwise display rotation (the meaning of the classic ``rotate`` tag and of
    ``VideoInfo.rotation``); it is written as display-matrix side data. For libx264 and mpeg4 the
    encoder is asked for ``bframes`` B-frames and a ``gop``-frame keyframe interval.
    ``faststart`` moves the mp4/mov index to the front (so a truncated copy stays openable).
    ``timestamps_ms`` gives each frame its own presentation time (variable frame rate clips).
    """
    path = Path(path)
    opts: dict[str, str] = {}
    if codec in ("libx264", "mpeg4"):
        opts.update({"bf": str(bframes), "g": str(gop)})
    if codec == "libx264":
        # Test media must be the same bytes on every run. With its defaults (CRF + macroblock-tree
        # ratecontrol) this libx264 is not reproducible, even single-threaded: 60 frames of 64x48 came
        # out 9711..9746 bytes from run to run (more variants under load), so "the first half of the
        # file" cut a different frame each time (the flaky truncation test) and the shared export clip
        # decoded to different pixels in different test processes (frame 6 sometimes "no face").
        # Without mb-tree and lookahead it is byte-identical run after run (tested 20x under load).
        opts.update({"threads": "1", "x264-params": "mbtree=0:rc-lookahead=0:sync-lookahead=0"})
    if options:
        opts.update(options)
    container_options = {"movflags": "+faststart"} if faststart else {}
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", options=container_options) as out:
        stream = out.add_stream(codec, rate=rate, options=opts)
        stream.pix_fmt = pix_fmt
        first = True
        for count, rgb in enumerate(frames):
            if first:
                stream.height, stream.width = int(rgb.shape[0]), int(rgb.shape[1])
                if timestamps_ms is not None:
                    stream.codec_context.time_base = Fraction(1, 1000)
                if rotation:
                    # PyAV's angle is counter-clockwise (VideoFrame.rotation); ours is clockwise.
                    stream.set_display_rotation(-float(rotation))
                first = False
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
            if timestamps_ms is not None:
                frame.pts = int(timestamps_ms[count])
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        if first:
            raise ValueError("write_clip needs at least one frame")
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_mjpg_avi(path: str | Path, frames: Iterable[np.ndarray], fps: float = 20) -> Path:
    """Write an MJPG AVI with OpenCV, the way the original U-YNet sample clip was made."""
    import cv2

    path = Path(path)
    writer: cv2.VideoWriter | None = None
    try:
        for rgb in frames:
            if writer is None:
                h, w = rgb.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write MJPG AVI to {path}")
            writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError("write_mjpg_avi needs at least one frame")
    return path


def write_audio_only(path: str | Path, seconds: float = 0.5, sample_rate: int = 44100) -> Path:
    """Write an AAC-only mp4/m4a: a real media file that has no video stream."""
    path = Path(path)
    fmt = "mp4" if path.suffix.lower() in (".mp4", ".m4a", ".mov") else None
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream("aac", rate=sample_rate)
        n = int(seconds * sample_rate) // 1024 + 1
        t = np.arange(1024, dtype=np.float32) / sample_rate
        for i in range(n):
            tone = (0.1 * np.sin(2 * np.pi * 440 * (t + i * 1024 / sample_rate))).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def truncate_copy(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a cut-off download)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def moving_pattern_frames(n: int, w: int = 64, h: int = 48) -> Iterator[np.ndarray]:
    """Frames whose pixels identify their index: a binary index code, a moving block, a drifting gradient.

    The top-left ``BITS`` cells (8x8 px each, row-major over the frame width) are black/white bits of the
    index, least significant first; :func:`decode_pattern_index` reads it back. ``w`` must fit at least
    ``BITS`` cells over the first rows (64 px wide fits 8 per row, so 2 rows).
    """
    per_row = w // _CELL
    rows = -(-BITS // per_row)
    if per_row < 1 or rows * _CELL > h:
        raise ValueError(f"{w}x{h} is too small for a {BITS}-bit index code")
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        img = np.empty((h, w, 3), np.uint8)
        img[..., 0] = ((xx * 255) // max(w - 1, 1) + 3 * i) % 256
        img[..., 1] = ((yy * 255) // max(h - 1, 1) + 5 * i) % 256
        img[..., 2] = (7 * i) % 256
        bs = max(4, min(w, h) // 6)
        x0 = (3 * i) % max(w - bs, 1)
        y0 = rows * _CELL + (2 * i) % max(h - rows * _CELL - bs, 1)
        img[y0 : y0 + bs, x0 : x0 + bs] = (255, 255, 0)
        for b in range(BITS):
            r, c = divmod(b, per_row)
            img[r * _CELL : (r + 1) * _CELL, c * _CELL : (c + 1) * _CELL] = 255 if (i >> b) & 1 else 0
        yield img


def decode_pattern_index(rgb: np.ndarray) -> int:
    """Read back the index stamped by :func:`moving_pattern_frames` (works after lossy coding)."""
    per_row = rgb.shape[1] // _CELL
    value = 0
    for b in range(BITS):
        r, c = divmod(b, per_row)
        cell = rgb[r * _CELL + 2 : (r + 1) * _CELL - 2, c * _CELL + 2 : (c + 1) * _CELL - 2]
        if float(cell.mean()) > 127:
            value |= 1 << b
    return value


def astronaut_clip_frames(
    n: int, w: int = 320, h: int = 240, face_px: int = 40, pan_px_per_frame: float = 1.0
) -> Iterator[np.ndarray]:
    """A real (public-domain NASA) face moving smoothly across a ``w``x``h`` grey canvas.

    The 512x512 astronaut portrait is scaled so the face is about ``face_px`` wide (YuNet measures it
    at 18 % of the portrait's width, centred at 44 %/23.5 % of its width/height). The face centre sits
    mid-height, starts mid-width and moves ``pan_px_per_frame`` per frame, bouncing between the canvas edges so it
    always stays fully in view (no jumps that would confuse a tracker). The portrait is clipped to
    the canvas when it is larger than it.
    """
    import cv2
    from skimage import data

    side = max(8, round(face_px / _FACE_W))
    scaled = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    half = face_px / 2 + 2
    lo, hi = half, max(half, w - half)
    for i in range(n):
        travel = (w / 2 - lo) + i * pan_px_per_frame  # frame 0: face in the middle
        period = 2 * (hi - lo)
        phase = travel % period if period > 0 else 0.0
        cx = lo + (phase if phase <= hi - lo else period - phase)
        x0 = round(cx - _FACE_CX * side)
        y0 = round(h / 2 - _FACE_CY * side)
        canvas = np.full((h, w, 3), 96, np.uint8)
        sx0, sy0 = max(0, -x0), max(0, -y0)
        dx0, dy0 = max(0, x0), max(0, y0)
        cw, ch = min(side - sx0, w - dx0), min(side - sy0, h - dy0)
        if cw > 0 and ch > 0:
            canvas[dy0 : dy0 + ch, dx0 : dx0 + cw] = scaled[sy0 : sy0 + ch, sx0 : sx0 + cw]
        yield canvas
