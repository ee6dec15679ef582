"""The bad-input corpus: every kind of file users will feed DeepYN Viewer, generated on the spot.

Nothing is downloaded: clips are synthesised with PyAV (which bundles FFmpeg and its encoders) and
OpenCV, faces come from the public-domain astronaut portrait in scikit-image. Each :class:`Case`
says what the app must do with its file: refuse it with one clear sentence (``expect="error"``) or
analyse it (``expect="ok"``), keeping partial results and saying what was damaged where it must.

    python -m tests.corpus.make_corpus OUT_DIR      # writes the files and prints the case table

Cases that need something special at run time (a file deleted while it is analysed, a FIFO that
would block a naive reader) are built here but exercised by the tests in ``test_corpus.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.media import (
    astronaut_clip_frames,
    moving_pattern_frames,
    truncate_copy,
    write_audio_only,
    write_clip,
    write_mjpg_avi,
)

__all__ = ["CASES", "Case", "astronaut_face", "build_corpus", "faces_grid_frames", "long_cheap_clip"]

# Where the face is in skimage's astronaut portrait (fractions of its side), as in tests/media.py.
_FACE_W, _FACE_CX, _FACE_CY = 0.18, 0.44, 0.235


@dataclass(frozen=True)
class Case:
    """One corpus file and what the CLI must do with it.

    ``message`` is a regular expression the one-line error must match (error cases). For ``ok``
    cases ``verdicts`` lists acceptable verdict labels, ``min_frames`` the frames that must be
    analysed at least, ``warns`` whether a decode warning is required (damaged data said aloud),
    ``args`` extra CLI arguments (a stride for the long clip).
    """

    name: str
    path: Path
    expect: Literal["error", "ok"]
    message: str = ""
    verdicts: tuple[str, ...] = ()
    min_frames: int = 1
    warns: bool = False
    args: tuple[str, ...] = ()
    faces_at_least: int = 0  # on the frame with the most faces
    note: str = ""
    special: str = ""  # "fifo", "vanish", ... : exercised by a dedicated test, not the generic one
    partial: bool = False  # frames are lost to damage: exit 3, complete false, the gap named frame by frame
    extra: dict[str, object] = field(default_factory=dict, compare=False)


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------


def astronaut_face(face_px: int) -> np.ndarray:
    """A square RGB tile (side ~2.2x ``face_px``) holding the astronaut's face about ``face_px`` wide."""
    import cv2
    from skimage import data

    img = data.astronaut()
    side = img.shape[0]
    cx, cy, fw = _FACE_CX * side, _FACE_CY * side, _FACE_W * side
    half = 1.1 * fw
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    tile = img[y0 : int(cy + half), x0 : int(cx + half)]
    out = max(8, round(2.2 * face_px))
    return cv2.resize(tile, (out, out), interpolation=cv2.INTER_AREA)


def faces_grid_frames(n: int, cols: int, rows: int, face_px: int, gap: int = 8) -> Iterator[np.ndarray]:
    """``cols x rows`` copies of the face on a grey canvas (a crowd); a slight drift between frames."""
    tile = astronaut_face(face_px)
    t = tile.shape[0]
    w = cols * (t + gap) + gap
    h = rows * (t + gap) + gap
    w, h = w + (w % 2), h + (h % 2)
    for i in range(n):
        canvas = np.full((h, w, 3), 96, np.uint8)
        dx = i % 3
        for r in range(rows):
            for c in range(cols):
                x, y = gap + c * (t + gap) + dx, gap + r * (t + gap)
                canvas[y : y + t, x : x + t] = tile[: h - y, : w - x]
        yield canvas


