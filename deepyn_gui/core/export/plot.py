"""The score timeline as a picture for reports: drawn with OpenCV so it needs no plotting library.

Per person (track) a line of fake scores over time, the model's score bands as shaded stripes, the
decision threshold, and ticks for frames with no face or an error. Deterministic: the same result
always gives the same PNG bytes.
"""

from __future__ import annotations

import math
from collections import defaultdict

import cv2
import numpy as np

from ..results import AnalysisResult
from ..verdict import DEFAULT_BANDS
from .annotate import encode_png

_FONT = cv2.FONT_HERSHEY_SIMPLEX
# Distinct, colour-blind friendly line colours (Okabe-Ito), RGB.
TRACK_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (230, 159, 0), (0, 0, 0),
)
_BAND_TINTS: tuple[tuple[int, int, int], ...] = ((232, 245, 233), (245, 245, 225), (253, 236, 220), (250, 222, 222))


def _nice_step(span: float, target_ticks: int = 8) -> float:
    raw = span / max(1, target_ticks)
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def timeline_image(result: AnalysisResult, width: int = 1320, height: int = 400) -> np.ndarray:
    """RGB image of the per-person fake score over time (drawn for display at about half its width)."""
    k = width / 660.0  # sizes below are for a 660 px wide display; scaled so the PNG stays crisp
    fs, t1, t2 = 0.36 * k, max(1, round(k)), max(2, round(2 * k))
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = round(40 * k), round(10 * k), round(24 * k), round(34 * k)
    pw, ph = width - left - right, height - top - bottom
    duration = max(result.source.duration_s, max((f.pts_s for f in result.frames), default=0.0), 1e-3)

    def px(t: float) -> int:
        return left + round(t / duration * (pw - 1))

    def py(s: float) -> int:
        return top + round((1.0 - s) * (ph - 1))

    def text(s: str, org: tuple[int, int], scale: float = fs, color: tuple[int, int, int] = (50, 50, 50)) -> None:
        cv2.putText(img, s, org, _FONT, scale, color, t1, cv2.LINE_AA)

    def text_w(s: str, scale: float = fs) -> int:
        return int(cv2.getTextSize(s, _FONT, scale, t1)[0][0])

    bands = result.model.bands or DEFAULT_BANDS
    for n, b in enumerate(bands):
        tint = _BAND_TINTS[min(n, len(_BAND_TINTS) - 1)] if len(bands) <= 4 else (245, 245, 245)
        cv2.rectangle(img, (left, py(min(b.hi, 1.0))), (left + pw - 1, py(b.lo)), tint, -1)
    # axes and grid
    for s in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = py(s)
        cv2.line(img, (left, y), (left + pw - 1, y), (215, 215, 215), t1)
        label = f"{s:.2f}"
        text(label, (left - text_w(label) - round(4 * k), y + round(4 * k)))
    step = _nice_step(duration)
    t = 0.0
    while t <= duration + 1e-9:
        x = px(t)
        cv2.line(img, (x, top + ph), (x, top + ph + round(4 * k)), (60, 60, 60), t1)
        label = f"{t:.0f}" if step >= 1 else f"{t:.1f}" if step >= 0.1 else f"{t:.2f}"
        text(label, (min(x - text_w(label) // 2, width - text_w(label) - 2), top + ph + round(16 * k)))
        t += step
    cv2.rectangle(img, (left, top), (left + pw - 1, top + ph - 1), (90, 90, 90), t1)
    text("time (s)", (left + pw // 2 - text_w("time (s)") // 2, height - round(5 * k)))
    text("fake score", (round(4 * k), round(14 * k)))
    # threshold (dashed)
    yt = py(result.model.threshold)
    for x0 in range(left, left + pw, round(12 * k)):
        cv2.line(img, (x0, yt), (min(x0 + round(6 * k), left + pw - 1), yt), (200, 30, 30), t1)
    # frames with no face / error: ticks along the bottom
    for fr in result.frames:
        if fr.state == "no_face":
            cv2.line(img, (px(fr.pts_s), top + ph - round(6 * k)), (px(fr.pts_s), top + ph - 2), (150, 150, 150), t1)
        elif fr.state == "error":
            cv2.line(img, (px(fr.pts_s), top + ph - round(10 * k)), (px(fr.pts_s), top + ph - 2), (200, 60, 220), t2)
    # per-track score lines; a gap of more than 3 analysed-frame steps breaks the line
    stride = max(1, int(result.settings.get("stride", 1) or 1))
    fps = result.source.fps if result.source.fps > 0 else 25.0
    gap = 3.0 * stride / fps + 1e-6
    series: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for fr in result.frames:
        for face in fr.faces:
            if face.fake_score is not None:
                series[face.track].append((fr.pts_s, face.fake_score))
    legend: list[tuple[str, tuple[int, int, int], int]] = []
    for n, (track, pts) in enumerate(sorted(series.items())):
        color = TRACK_COLORS[n % len(TRACK_COLORS)]
        pts.sort()
        run: list[tuple[int, int]] = []
        prev_t = None
        for t_s, s in pts:
            if prev_t is not None and t_s - prev_t > gap and run:
                _draw_run(img, run, color, t2)
                run = []
            run.append((px(t_s), py(s)))
            prev_t = t_s
        if run:
            _draw_run(img, run, color, t2)
        legend.append((f"person {track}", color, t2))
    legend.append(("threshold", (200, 30, 30), t1))
    # legend: right-aligned above the plot, clear of the axis title
    x = width - round(6 * k)
    y = round(14 * k)
    for label, color, thick in reversed(legend):
        x -= text_w(label)
        text(label, (x, y), color=(30, 30, 30))
        x -= round(22 * k)
        cv2.line(img, (x, y - round(4 * k)), (x + round(16 * k), y - round(4 * k)), color, thick, cv2.LINE_AA)
        x -= round(12 * k)
    if not series:
        msg = "no scored faces"
        text(msg, (left + pw // 2 - text_w(msg, fs * 1.4) // 2, top + ph // 2), fs * 1.4, (120, 120, 120))
    return img


def _draw_run(img: np.ndarray, run: list[tuple[int, int]], color: tuple[int, int, int], thick: int) -> None:
    if len(run) == 1:
        cv2.circle(img, run[0], thick + 1, color, -1, cv2.LINE_AA)
        return
    cv2.polylines(img, [np.array(run, np.int32).reshape(-1, 1, 2)], False, color, thick, cv2.LINE_AA)


def timeline_png(result: AnalysisResult, width: int = 1320, height: int = 400) -> bytes:
    """PNG bytes of :func:`timeline_image`."""
    return encode_png(timeline_image(result, width, height))
