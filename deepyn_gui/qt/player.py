"""The frame view and its transport bar.

The picture is a pyqtgraph ``ImageItem`` in a ``ViewBox`` that keeps the aspect ratio (``lockAspect``)
and puts row 0 at the top (``invertY``). Evidence pixels are never interpolated: the image is handed
to Qt unscaled (uint8 RGB with no levels, so no lookup table touches it) and the view is drawn
without ``SmoothPixmapTransform``, so zooming in shows each decoded pixel as a crisp square.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .style import format_timecode


class EvidenceImageItem(pg.ImageItem):  # type: ignore[misc]  # pyqtgraph is untyped
    """An ``ImageItem`` for decoded frames that paints them as ``QImage.Format_RGB32``.

    ``image`` stays the RGB array exactly as decoded; what is painted is the same pixels re-packed as
    BGRX (made on the decode thread), which Qt's raster engine draws without a per-paint conversion.
    No levels, no lookup table, no downsampling: the pixels drawn are the pixels in the file.
    """

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self._bgrx: np.ndarray | None = None

    def set_frame(self, rgb: np.ndarray, bgrx: np.ndarray | None = None) -> None:
        if bgrx is not None and bgrx.shape[:2] != rgb.shape[:2]:
            bgrx = None
        self._bgrx = bgrx
        self.setImage(rgb, autoLevels=False, levels=None, autoDownsample=False)

    def clear(self) -> None:
        self._bgrx = None
        super().clear()

    def render(self) -> None:
        b = self._bgrx
        if b is None or self.image is None or b.shape[:2] != self.image.shape[:2]:
            super().render()
            return
        h, w = b.shape[:2]
        self.qimage = QImage(b.data, w, h, int(b.strides[0]), QImage.Format.Format_RGB32)
        self._renderRequired = False
        self._unrenderable = False


class FrameView(pg.GraphicsView):  # type: ignore[misc]  # pyqtgraph is untyped
    """Shows one RGB frame, zoomable and pannable, with the mask overlay drawn on top by others."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=(24, 24, 24))
        self.view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setDefaultPadding(0.0)
        self.setCentralItem(self.view)
        self.image = EvidenceImageItem()
        self.image.setAutoDownsample(False)  # downsampling would show pixels that are not in the file
        self.image.setZValue(0)
        self.view.addItem(self.image)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self._shape: tuple[int, int] | None = None

    def set_frame(self, rgb: np.ndarray, display: np.ndarray | None = None) -> None:
        """Display ``rgb`` (HxWx3 uint8) exactly; refits the view when the frame size changes.

        ``display`` is the same frame as BGRX (see :func:`deepyn_gui.qt.workers.to_display_buffer`).
        """
        self.image.set_frame(rgb, display)
        shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        if shape != self._shape:
            self._shape = shape
            self.fit()

    def clear_frame(self) -> None:
        self.image.clear()
        self._shape = None

    def fit(self) -> None:
        """Show the whole frame."""
        if self._shape is not None:
            h, w = self._shape
            self.view.setRange(xRange=(0, w), yRange=(0, h), padding=0.0)

    def displayed_rgb(self) -> np.ndarray | None:
        """The pixels the image item holds (for tests: they must equal the decoded frame)."""
        return None if self.image.image is None else np.asarray(self.image.image)