def border_face_frames(n: int, w: int = 320, h: int = 240, face_px: int = 110) -> Iterator[np.ndarray]:
    """The face partly outside the frame: cut by the left edge, then the top, then the bottom-right corner."""
    tile = astronaut_face(face_px)
    t = tile.shape[0]
    spots = [(-t // 3, (h - t) // 2), ((w - t) // 2, -t // 4), (w - 2 * t // 3, h - 2 * t // 3)]
    for i in range(n):
        x, y = spots[i % len(spots)]
        canvas = np.full((h, w, 3), 96, np.uint8)
        sx, sy = max(0, -x), max(0, -y)
        dx, dy = max(0, x), max(0, y)
        cw, ch = min(t - sx, w - dx), min(t - sy, h - dy)
        canvas[dy : dy + ch, dx : dx + cw] = tile[sy : sy + ch, sx : sx + cw]
        yield canvas


def long_cheap_clip(path: str | os.PathLike[str], seconds: float, w: int = 64, h: int = 48, fps: int = 25,
                    gop_frames: int | None = None, content: Callable[[int], Iterator[np.ndarray]] | None = None
                    ) -> Path:
    """A long H.264 clip made in milliseconds: one closed GOP encoded once, its packets muxed again
    and again with shifted timestamps. Decoding it costs what a real clip of that length costs.
    """
    path = Path(path)
    gop = gop_frames or fps
    frames = list(content(gop) if content else moving_pattern_frames(gop, max(w, 64), max(h, 48)))
    frames = [f[:h, :w] for f in frames]
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"g": str(gop), "bf": "0", "preset": "ultrafast",
                                                              "crf": "30"})
        stream.pix_fmt = "yuv420p"
        stream.height, stream.width = h, w
        packets: list[av.Packet] = []
        for rgb in frames:
            packets += stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"))
        packets += stream.encode()
        tb = packets[0].time_base  # the encoder's (1/fps); mux() rescales to the stream's
        step = round(gop / fps / tb)  # one GOP's duration in stream time base units
        base = [(p.pts, p.dts, p.is_keyframe, bytes(p)) for p in packets]
        reps = max(1, round(seconds * fps / gop))
        for r in range(reps):
            for pts, dts, key, data in base:
                pk = av.Packet(data)
                pk.stream = stream
                pk.time_base = tb
                pk.pts = None if pts is None else pts + r * step
                pk.dts = None if dts is None else dts + r * step
                pk.is_keyframe = key
                out.mux(pk)
    return path


def _write_av(path: Path, frames: list[np.ndarray], codec: str, pix_fmt: str, fps: int = 10,
              in_format: str = "rgb24", options: dict[str, str] | None = None, fmt: str | None = None) -> Path:
    """Encode with any PyAV encoder/pixel format (FFV1 gray16, PNG rgb48, ProRes 10-bit, GIF pal8...)."""
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.pix_fmt = pix_fmt
        stream.height, stream.width = frames[0].shape[:2]
        for img in frames:
            arg: object = np.ascontiguousarray(img)
            if in_format == "pal8":  # a 3-3-2 palette: index = RRRGGGBB
                r, g, b = img[..., 0] >> 5, img[..., 1] >> 5, img[..., 2] >> 6
                idx = (r.astype(np.uint8) << 5) | (g.astype(np.uint8) << 2) | b.astype(np.uint8)
                k = np.arange(256)
                pal = np.stack([np.full(256, 255), (k >> 5) * 36, ((k >> 2) & 7) * 36, (k & 3) * 85], axis=1)
                arg = (np.ascontiguousarray(idx), pal.astype(np.uint8))
            frame = av.VideoFrame.from_ndarray(arg, format=in_format)  # type: ignore[arg-type]
            for pk in stream.encode(frame):
                out.mux(pk)
        for pk in stream.encode():
            out.mux(pk)
    return path


def _mjpeg_8k(path: Path, frames: int = 2, side: int = 8192) -> Path:
    """An 8192x8192 Motion-JPEG clip in Matroska, made in a fraction of a second: the picture is JPEG-coded
    once by OpenCV (libjpeg-turbo) and the same packet is muxed ``frames`` times (encoding through FFmpeg's
    scaler at this size takes seconds)."""
    import cv2

    img = np.full((side, side, 3), 90, np.uint8)
    img[side * 3 // 8 : side * 5 // 8, side * 3 // 8 : side * 5 // 8] = (160, 180, 200)
    ok, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 70])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the 8K picture")
    data = jpeg.tobytes()
    with av.open(str(path), mode="w", format="matroska") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width = stream.height = side
        stream.pix_fmt = "yuvj420p"
        for i in range(frames):
            pk = av.Packet(data)
            pk.stream = stream
            pk.time_base = Fraction(1, 10)
            pk.pts = pk.dts = i
            pk.is_keyframe = True
            out.mux(pk)
    return path


