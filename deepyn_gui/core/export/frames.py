"""Export single frames as PNG: annotated (overlay, boxes, caption) or raw, the same bytes from GUI and CLI.

Both shells call :func:`render_frame_png` (annotated) or :func:`raw_frame_png` on the decoded RGB
frame and name files with :func:`frame_file_name`, so an analyst who exports frame 120 from the viewer
and a colleague who runs ``deepyn export-frames`` get identical files.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import Cancelled, InputError
from ..results import AnalysisResult, FrameResult
from .annotate import AnnotateStyle, Caption, annotate, encode_png
from .atomic import write_bytes_atomic

FrameChoice = Literal["key", "flagged", "all", "none"]
#: Most suspicious frames per person in the default ("key") selection.
DEFAULT_TOP_FRAMES = 3
ProgressFn = Callable[[int, int], None]


def parse_frame_spec(spec: str, total: int) -> list[int]:
    """``"10,20-30"`` -> sorted unique frame indexes; each must lie in ``[0, total)``.

    Raises :class:`InputError` (one sentence) for malformed parts or out-of-range frames.
    """
    out: set[int] = set()
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise InputError("no frames given (use e.g. --frames 10,20-30)")
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise InputError(f"cannot read frame range {part!r} (use e.g. 10,20-30)")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise InputError(f"frame range {part!r} runs backwards")
        if b >= total:
            raise InputError(f"frame {b} is out of range: the video has {total} frames (0-{total - 1})")
        out.update(range(a, b + 1))
    return sorted(out)


def _check_range(indexes: Sequence[int], n: int) -> None:
    bad = [i for i in indexes if not 0 <= i < n]
    if bad:
        raise InputError(f"frame {bad[0]} is out of range: the video has {n} frames (0-{n - 1})")


def flagged_frames(result: AnalysisResult) -> list[int]:
    """Frames where some face scored at or above the model's threshold."""
    thr = result.model.threshold
    return [fr.index for fr in result.frames if fr.max_score is not None and fr.max_score >= thr]


def flagged_spans(result: AnalysisResult) -> list[tuple[int, int]]:
    """Runs of consecutive analysed frames at or above the threshold, as (first, last) frame indexes."""
    thr = result.model.threshold
    spans: list[tuple[int, int]] = []
    start: int | None = None
    prev: int | None = None
    for fr in result.frames:
        hot = fr.max_score is not None and fr.max_score >= thr
        if hot and start is None:
            start = fr.index
        elif not hot and start is not None and prev is not None:
            spans.append((start, prev))
            start = None
        prev = fr.index
    if start is not None and prev is not None:
        spans.append((start, prev))
    return spans


def top_frames(
    result: AnalysisResult, per_track: int = DEFAULT_TOP_FRAMES, min_gap_s: float = 1.0
) -> list[tuple[int, int, float, float]]:
    """The ``per_track`` highest-scoring frames of each person, at least ``min_gap_s`` apart so they are
    not near-duplicates: ``(track, frame index, pts_s, score)`` in track then frame order."""
    by_track: dict[int, list[tuple[float, int, float]]] = {}
    for fr in result.frames:
        for face in fr.faces:
            if face.fake_score is not None:
                by_track.setdefault(face.track, []).append((face.fake_score, fr.index, fr.pts_s))
    out: list[tuple[int, int, float, float]] = []
    for track in sorted(by_track):
        chosen: list[tuple[float, int, float]] = []
        for score, idx, pts in sorted(by_track[track], key=lambda x: (-x[0], x[1])):
            if len(chosen) >= per_track:
                break
            if all(abs(pts - c[2]) >= min_gap_s for c in chosen):
                chosen.append((score, idx, pts))
        out += [(track, idx, pts, score) for score, idx, pts in sorted(chosen, key=lambda c: c[1])]
    return out


def key_frames(result: AnalysisResult, top: int = DEFAULT_TOP_FRAMES) -> list[int]:
    """The default print/export selection: each person's ``top`` most suspicious frames plus the first
    and last frame of every flagged span. A clip flagged throughout gives a handful of frames, not all."""
    wanted = {idx for _t, idx, _p, _s in top_frames(result, top)}
    for a, b in flagged_spans(result):
        wanted.update((a, b))
    return sorted(wanted)


