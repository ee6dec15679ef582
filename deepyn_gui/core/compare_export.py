"""Exports of a comparison: JSON (``deepyn.compare/1``), CSV (one row per face), a PNG chart, a text table.

Pure functions of a :class:`~deepyn_gui.core.compare.ComparisonResult`, shared by the CLI and the
viewer's comparison window; files are written atomically. Split from ``compare.py`` (the run itself).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .verdict import verdict_words

if TYPE_CHECKING:
    from .compare import ComparisonResult


CSV_COLUMNS_FIXED = ("frame", "pts_s", "track")


def comparison_json_bytes(result: ComparisonResult) -> bytes:
    return (json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def comparison_csv_bytes(result: ComparisonResult) -> bytes:
    """One row per (frame, face): each backend's state and score, and |Δ| to the reference."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = list(CSV_COLUMNS_FIXED)
    for lab in result.labels:
        header += [f"{lab}_state", f"{lab}_fake_score"]
    for lab in result.labels[1:]:
        header.append(f"abs_diff_{lab}")
    w.writerow(header)
    ref_frames = result.frames[0] if result.frames else []
    for fi, fr in enumerate(ref_frames):
        per = [frames[fi] for frames in result.frames]
        tracks: list[int | None] = [f.track for f in fr.faces] or [None]
        for k, track in enumerate(tracks):
            row: list[Any] = [fr.index, f"{fr.pts_s:.6f}", "" if track is None else track]
            scores: list[float | None] = []
            for p in per:
                face = p.faces[k] if track is not None and k < len(p.faces) else None
                state = face.state if face is not None else p.state
                sc = face.fake_score if face is not None else None
                scores.append(sc)
                row += [state, "" if sc is None else f"{sc:.6f}"]
            for sc in scores[1:]:
                row.append("" if sc is None or scores[0] is None else f"{abs(sc - scores[0]):.6f}")
            w.writerow(row)
    return buf.getvalue().encode("utf-8")


SERIES_COLORS: tuple[tuple[int, int, int], ...] = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167))
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, s: str, xy: tuple[int, int], scale: float = 0.42, color: tuple[int, int, int] = (30, 30, 30),
          thick: int = 1) -> None:
    cv2.putText(img, s, xy, _FONT, scale, color, thick, cv2.LINE_AA)


def _fmt(v: float | None, unit: str = "", nd: int = 1) -> str:
    """Fixed decimals; a small non-zero value in scientific notation rather than a misleading 0."""
    if v is None:
        return "n/a"
    if 0 < abs(v) < 10**-nd:
        return f"{v:.1e}{unit}"
    return f"{v:.{nd}f}{unit}"


