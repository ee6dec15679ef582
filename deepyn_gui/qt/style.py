"""Colours and text formats shared by the widgets, so a person has the same colour everywhere.

The track palette is the Okabe-Ito colour-blind-safe set (minus black), so curves, boxes and labels
stay distinguishable for viewers with common colour-vision deficiencies.
"""

from __future__ import annotations

import math

from ..core.verdict import VERDICT_WORDS

#: Okabe & Ito (2008) palette, without black: one colour per person (track), cycled.
TRACK_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178),  # blue
    (230, 159, 0),  # orange
    (0, 158, 115),  # bluish green
    (204, 121, 167),  # reddish purple
    (86, 180, 233),  # sky blue
    (213, 94, 0),  # vermillion
    (240, 228, 66),  # yellow
)

#: Frame/face states that carry no score: drawn as markers of their own, never as a number.
STATE_STYLE: dict[str, tuple[str, tuple[int, int, int], str]] = {
    # state: (legend text, colour, pyqtgraph symbol)
    "no_face": ("no face", (140, 140, 140), "s"),
    "too_small": ("face too small", (200, 150, 40), "t"),
    "error": ("error", (220, 40, 40), "x"),
}

#: Verdict label -> (headline, background colour) for the verdict panel; the words come from the one
#: vocabulary in core.verdict, shared with the CLI and the report.
_VERDICT_COLORS: dict[str, str] = {
    "fake": "#c0392b",
    "uncertain": "#b9770e",
    "real": "#1e8449",
    "no_face": "#5d6d7e",
    "too_small": "#5d6d7e",
    "error": "#922b21",
}
VERDICT_STYLE: dict[str, tuple[str, str]] = {k: (VERDICT_WORDS[k], c) for k, c in _VERDICT_COLORS.items()}

FLAG_FILL = (220, 50, 50, 45)  # shading of spans above the threshold
THRESHOLD_COLOR = (200, 40, 40)
CURSOR_COLOR = (30, 30, 30)


def track_color(track: int) -> tuple[int, int, int]:
    """The colour of person ``track`` (stable for the whole session)."""
    return TRACK_COLORS[(int(track) - 1) % len(TRACK_COLORS)] if track >= 1 else TRACK_COLORS[0]


def format_timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm`` from a presentation time in seconds (what analysts quote in reports)."""
    if seconds < 0:
        return "-" + format_timecode(-seconds)
    ms_total = round(seconds * 1000.0)
    h, rem = divmod(ms_total, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def format_duration(seconds: float | None) -> str:
    """Short human duration for ETAs: ``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
