"""JSON and CSV exports of an analysis (schema ``deepyn.analysis/1``)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..results import AnalysisResult
from ..verdict import clip_cautions
from .atomic import write_bytes_atomic

CSV_COLUMNS = (
    "frame", "pts_s", "frame_state", "track", "x", "y", "w", "h", "face_state", "fake_score",
    "detector_score", "error",
)


def analysis_json_bytes(result: AnalysisResult) -> bytes:
    """Deterministic JSON bytes (sorted keys inside objects, stable float rounding).

    The export adds ``cautions`` (:func:`..verdict.clip_cautions`), so an analyst who receives only the
    JSON reads the same caution as the viewer and the report; it is derived from the frames, and
    :meth:`AnalysisResult.from_json` ignores it when the file is read back.
    """
    doc = result.to_json()
    doc["cautions"] = clip_cautions(result)
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def analysis_csv_bytes(result: AnalysisResult) -> bytes:
    """One row per face, plus one row for every frame without faces (its state says why)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for idx in result.undecodable_frames:  # the gap, frame by frame: no row must look analysed
        w.writerow([idx, "", "undecodable", "", "", "", "", "", "", "", "", "could not be decoded (damaged data)"])
    for fr in result.frames:
        if not fr.faces:
            w.writerow([fr.index, f"{fr.pts_s:.6f}", fr.state, "", "", "", "", "", "", "", "", fr.error or ""])
        for face in fr.faces:
            x, y, bw, bh = face.box
            w.writerow([
                fr.index, f"{fr.pts_s:.6f}", fr.state, face.track,
                f"{x:.1f}", f"{y:.1f}", f"{bw:.1f}", f"{bh:.1f}", face.state,
                "" if face.fake_score is None else f"{face.fake_score:.6f}",
                f"{face.detector_score:.4f}", face.error or "",
            ])
    return buf.getvalue().encode("utf-8")


def write_json(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    return write_bytes_atomic(path, analysis_json_bytes(result))


def write_csv(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    return write_bytes_atomic(path, analysis_csv_bytes(result))


VERDICT_CSV_COLUMNS = (
    "scope", "track", "label", "fake_score", "band", "frames_scored", "frames_seen", "aggregator", "threshold",
    "explanation",
)


def verdict_csv_bytes(result: AnalysisResult) -> bytes:
    """The verdict as CSV: one ``video`` row, then one ``person`` row per track (same numbers as the JSON)."""
    v = result.verdict
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(VERDICT_CSV_COLUMNS)
    score = "" if v.fake_score is None else f"{v.fake_score:.6f}"
    scored = sum(t.frames_scored for t in v.tracks)
    seen = sum(t.frames_seen for t in v.tracks)
    w.writerow(["video", "", v.label, score, v.band, scored, seen, v.aggregator, f"{v.threshold:.6f}", v.explanation])
    for t in v.tracks:
        ts = "" if t.fake_score is None else f"{t.fake_score:.6f}"
        w.writerow(["person", t.track, t.label, ts, t.band, t.frames_scored, t.frames_seen, v.aggregator,
                    f"{v.threshold:.6f}", t.explanation])
    if not result.complete:  # what the verdict does not cover travels with it
        w.writerow(["incomplete", "", "", "", "", "", "", "", "", result.stop_reason])
    for msg in result.warnings:
        w.writerow(["warning", "", "", "", "", "", "", "", "", msg])
    return buf.getvalue().encode("utf-8")


def write_verdict_csv(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    return write_bytes_atomic(path, verdict_csv_bytes(result))