def comparison_chart(result: ComparisonResult, width: int = 1100, height: int = 560) -> np.ndarray:
    """RGB chart: both score curves over time, then bars for throughput, latency p50/p95 and fps."""
    img = np.full((height, width, 3), 255, np.uint8)
    labels = result.labels
    colors = [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(labels))]
    s = result.source
    title = f"{Path(s.path).name}: {result.summary.get('frames', 0)} frames, backends {', '.join(labels)}"
    _text(img, title, (16, 24), 0.55, (20, 20, 20), 1)
    # -- score curves ------------------------------------------------------------------------------
    left, top, pw, ph = 60, 44, width - 80, 220
    duration = max(s.duration_s, max((f.pts_s for fr in result.frames for f in fr), default=0.0), 1e-3)
    cv2.rectangle(img, (left, top), (left + pw - 1, top + ph - 1), (120, 120, 120), 1)
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + round((1 - v) * (ph - 1))
        cv2.line(img, (left, y), (left + pw - 1, y), (225, 225, 225), 1)
        _text(img, f"{v:.2f}", (16, y + 4), 0.38, (80, 80, 80))
    _text(img, "fake score (max over faces) per frame", (left + 4, top + 14), 0.4, (60, 60, 60))
    for i, frames in enumerate(result.frames):
        pts = [(f.pts_s, f.max_score) for f in frames if f.max_score is not None]
        if len(pts) == 1:
            x = left + int(pts[0][0] / duration * (pw - 1))
            cv2.circle(img, (x, top + int((1 - pts[0][1]) * (ph - 1))), 3, colors[i], -1, cv2.LINE_AA)
        elif pts:
            poly = np.array([[left + int(t / duration * (pw - 1)), top + round((1 - v) * (ph - 1))] for t, v in pts],
                            np.int32)
            cv2.polylines(img, [poly.reshape(-1, 1, 2)], False, colors[i], 2 if i == 0 else 1, cv2.LINE_AA)
        errs = [f.pts_s for f in frames if f.state == "error"]
        for t in errs:
            x = left + int(t / duration * (pw - 1))
            cv2.line(img, (x, top + ph - 8 - 6 * i), (x, top + ph - 2 - 6 * i), colors[i], 2)
    lx = left + 8
    for i, lab in enumerate(labels):
        cv2.line(img, (lx, top + ph + 18), (lx + 18, top + ph + 18), colors[i], 3)
        _text(img, lab, (lx + 24, top + ph + 23))
        lx += 40 + cv2.getTextSize(lab, _FONT, 0.42, 1)[0][0]
    _text(img, f"time (s), 0 - {duration:.1f}", (left + pw - 140, top + ph + 23), 0.4, (80, 80, 80))
    # -- bars ---------------------------------------------------------------------------------------
    stats = result.summary.get("backends", [])
    metrics = [
        ("throughput (crops/s)", "crops_per_s", 1),
        ("batch latency p50 (ms)", "latency_p50_ms", 1),
        ("batch latency p95 (ms)", "latency_p95_ms", 1),
        ("end-to-end fps", "fps_e2e", 2),
    ]
    by = top + ph + 50
    bh = height - by - 70
    cw = (width - 40) // len(metrics)
    for m, (name, key, nd) in enumerate(metrics):
        x0 = 20 + m * cw
        _text(img, name, (x0 + 8, by + 14), 0.45, (30, 30, 30))
        values = [st.get(key) for st in stats]
        vmax = max([v for v in values if v is not None] or [1.0]) or 1.0
        n = max(1, len(values) + len(result.unavailable))
        bw = min(70, (cw - 40) // n)
        base = by + bh
        cv2.line(img, (x0 + 8, base), (x0 + cw - 16, base), (120, 120, 120), 1)
        for i, v in enumerate(values):
            bx = x0 + 16 + i * (bw + 12)
            if v is not None:
                hpx = round((bh - 40) * v / vmax)
                cv2.rectangle(img, (bx, base - hpx), (bx + bw, base), colors[i], -1)
                _text(img, _fmt(v, nd=nd), (bx, base - hpx - 6), 0.42)
            else:
                _text(img, "n/a", (bx + 4, base - 6), 0.42, (120, 120, 120))
            _text(img, labels[i][:12], (bx, base + 16), 0.38)
        for j, un in enumerate(result.unavailable):
            bx = x0 + 16 + (len(values) + j) * (bw + 12)
            cv2.rectangle(img, (bx, base - 24), (bx + bw, base), (215, 215, 215), -1)
            _text(img, "unavail.", (bx + 2, base - 8), 0.34, (110, 110, 110))
            _text(img, un["label"][:12], (bx, base + 16), 0.38, (140, 140, 140))
    # -- agreement line -----------------------------------------------------------------------------
    y = height - 30
    agreement = result.summary.get("agreement") or {}
    parts = []
    for lab, ag in agreement.items():
        iou = ag.get("mask_iou")
        parts.append(
            f"{lab} vs {labels[0]}: mean |d score| {_fmt(ag.get('mean_abs_score_diff'), nd=4)}, "
            f"mask IoU@0.5 {_fmt(iou, nd=3)}, decisions agree {_fmt(_pct(ag.get('decision_agreement')), '%', 1)}"
        )
    if len(result.verdicts) >= 2:
        same = all(v.label == result.verdicts[0].label for v in result.verdicts[1:])
        parts.append(f"verdicts {'agree' if same else 'DISAGREE'} ({', '.join(verdict_words(v.label).lower() for v in result.verdicts)})")
    _text(img, "; ".join(parts) or "agreement: needs two backends", (16, y), 0.42, (20, 20, 20))
    _text(img, "like for like: decode + detection + cropping timed once and charged to every backend",
          (16, height - 10), 0.38, (100, 100, 100))
    return img


def _pct(v: float | None) -> float | None:
    return None if v is None else 100.0 * v


def comparison_png(result: ComparisonResult, width: int = 1100, height: int = 560) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(comparison_chart(result, width, height), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(buf.tobytes())


def write_comparison_json(result: ComparisonResult, path: str | os.PathLike[str]) -> Path:
    from .export.atomic import write_bytes_atomic

    return write_bytes_atomic(path, comparison_json_bytes(result))


def write_comparison_csv(result: ComparisonResult, path: str | os.PathLike[str]) -> Path:
    from .export.atomic import write_bytes_atomic

    return write_bytes_atomic(path, comparison_csv_bytes(result))


def write_comparison_png(result: ComparisonResult, path: str | os.PathLike[str]) -> Path:
    from .export.atomic import write_bytes_atomic

    return write_bytes_atomic(path, comparison_png(result))


def format_summary(result: ComparisonResult) -> str:
    """The figures as a small text table for the terminal."""
    lines = []
    sh = result.summary.get("shared", {})
    lines.append(
        f"{result.summary.get('frames', 0)} frames; shared decode {sh.get('decode_s', 0):.2f} s + "
        f"detect/crop {sh.get('detect_crop_s', 0):.2f} s (charged to every backend)"
    )
    lines.append(f"{'backend':<16}{'crops':>7}{'crops/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'e2e fps':>10}  errors")
    for st in result.summary.get("backends", []):
        lines.append(
            f"{st['label']:<16}{st['crops']:>7}{_fmt(st['crops_per_s']):>10}{_fmt(st['latency_p50_ms']):>10}"
            f"{_fmt(st['latency_p95_ms']):>10}{_fmt(st['fps_e2e'], nd=2):>10}  "
            f"{st['error_batches'] or '-'}{(' (' + st['last_error'] + ')') if st['last_error'] else ''}"
        )
    for st in result.summary.get("backends", []):
        if st.get("server_infer_s") is not None:
            lines.append(
                f"{st['label']:<16}of {st['infer_s']:.2f} s in calls: server inference {st['server_infer_s']:.2f} s, "
                f"network + queues {st['network_s']:.2f} s"
            )
    for un in result.unavailable:
        lines.append(f"{un['label']:<16}unavailable: {un['reason']}")
    for lab, ag in (result.summary.get("agreement") or {}).items():
        lines.append(
            f"agreement {lab} vs {result.labels[0]}: {ag['faces_compared']} faces, mean |d score| "
            f"{_fmt(ag['mean_abs_score_diff'], nd=5)}, max {_fmt(ag['max_abs_score_diff'], nd=5)}, "
            f"mask IoU@0.5 {_fmt(ag['mask_iou'], nd=4)}, decisions agree {_fmt(_pct(ag['decision_agreement']), '%')}"
        )
    for lab, v in zip(result.labels, result.verdicts):
        sc = "-" if v.fake_score is None else f"{v.fake_score:.3f}"
        lines.append(f"verdict {lab}: {v.label} ({sc})")
    if len(result.verdicts) >= 2:
        same = all(v.label == result.verdicts[0].label for v in result.verdicts[1:])
        lines.append(f"verdicts {'agree' if same else 'DISAGREE'}")
    return "\n".join(lines)


