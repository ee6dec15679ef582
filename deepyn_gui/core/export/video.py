"""Annotated video: the evidence re-encoded as H.264 with the overlay and caption burned in.

Every source frame becomes exactly one output frame with the source's timestamps (in the source's own
time base), so frame N of the annotated video is frame N of the evidence and the two play in sync.
Frames the analysis skipped (stride, max frames) are kept, captioned "not analysed".
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import Cancelled, ExportError, InputError
from ..results import AnalysisResult
from .annotate import AnnotateStyle, Caption, annotate
from .atomic import atomic_path
from .frames import frame_lookup

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoExport:
    """What was written: ``frames`` of ``expected``; ``problems`` lists decode trouble (damaged evidence)."""

    path: Path
    frames: int
    expected: int
    problems: tuple[str, ...] = ()


def _source_timing(path: str | os.PathLike[str]) -> tuple[Fraction | None, Fraction | None]:
    """Time base and average frame rate of the evidence's video stream (read-only probe, no decoding)."""
    import av

    url = "file:" + str(Path(path).resolve())
    with av.open(url, mode="r") as c:
        s = c.streams.video[0]
        return s.time_base, (s.average_rate or s.guessed_rate)


def _even_pad(img: np.ndarray) -> np.ndarray:
    """H.264 with 4:2:0 chroma needs even sides: pad one dark row/column where needed."""
    h, w = img.shape[:2]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return img
    return np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="constant", constant_values=0)


def export_annotated_video(
    result: AnalysisResult,
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    style: AnnotateStyle | None = None,
    allow_evidence_dir: bool = False,
    verify: bool = True,
    crf: int = 18,
    preset: str = "veryfast",
    threads: int = 2,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> VideoExport:
    """Write ``out_path`` (mp4/mkv/mov, H.264): one annotated frame per source frame, same timestamps.

    Raises :class:`Cancelled` when ``cancel`` is set (nothing is left behind: the output is written to a
    temporary file and renamed only when complete) and :class:`ExportError` when encoding fails. A
    damaged evidence file gives a shorter video whose :attr:`VideoExport.problems` say why.
    """
    import av

    from ..evidence import prepare_export
    from ..output_guard import check_output_file
    from ..video import VideoSource

    out_path = Path(out_path)
    prepare_export(video_path, result.source.sha256, out_path.parent, allow_evidence_dir, verify=verify)
    # never over the evidence (an .mp4 export named like the exhibit), a device or a FIFO
    check_output_file(out_path, inputs=[video_path], evidence=[video_path], allow_evidence_dir=allow_evidence_dir)
    fmt = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}.get(out_path.suffix.lower())
    if fmt is None:
        raise ExportError(f"annotated video must be .mp4, .mov or .mkv, not {out_path.suffix or 'no extension'}")
    style = style or AnnotateStyle.for_result(result)
    lookup = frame_lookup(result)
    time_base, rate = _source_timing(video_path)
    with VideoSource(video_path, stream=result.settings.get("video_stream")) as src:
        total = src.info.frames
        rate = rate if rate and 0 < float(rate) <= 1000 else Fraction(src.info.fps).limit_denominator(1001)
        if time_base is None or time_base <= 0:
            time_base = 1 / Fraction(rate)
        with atomic_path(out_path) as tmp:
            try:
                written = _encode(src, result, lookup, style, tmp, fmt, time_base, rate, crf, preset, threads,
                        total, on_progress, cancel)
            except (Cancelled, InputError):
                raise
            except av.error.FFmpegError as exc:
                raise ExportError(f"could not encode the annotated video: {exc}") from exc
        problems = tuple(src.decode_errors)
    if problems:
        log.warning("annotated video %s is incomplete: %s", out_path.name, problems[0])
    return VideoExport(out_path, written, total, problems)


def _encode(
    src: object,
    result: AnalysisResult,
    lookup: dict,  # type: ignore[type-arg]
    style: AnnotateStyle,
    tmp: Path,
    fmt: str,
    time_base: Fraction,
    rate: Fraction,
    crf: int,
    preset: str,
    threads: int,
    total: int,
    on_progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> int:
    import av

    with av.open(str(tmp), mode="w", format=fmt) as out:
        stream = None
        last_pts = -1
        done = 0
        for frame in src.frames():  # type: ignore[attr-defined]
            if cancel is not None and cancel.is_set():
                raise Cancelled("annotated video export cancelled")
            cap = Caption.for_frame(result, frame.index, frame.pts_s)
            img = _even_pad(annotate(frame.rgb, lookup.get(frame.index), style, cap))
            if stream is None:
                stream = out.add_stream(
                    "libx264", rate=rate,
                    options={"crf": str(crf), "preset": preset, "threads": str(max(1, threads))},
                )
                stream.width, stream.height = int(img.shape[1]), int(img.shape[0])
                stream.pix_fmt = "yuv420p"
                stream.time_base = time_base
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            pts = round(frame.pts_s / float(time_base))
            pts = max(pts, last_pts + 1)  # strictly increasing even if rounding collides
            last_pts = pts
            vf.pts = pts
            vf.time_base = time_base
            for packet in stream.encode(vf):
                out.mux(packet)
            done += 1
            if on_progress:
                on_progress(done, total)
        if stream is None:
            raise InputError("the evidence has no decodable frames to annotate")
        for packet in stream.encode():
            out.mux(packet)
    return done