def _raw_h264(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """An Annex-B elementary stream: no container, so no frame rate and no timestamps."""
    return _write_av(path, frames, "libx264", "yuv420p", fps=fps, fmt="h264", options={"bf": "0"})


def _corrupt_middle(src: Path, dst: Path, span: float = 0.04) -> Path:
    """Overwrite a few percent of the bytes in the middle with noise (a damaged download)."""
    data = bytearray(src.read_bytes())
    n = len(data)
    a, b = int(n * 0.5), int(n * (0.5 + span))
    data[a:b] = np.random.default_rng(7).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def _zero_fps_avi(dst: Path) -> Path:
    """An MJPG AVI whose stream header says 0 frames per second (dwRate = 0): a broken writer's file."""
    src = write_mjpg_avi(dst.with_suffix(".tmp.avi"), moving_pattern_frames(6, 64, 48), fps=10)
    data = bytearray(src.read_bytes())
    src.unlink()
    at = data.find(b"strh")
    assert at >= 0, "no stream header in the AVI"
    # strh payload: fccType(4) fccHandler(4) dwFlags(4) wPriority(2) wLanguage(2) dwInitialFrames(4)
    # dwScale(4) dwRate(4): dwRate sits 8 + 24 bytes after the chunk id.
    rate_at = at + 8 + 24
    data[rate_at : rate_at + 4] = (0).to_bytes(4, "little")
    avih = data.find(b"avih")
    if avih >= 0:  # dwMicroSecPerFrame = 0 as well
        data[avih + 8 : avih + 12] = (0).to_bytes(4, "little")
    dst.write_bytes(bytes(data))
    return dst


# ------------------------------------------------------------------------------------------------
# The corpus
# ------------------------------------------------------------------------------------------------

_NO_VIDEO = r"(not a video|cannot be opened|no video stream|could not be decoded|cannot be decoded|damaged)"


def build_corpus(out_dir: str | os.PathLike[str]) -> list[Case]:
    """Write every corpus file under ``out_dir`` and return the cases (about 3 s on 2 cores)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(case: Case) -> None:
        cases.append(case)

    pattern = list(moving_pattern_frames(6, 64, 48))
    face_frames = list(astronaut_clip_frames(6, 320, 240, face_px=90))

    # -- files that are not videos ---------------------------------------------------------------
    zero = d / "zero_bytes.mp4"
    zero.write_bytes(b"")
    add(Case("zero_bytes", zero, "error", r"empty \(0 bytes\)"))
    text = d / "notes_renamed.mp4"
    text.write_text("Meeting notes, not a video.\n" * 50, encoding="utf-8")
    add(Case("text_renamed_mp4", text, "error", _NO_VIDEO))
    noise = d / "random_bytes.mov"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 64 << 10, dtype=np.uint8).tobytes())
    add(Case("random_bytes", noise, "error", _NO_VIDEO))
    add(Case("audio_only", write_audio_only(d / "voice_memo.m4a", seconds=0.5), "error",
             r"no video stream \(only audio\)"))
    folder = d / "a_folder.mp4"
    folder.mkdir(exist_ok=True)
    add(Case("directory", folder, "error", r"folder, not a video"))
    add(Case("missing_file", d / "never_written.mp4", "error", r"(no such file|not found)"))
    fifo = d / "named_pipe.mp4"
    if hasattr(os, "mkfifo") and not fifo.exists():
        os.mkfifo(fifo)
    add(Case("fifo", fifo, "error", r"(not a regular file|named pipe|device, pipe)", special="fifo",
             note="opening a FIFO for reading blocks until a writer appears: must be refused, not hang"))
    broken_link = d / "broken_link.mp4"
    if not broken_link.is_symlink():
        broken_link.symlink_to(d / "target_that_does_not_exist.mp4")
    add(Case("broken_symlink", broken_link, "error", r"(no such file|not found)"))

    # -- damaged mp4 ------------------------------------------------------------------------------
    base = write_clip(d / "_base_face.mp4", astronaut_clip_frames(16, 320, 240, face_px=90), fps=25, gop=4)
    fast = write_clip(d / "_base_faststart.mp4", astronaut_clip_frames(16, 320, 240, face_px=90), fps=25,
                      gop=4, faststart=True)
    for pct in (10, 50, 99):
        add(Case(f"truncated_{pct}", truncate_copy(base, d / f"truncated_{pct}pct.mp4", pct / 100), "error",
                 _NO_VIDEO, note="index (moov) at the end: nothing is readable without it"))
    for pct in (50, 99):
        add(Case(f"truncated_faststart_{pct}", truncate_copy(fast, d / f"truncated_fs_{pct}pct.mp4", pct / 100),
                 # 50%: 5 frames lie before the cut, the 5th is the one cut through (not decoded)
                 "ok", verdicts=("fake", "real", "uncertain"), min_frames=4 if pct == 50 else 12, warns=True,
                 partial=True,
                 note="index at the front: the frames before the cut are analysed, the cut is reported"))
    add(Case("corrupt_middle", _corrupt_middle(fast, d / "corrupt_middle.mp4"), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=4, warns=True, partial=True))
    header = bytearray(base.read_bytes())
    header[:64] = bytes(64)
    (d / "corrupt_header.mp4").write_bytes(bytes(header))
    add(Case("corrupt_header", d / "corrupt_header.mp4", "error", _NO_VIDEO))

    # -- containers, codecs, names ------------------------------------------------------------------
    mkv_as_mp4 = write_clip(d / "_tmp.mkv", face_frames, fps=25)
    add(Case("mkv_named_mp4", mkv_as_mp4.rename(d / "really_matroska.mp4"), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=6, note="wrong extension: content decides"))
    add(Case("mp4_named_avi", write_clip(d / "_tmp2.mp4", pattern, fps=25).rename(d / "mp4_inside.avi"), "ok",
             verdicts=("no_face",), min_frames=6))
    add(Case("mjpg_avi", write_mjpg_avi(d / "original_style.avi", face_frames, fps=20), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=6))
    add(Case("vp9_webm", write_clip(d / "clip.webm", pattern[:6], fps=25, codec="libvpx-vp9", pix_fmt="yuv420p"),
             "ok", verdicts=("no_face",), min_frames=6))
    add(Case("gif_pal8", _write_av(d / "animated.gif", pattern[:6], "gif", "pal8", in_format="pal8"), "ok",
             verdicts=("no_face",), min_frames=6, note="palette pixels"))
    add(Case("one_frame", write_clip(d / "one_frame.mp4", face_frames[:1], fps=25), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=1))
    add(Case("raw_h264_no_fps", _raw_h264(d / "elementary_stream.h264", pattern[:6]), "ok",
             verdicts=("no_face",), min_frames=6, note="no container: no frame rate, no timestamps"))
    add(Case("avi_zero_fps", _zero_fps_avi(d / "zero_fps.avi"), "ok", verdicts=("no_face",), min_frames=6))
    vfr_ms = [0, 40, 50, 200, 210, 600, 640, 1500]
    add(Case("variable_frame_rate", write_clip(d / "vfr.mp4", face_frames + face_frames[:2], fps=25, bframes=0,
                                               timestamps_ms=vfr_ms), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=8, extra={"pts_s": [t / 1000 for t in vfr_ms]}))
    add(Case("rotation_90", write_clip(d / "rotated_90.mp4", face_frames[:6], fps=25, rotation=90), "ok",
             min_frames=6, extra={"width": 240, "height": 320}))
    sizes = [(1, 1), (7, 5), (3, 200)]
    for w, h in sizes:
        frames = [np.full((h, w, 3), 40 * i % 256, np.uint8) for i in range(4)]
        add(Case(f"size_{w}x{h}", _write_av(d / f"size_{w}x{h}.mkv", frames, "ffv1", "bgr0"), "ok",
                 verdicts=("no_face",), min_frames=4, extra={"width": w, "height": h}))
    add(Case("size_8k_square", _mjpeg_8k(d / "size_8192x8192.mkv"), "ok", verdicts=("no_face",), min_frames=2,
             extra={"width": 8192, "height": 8192}, note="2 frames only: 200 MB per decoded frame"))
    gray = [np.repeat(f.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2) for f in face_frames[:4]]
    add(Case("gray8_ffv1", _write_av(d / "gray8.mkv", [g[..., 0] for g in gray], "ffv1", "gray", in_format="gray"),
             "ok", verdicts=("fake", "real", "uncertain"), min_frames=4))
    g16 = [(g[..., 0].astype(np.uint16) * 257) for g in gray]
    add(Case("gray16_ffv1", _write_av(d / "gray16.mkv", g16, "ffv1", "gray16le", in_format="gray16le"), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=4))
    rgb48 = [(f.astype(np.uint16) * 257) for f in face_frames[:3]]
    add(Case("rgb48_png", _write_av(d / "rgb48.mov", rgb48, "png", "rgb48be", in_format="rgb48le"), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=3))
    add(Case("yuv422p10_prores", _write_av(d / "prores_10bit.mov", face_frames[:3], "prores_ks", "yuv422p10le"),
             "ok", verdicts=("fake", "real", "uncertain"), min_frames=3))
    add(Case("yuv444p_x264", write_clip(d / "yuv444.mp4", face_frames[:4], fps=25, pix_fmt="yuv444p"), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=4))

    first = _raw_h264(d / "_part1.h264", list(astronaut_clip_frames(5, 320, 240, face_px=90)))
    second = _raw_h264(d / "_part2.h264", [f[::2, ::2].copy() for f in pattern[:5]][:5])
    spliced = d / "size_changes_midstream.h264"
    spliced.write_bytes(first.read_bytes() + second.read_bytes())
    add(Case("resolution_change", spliced, "ok", min_frames=5,
             note="two elementary streams of different sizes spliced together (a re-encoded capture)"))

    long_clip = long_cheap_clip(d / "long_cheap_10min.mp4", seconds=600, w=64, h=48, fps=25)
    add(Case("long_cheap_10min", long_clip, "ok", verdicts=("no_face",), min_frames=10,
             args=("--stride", "1500"), extra={"frames": 15000}, note="10 minutes, 15000 frames, 200 KB"))

    uni = d / "vidéo_ünïcødé_日本語_🎥.mp4"
    add(Case("non_ascii_name", write_clip(uni, face_frames[:4], fps=25), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=4))
    long_name = d / ("very_long_name_" + "x" * 220 + ".mp4")
    add(Case("long_name_240", write_clip(long_name, pattern[:4], fps=25), "ok", verdicts=("no_face",),
             min_frames=4))
    odd = d / "spaces and 'quotes' & $dollar;semicolon -dash.mp4"
    add(Case("shell_chars_name", write_clip(odd, pattern[:4], fps=25), "ok", verdicts=("no_face",), min_frames=4))
    proto = d / "concat:evil.mp4"
    add(Case("protocol_like_name", write_clip(proto, pattern[:4], fps=25), "ok", verdicts=("no_face",),
             min_frames=4, note="a name FFmpeg could read as a protocol URL"))

    # -- faces ----------------------------------------------------------------------------------------
    add(Case("no_faces", write_clip(d / "no_faces.mp4", pattern, fps=25), "ok", verdicts=("no_face",),
             min_frames=6))
    add(Case("twenty_faces", write_clip(d / "crowd_20.mp4", faces_grid_frames(3, 5, 4, face_px=64), fps=25), "ok",
             verdicts=("fake", "real", "uncertain"), min_frames=3, faces_at_least=15))
    add(Case("faces_at_border", write_clip(d / "border_faces.mp4", border_face_frames(6), fps=25), "ok",
             min_frames=6))
    add(Case("tiny_faces", write_clip(d / "tiny_faces.mp4", faces_grid_frames(3, 4, 3, face_px=24), fps=25), "ok",
             verdicts=("too_small", "no_face"), min_frames=3))

    vanish = write_clip(d / "vanishes_mid_run.mp4", astronaut_clip_frames(10, 320, 240, face_px=90), fps=25)
    add(Case("vanishes_mid_run", vanish, "ok", special="vanish", min_frames=1,
             note="deleted / renamed while the pipeline runs"))

    for tmp in d.glob("_*"):
        tmp.unlink()
    return cases


CASES = [
    "zero_bytes", "text_renamed_mp4", "random_bytes", "audio_only", "directory", "missing_file", "fifo",
    "broken_symlink", "truncated_10", "truncated_50", "truncated_99", "truncated_faststart_50",
    "truncated_faststart_99", "corrupt_middle", "corrupt_header", "mkv_named_mp4", "mp4_named_avi", "mjpg_avi",
    "vp9_webm", "gif_pal8", "one_frame", "raw_h264_no_fps", "avi_zero_fps", "variable_frame_rate", "rotation_90",
    "size_1x1", "size_7x5", "size_3x200", "size_8k_square", "gray8_ffv1", "gray16_ffv1", "rgb48_png",
    "yuv422p10_prores", "yuv444p_x264", "resolution_change", "long_cheap_10min", "non_ascii_name",
    "long_name_240", "shell_chars_name", "protocol_like_name", "no_faces", "twenty_faces", "faces_at_border",
    "tiny_faces", "vanishes_mid_run",
]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser(description="Write the bad-input corpus and list its cases.")
    ap.add_argument("out_dir")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    cases = build_corpus(a.out_dir)
    for c in cases:
        size = c.path.stat().st_size if c.path.is_file() and c.special != "fifo" else "-"
        print(f"{c.name:26s} {c.expect:5s} {size!s:>9s}  {c.path.name[:60]}")
    print(f"{len(cases)} cases in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
