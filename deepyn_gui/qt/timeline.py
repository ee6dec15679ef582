"""The score timeline: one fake-score curve per person, the threshold, flagged spans and states.

x is the frame index (what exports and the frame counter use; the axis also shows each tick's
presentation time), y the fake score in [0, 1]. Frames
that carry no score are not drawn as a number: "no face", "face too small" and "error" are markers
in their own lanes *below* 0, each with its own colour and symbol. Spans where the most suspicious
face is at or above the threshold are shaded over the full score range.

Results stream in during analysis; they are written into per-track arrays at once and the curves
are redrawn on a short coalescing timer, so a burst of results costs one redraw. Curves use
pyqtgraph's clip-to-view and peak downsampling, so clips of hundreds of thousands of frames stay fluid.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QWidget

from ..core.results import FrameResult
from .style import CURSOR_COLOR, FLAG_FILL, STATE_STYLE, THRESHOLD_COLOR, track_color

#: y of the marker lanes for frames without a score (below the 0..1 score range).
STATE_LANES: dict[str, float] = {"no_face": -0.08, "too_small": -0.15, "error": -0.22}
_Y_RANGE = (-0.27, 1.08)


def _span_bounds(max_score: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last frame of every run at or above the threshold, as two arrays (no Python loop)."""
    above = np.nan_to_num(max_score, nan=-1.0) >= threshold
    edges = np.diff(np.concatenate(([0], above.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def flagged_spans(max_score: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Runs of consecutive analysed frames whose score is >= threshold, as inclusive (first, last)."""
    starts, ends = _span_bounds(max_score, threshold)
    return list(zip(starts.tolist(), ends.tolist()))


def short_timecode(seconds: float) -> str:
    """``m:ss.s`` (``h:mm:ss`` past an hour): a compact time for axis ticks."""
    if seconds >= 3600:
        h, rem = divmod(int(seconds), 3600)
        return f"{h}:{rem // 60:02d}:{rem % 60:02d}"
    m, sec = divmod(seconds, 60.0)
    return f"{int(m)}:{sec:04.1f}"


class FrameTimeAxis(pg.AxisItem):
    """Bottom axis: the frame index (what exports use) with the frame's own presentation time under it.

    Times come from the clip's packet timestamps, so variable-frame-rate clips are labelled truly.
    """

    def __init__(self) -> None:
        super().__init__(orientation="bottom")
        self.times: np.ndarray | None = None
        self.setHeight(44)

    def set_times(self, times: np.ndarray | None) -> None:
        self.times = None if times is None or len(times) == 0 else np.asarray(times, dtype=np.float64)
        self.picture = None  # pyqtgraph's cached drawing of the ticks
        self.update()

    def tickStrings(self, values, scale, spacing):  # type: ignore[no-untyped-def]
        out = []
        for v in values:
            i = round(v)
            if abs(v - i) > 1e-6 or i < 0:
                out.append("")
                continue
            t = self.times
            out.append(f"{i}\n{short_timecode(float(t[i]))}" if t is not None and i < len(t) else str(i))
        return out


class ScoreTimeline(pg.GraphicsLayoutWidget):
    """Per-track score curves with a draggable current-frame line; clicking or dragging seeks.

    The legend sits in its own row under the plot so it never hides a curve.
    """

    seekRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setMinimumHeight(170)
        self.ci.setContentsMargins(4, 4, 8, 2)
        self.time_axis = FrameTimeAxis()
        self.plot_item = p = self.addPlot(row=0, col=0, axisItems={"bottom": self.time_axis})
        p.setMenuEnabled(False)
        p.hideButtons()
        p.showGrid(x=True, y=True, alpha=0.15)
        p.setLabel("bottom", "frame / time (m:ss)")
        p.setLabel("left", "fake score")
        p.getAxis("left").setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")], [(0.25, ""), (0.75, "")]])
        self.vb = p.getViewBox()
        self.vb.setMouseEnabled(x=True, y=False)  # wheel/drag zoom the time axis only
        self.vb.setYRange(*_Y_RANGE, padding=0)
        self.vb.setLimits(yMin=_Y_RANGE[0], yMax=_Y_RANGE[1])
        self.legend = pg.LegendItem(colCount=8, labelTextSize="8pt", horSpacing=18, frame=False,
                                    labelTextColor=(60, 60, 60))
        self.addItem(self.legend, row=1, col=0)
        self.ci.layout.setRowStretchFactor(0, 1)
        self.ci.layout.setRowMaximumHeight(1, 22)
        self.ci.layout.setSpacing(0)
        self.empty_text = pg.TextItem("Open a clip; its scores appear here while it is analysed",
                                      color=(140, 140, 140), anchor=(0.5, 0.5))
        p.addItem(self.empty_text, ignoreBounds=True)

        self.n_frames = 0
        self.threshold = 0.5
        self._scores: dict[int, np.ndarray] = {}  # track -> fake score per frame (NaN: not seen)
        self._analysed = np.zeros(0, bool)
        self._max = np.zeros(0, np.float32)
        self._states: dict[str, set[int]] = {k: set() for k in STATE_LANES}
        self.curves: dict[int, pg.PlotDataItem] = {}

        self.flag_fill = pg.PlotDataItem(pen=None, fillLevel=0.0, brush=pg.mkBrush(*FLAG_FILL))
        self.flag_fill.setZValue(-10)
        p.addItem(self.flag_fill)
        self.flag_fill.setClipToView(True)  # after addItem, which imposes the plot's setting (off)
        # legend-only stand-in: a filled square reads better than the fill curve's own sample
        self._flag_sample = pg.ScatterPlotItem(symbol="s", size=12, pen=pg.mkPen(None),
                                               brush=pg.mkBrush(FLAG_FILL[0], FLAG_FILL[1], FLAG_FILL[2], 90))
        self.legend.addItem(self._flag_sample, "score ≥ threshold")
        self.threshold_line = pg.InfiniteLine(
            pos=self.threshold, angle=0, movable=False,
            pen=pg.mkPen(THRESHOLD_COLOR, width=1.5, style=Qt.PenStyle.DashLine),
            label="threshold {value:.2f}", labelOpts={"position": 0.97, "color": THRESHOLD_COLOR, "anchors": [(1, 1), (1, 1)]},
        )
        p.addItem(self.threshold_line)
        self.state_items: dict[str, pg.ScatterPlotItem] = {}
        for state, (text, color, symbol) in STATE_STYLE.items():
            item = pg.ScatterPlotItem(size=7, symbol=symbol, pen=pg.mkPen(color), brush=pg.mkBrush(*color), name=text)
            item.setZValue(5)
            p.addItem(item)
            self.legend.addItem(item, text)
            self.state_items[state] = item
        self.cursor = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=pg.mkPen(CURSOR_COLOR, width=2),
                                      hoverPen=pg.mkPen((0, 120, 215), width=3))
        self.cursor.setZValue(20)
        p.addItem(self.cursor, ignoreBounds=True)
        self.cursor.sigDragged.connect(self._on_cursor_dragged)
        self.cursor.sigPositionChangeFinished.connect(self._on_cursor_dragged)
        self.scene().sigMouseClicked.connect(self._on_click)

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(50)
        self._redraw_timer.timeout.connect(self.redraw)
        self.set_clip(0)

    # -- inputs -------------------------------------------------------------------------------------
    def set_clip(self, n_frames: int, times: np.ndarray | None = None) -> None:
        """Start over for a clip of ``n_frames`` frames (``times``: each frame's time in s, for the axis)."""
        self.n_frames = max(0, int(n_frames))
        self.time_axis.set_times(times)
        self.clear_results()
        self.cursor.setVisible(self.n_frames > 0)
        self.empty_text.setVisible(self.n_frames == 0)
        if self.n_frames == 0:
            self.vb.setLimits(xMin=None, xMax=None, minXRange=None)
            self.vb.setXRange(0, 100, padding=0)
            self.empty_text.setPos(50, 0.8)
            return
        hi = max(self.n_frames - 1, 1)
        self.vb.setLimits(xMin=-0.5, xMax=hi + 0.5, minXRange=min(10, hi + 1))
        self.vb.setXRange(-0.5, hi + 0.5, padding=0)
        self.cursor.setBounds((0, max(self.n_frames - 1, 0)))
        self.set_cursor(0)

    def clear_results(self) -> None:
        for curve in self.curves.values():
            self.plot_item.removeItem(curve)
            self.legend.removeItem(curve)
        self.curves = {}
        self._scores = {}
        self._analysed = np.zeros(self.n_frames, bool)
        self._max = np.full(self.n_frames, np.nan, np.float32)
        self._states = {k: set() for k in STATE_LANES}
        self.redraw()

    def add_results(self, frames: Iterable[FrameResult]) -> None:
        """Record streamed results; the drawing follows within 50 ms (bursts cost one redraw)."""
        n = self.n_frames
        for fr in frames:
            i = fr.index
            if not 0 <= i < n:
                continue
            self._analysed[i] = True
            if fr.state == "no_face":
                self._states["no_face"].add(i)
            if fr.state == "error" and not fr.faces:
                self._states["error"].add(i)
            for face in fr.faces:
                if face.state == "ok" and face.fake_score is not None:
                    arr = self._scores.get(face.track)
                    if arr is None:
                        arr = self._scores[face.track] = np.full(n, np.nan, np.float32)
                    arr[i] = face.fake_score
                    if not (self._max[i] >= face.fake_score):
                        self._max[i] = face.fake_score
                elif face.state in ("too_small", "error"):
                    self._states[face.state].add(i)
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def set_threshold(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.threshold_line.setValue(self.threshold)
        self.redraw()

    def set_cursor(self, index: int) -> None:
        """Move the current-frame line without emitting a seek (the session drives it)."""
        self.cursor.blockSignals(True)
        self.cursor.setValue(int(index))
        self.cursor.blockSignals(False)

    # -- drawing ------------------------------------------------------------------------------------
    def redraw(self) -> None:
        self._redraw_timer.stop()
        t0 = time.perf_counter()
        idx = np.flatnonzero(self._analysed)
        symbols = len(idx) <= 300  # few points (short clip or long stride): show them as dots too
        for track in sorted(self._scores):
            y = self._scores[track][idx]
            curve = self.curves.get(track)
            if curve is None:
                color = track_color(track)
                curve = pg.PlotDataItem(
                    pen=pg.mkPen(color, width=2), name=f"Person {track}", connect="finite",
                    clipToView=True, autoDownsample=True, downsampleMethod="peak",
                )
                curve.setZValue(10)
                self.plot_item.addItem(curve)
                # PlotItem.addItem imposes the plot's own settings (no downsampling, no clipping) on
                # the curve; set them again, or 100k frames are all drawn (~1 s per repaint).
                curve.setDownsampling(auto=True, method="peak")
                curve.setClipToView(True)
                self.legend.addItem(curve, f"Person {track}")
                self.curves[track] = curve
            color = track_color(track)
            if symbols:
                curve.setData(idx, y, symbol="o", symbolSize=4, symbolPen=None, symbolBrush=pg.mkBrush(*color))
            else:
                curve.setData(idx, y, symbol=None)
        starts, ends = _span_bounds(self._max, self.threshold)
        if len(starts):
            xs = np.stack([starts - 0.5, starts - 0.5, ends + 0.5, ends + 0.5], axis=1).ravel()
            self.flag_fill.setData(xs, np.tile([0.0, 1.0, 1.0, 0.0], len(starts)))
        else:
            self.flag_fill.setData([], [])
        for state, item in self.state_items.items():
            frames = np.fromiter(sorted(self._states[state]), dtype=np.float64)
            item.setData(frames, np.full(len(frames), STATE_LANES[state]))
        # Redrawing is O(frames): on a very long clip, coalesce streamed results over a longer
        # interval so that redraw + repaint take at most about a fifth of the GUI thread's time.
        cost = time.perf_counter() - t0
        self._redraw_timer.setInterval(int(min(1000.0, max(50.0, cost * 5000.0))))

    # -- queries (tests, exports, comparison mode) -------------------------------------------------
    def track_scores(self, track: int) -> np.ndarray:
        """Scores of one person per frame (NaN where not scored)."""
        return self._scores[track].copy()

    def state_frames(self, state: str) -> list[int]:
        return sorted(self._states[state])

    def spans(self) -> list[tuple[int, int]]:
        return flagged_spans(self._max, self.threshold)

    def x_to_pixel(self, frame: float, y: float = 0.5) -> tuple[int, int]:
        """Widget pixel of plot point (frame, y): lets tests click on a given frame."""
        scene_pt = self.vb.mapViewToScene(pg.Point(frame, y))
        view_pt = self.mapFromScene(scene_pt)
        return int(view_pt.x()), int(view_pt.y())

    # -- seeking ------------------------------------------------------------------------------------
    def _on_cursor_dragged(self, *_: object) -> None:
        self.seekRequested.emit(round(self.cursor.value()))

    def _on_click(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.button() != Qt.MouseButton.LeftButton or self.n_frames == 0:
            return
        pos = event.scenePos()
        if not self.vb.sceneBoundingRect().contains(pos):
            return
        x = self.vb.mapSceneToView(pos).x()
        index = round(min(max(x, 0), self.n_frames - 1))
        self.set_cursor(index)
        self.seekRequested.emit(index)