class PlayerWidget(QWidget):
    """Frame view (or a hint when no clip is open) above a transport bar with the frame counter."""

    playToggled = Signal()
    stepRequested = Signal(int)
    homeRequested = Signal()
    endRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame_view = FrameView()
        self.hint = QLabel(
            "<div style='font-size:15pt; color:#bbb'>Open a video to start</div>"
            "<div style='font-size:11pt; color:#888; margin-top:8px'>File ▸ Open… (Ctrl+O), or drop a file here</div>"
        )
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("background:#181818;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.frame_view)

        style = self.style()
        icon = style.standardIcon
        SP = QStyle.StandardPixmap
        self.btn_home = self._button(icon(SP.SP_MediaSkipBackward), "First frame (Home)", self.homeRequested.emit)
        self.btn_back10 = self._button(icon(SP.SP_MediaSeekBackward), "Back 10 frames (Shift+Left)",
                                       lambda: self.stepRequested.emit(-10))
        self.btn_back1 = self._button(None, "Previous frame (Left)", lambda: self.stepRequested.emit(-1), "◀|")
        self.btn_play = self._button(icon(SP.SP_MediaPlay), "Play / pause (Space)", self.playToggled.emit)
        self.btn_fwd1 = self._button(None, "Next frame (Right)", lambda: self.stepRequested.emit(1), "|▶")
        self.btn_fwd10 = self._button(icon(SP.SP_MediaSeekForward), "Forward 10 frames (Shift+Right)",
                                      lambda: self.stepRequested.emit(10))
        self.btn_end = self._button(icon(SP.SP_MediaSkipForward), "Last frame (End)", self.endRequested.emit)
        self.btn_fit = self._button(None, "Show the whole frame (zoom with the mouse wheel)", self.frame_view.fit, "Fit")
        self._icon_play = icon(SP.SP_MediaPlay)
        self._icon_pause = icon(SP.SP_MediaPause)

        self.counter = QLabel("—")
        self.counter.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.counter.setStyleSheet("font-family: monospace; font-size: 10.5pt;")
        self.counter.setToolTip("Frame index (0-based, as in every export) / last index   ·   time from the frame's PTS")
        self.frame_state = QLabel("")
        self.frame_state.setStyleSheet("font-size: 10pt;")
        self.frame_state.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # may be cut, never widens

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        for b in (self.btn_home, self.btn_back10, self.btn_back1, self.btn_play, self.btn_fwd1, self.btn_fwd10,
                  self.btn_end):
            bar.addWidget(b)
        bar.addSpacing(12)
        bar.addWidget(self.counter)
        bar.addSpacing(16)
        bar.addWidget(self.frame_state, 1)
        bar.addSpacing(8)
        bar.addWidget(self.btn_fit)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.stack, 1)
        lay.addLayout(bar)
        self.set_enabled_controls(False)

    def _button(self, icon, tip: str, slot, text: str = "") -> QToolButton:  # type: ignore[no-untyped-def]
        b = QToolButton()
        if icon is not None:
            b.setIcon(icon)
        if text:
            b.setText(text)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window shortcuts
        b.clicked.connect(slot)
        return b

    def set_enabled_controls(self, on: bool) -> None:
        for b in (self.btn_home, self.btn_back10, self.btn_back1, self.btn_play, self.btn_fwd1, self.btn_fwd10,
                  self.btn_end, self.btn_fit):
            b.setEnabled(on)

    def show_clip(self, has_clip: bool) -> None:
        self.stack.setCurrentWidget(self.frame_view if has_clip else self.hint)
        self.set_enabled_controls(has_clip)
        if not has_clip:
            self.frame_view.clear_frame()
            self.counter.setText("—")
            self.frame_state.setText("")

    def set_playing(self, playing: bool) -> None:
        self.btn_play.setIcon(self._icon_pause if playing else self._icon_play)

    def set_counter(self, index: int, total: int, pts_s: float | None) -> None:
        """Frame index (0-based, as in every export) and the timecode from the frame's PTS."""
        tc = format_timecode(pts_s) if pts_s is not None else "--:--:--.---"
        width = len(str(max(total - 1, 0)))
        self.counter.setText(f"Frame {index:>{width}} / {max(total - 1, 0)}   ·   {tc}")

    def set_frame_state(self, text: str, color: str = "#444") -> None:
        if self.frame_state.text() != text:
            self.frame_state.setText(text)
        style = f"font-size: 10pt; color: {color};"
        if self.frame_state.styleSheet() != style:  # re-styling on every frame costs during playback
            self.frame_state.setStyleSheet(style)