def select_frames(result: AnalysisResult, which: FrameChoice | str, top: int = DEFAULT_TOP_FRAMES) -> list[int]:
    """``key`` (top-N per person + flagged spans' ends), ``flagged`` (score >= threshold), ``all`` analysed
    frames, ``none``, or a ``10,20-30`` spec."""
    if which == "none":
        return []
    if which == "key":
        return key_frames(result, top)
    if which == "flagged":
        return flagged_frames(result)
    if which == "all":
        return [fr.index for fr in result.frames]
    return parse_frame_spec(which, result.source.frames)


def frame_file_name(index: int, raw: bool = False) -> str:
    """``frame_000120_annotated.png`` / ``frame_000120_raw.png``: sortable, one per frame."""
    return f"frame_{index:06d}_{'raw' if raw else 'annotated'}.png"


def frame_lookup(result: AnalysisResult) -> dict[int, FrameResult]:
    return {fr.index: fr for fr in result.frames}


def render_frame_png(
    frame_rgb: np.ndarray,
    index: int,
    pts_s: float,
    result: AnalysisResult,
    style: AnnotateStyle | None = None,
    lookup: dict[int, FrameResult] | None = None,
) -> bytes:
    """The annotated PNG of one frame: what both the viewer and the CLI write."""
    lookup = lookup if lookup is not None else frame_lookup(result)
    style = style or AnnotateStyle.for_result(result)
    img = annotate(frame_rgb, lookup.get(index), style, Caption.for_frame(result, index, pts_s))
    return encode_png(img)


def raw_frame_png(frame_rgb: np.ndarray) -> bytes:
    """The decoded frame exactly as decoded (RGB24), losslessly."""
    return encode_png(frame_rgb)


def export_frames(
    result: AnalysisResult,
    video_path: str | os.PathLike[str],
    indexes: Iterable[int],
    out_dir: str | os.PathLike[str],
    style: AnnotateStyle | None = None,
    annotated: bool = True,
    raw: bool = False,
    allow_evidence_dir: bool = False,
    verify: bool = True,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Decode the given frames of the evidence and write annotated and/or raw PNGs into ``out_dir``.

    The evidence is re-hashed first (``verify``) and must still match ``result.source.sha256``;
    ``out_dir`` may not be the evidence's folder unless ``allow_evidence_dir``. Every file is written
    atomically. Returns the written paths in frame order.
    """
    from ..evidence import prepare_export
    from ..video import VideoSource

    wanted = sorted({int(i) for i in indexes})
    folder = prepare_export(video_path, result.source.sha256, out_dir, allow_evidence_dir, verify=verify)
    if not wanted:
        return []
    style = style or AnnotateStyle.for_result(result)
    lookup = frame_lookup(result)
    written: list[Path] = []
    with VideoSource(video_path, stream=result.settings.get("video_stream")) as src:
        _check_range(wanted, src.info.frames)
        for k, idx in enumerate(wanted):
            if cancel is not None and cancel.is_set():
                raise Cancelled("frame export cancelled")
            frame = src.frame_at(idx)
            if annotated:
                data = render_frame_png(frame.rgb, idx, frame.pts_s, result, style, lookup)
                written.append(write_bytes_atomic(folder / frame_file_name(idx), data))
            if raw:
                written.append(write_bytes_atomic(folder / frame_file_name(idx, raw=True), raw_frame_png(frame.rgb)))
            if on_progress:
                on_progress(k + 1, len(wanted))
    return written


def export_raw_frames(
    video_path: str | os.PathLike[str],
    indexes: Sequence[int],
    out_dir: str | os.PathLike[str],
    expected_sha256: str | None = None,
    allow_evidence_dir: bool = False,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Raw frames only: needs no analysis (``expected_sha256`` None skips the re-check)."""
    from ..evidence import prepare_export
    from ..video import VideoSource

    folder = prepare_export(
        video_path, expected_sha256 or "", out_dir, allow_evidence_dir, verify=expected_sha256 is not None
    )
    written: list[Path] = []
    wanted = sorted({int(i) for i in indexes})
    with VideoSource(video_path) as src:
        _check_range(wanted, src.info.frames)
        for k, idx in enumerate(wanted):
            if cancel is not None and cancel.is_set():
                raise Cancelled("frame export cancelled")
            frame = src.frame_at(idx)
            written.append(write_bytes_atomic(folder / frame_file_name(idx, raw=True), raw_frame_png(frame.rgb)))
            if on_progress:
                on_progress(k + 1, len(wanted))
    return written
