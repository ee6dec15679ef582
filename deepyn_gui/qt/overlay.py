"""The mask overlay: the model's manipulation mask drawn over each face, plus face boxes and labels.

Everything here is display-only. Masks are mapped from the 224 px crop back onto frame pixels with
:func:`deepyn_gui.core.faces.mask_to_frame` and drawn as separate RGBA image items *above* the frame;
the frame's own pixels are never touched. Opacity is the item's opacity (a slider drag repaints, it
does not rebuild), while threshold, colormap and fill/contour rebuild the small per-face images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGraphicsRectItem,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QWidget,
)

from ..core.faces import mask_to_frame
from ..core.results import FaceResult, FrameResult
from .style import track_color

#: Colormaps offered for the mask (name shown -> pyqtgraph colormap name, or None for solid red).
COLORMAPS: dict[str, str | None] = {"Red": None, "Inferno": "inferno", "Viridis": "viridis", "Turbo": "turbo"}
MODES = ("fill", "contour")


@dataclass(frozen=True)
class OverlayOptions:
    """How the overlay is drawn (remembered between sessions)."""

    show_mask: bool = True
    show_boxes: bool = True
    opacity: float = 0.5
    threshold: float = 0.5
    colormap: str = "Red"
    mode: str = "fill"


def _lut(name: str) -> np.ndarray:
    """256x3 uint8 colours for mask values 0..255."""
    cmap_name = COLORMAPS.get(name)
    if cmap_name is None:
        lut = np.zeros((256, 3), np.uint8)
        lut[:, 0] = 255
        lut[:, 1] = np.linspace(90, 0, 256).astype(np.uint8)  # stronger mask -> purer red
        return lut
    cmap = pg.colormap.get(cmap_name)
    return np.asarray(cmap.getLookupTable(0.0, 1.0, 256, alpha=False), dtype=np.uint8)[:, :3]


def mask_rgba(roi: np.ndarray, threshold: float, lut: np.ndarray, mode: str, thickness: int = 1) -> np.ndarray:
    """RGBA picture of one face's mask (uint8 0..255 in frame pixels): opaque where >= threshold."""
    roi = np.asarray(roi)
    if roi.dtype != np.uint8:
        roi = np.clip(np.rint(roi.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    cut = int(np.ceil(threshold * 255.0 - 1e-6))
    sel = roi >= max(cut, 1)  # a zero mask value is "not manipulated" at any threshold
    rgba = np.zeros(roi.shape + (4,), np.uint8)
    if mode == "contour":
        contours, _ = cv2.findContours(sel.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if contours:
            peak = int(roi[sel].max()) if sel.any() else 255
            color = tuple(int(c) for c in lut[peak]) + (255,)
            cv2.drawContours(rgba, contours, -1, color, thickness)
    else:
        rgba[..., :3] = lut[roi]
        rgba[..., 3] = np.where(sel, 255, 0)
    return rgba


class MaskOverlay(QObject):
    """Draws the current frame's faces into a ViewBox: one mask image, box and label per face."""

    def __init__(self, view: pg.ViewBox, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.options = OverlayOptions()
        self._lut = _lut(self.options.colormap)
        self._result: FrameResult | None = None
        self._frame_hw: tuple[int, int] | None = None
        self.mask_items: list[pg.ImageItem] = []
        self.box_items: list[QGraphicsRectItem] = []
        self.label_items: list[pg.TextItem] = []

    # -- inputs -------------------------------------------------------------------------------------
    def set_result(self, result: FrameResult | None, frame_hw: tuple[int, int] | None) -> None:
        """Show ``result`` (the shown frame's analysis, or None) on a frame of size ``frame_hw``."""
        if result is self._result and frame_hw == self._frame_hw:
            return
        self._result = result
        self._frame_hw = frame_hw
        self._rebuild()

    def set_options(self, options: OverlayOptions) -> None:
        old = self.options
        self.options = options
        if options.colormap != old.colormap:
            self._lut = _lut(options.colormap)
        if replace(old, opacity=options.opacity) == options:
            for item in self.mask_items:  # opacity only: no rebuild
                item.setOpacity(options.opacity)
            return
        self._rebuild()

    # -- drawing ------------------------------------------------------------------------------------
    def clear(self) -> None:
        for item in (*self.mask_items, *self.box_items, *self.label_items):
            self.view.removeItem(item)
        self.mask_items, self.box_items, self.label_items = [], [], []

    def _rebuild(self) -> None:
        self.clear()
        r, hw = self._result, self._frame_hw
        if r is None or hw is None:
            return
        o = self.options
        thickness = max(1, round(max(hw) / 360))
        for face in r.faces:
            if o.show_mask:
                self._add_mask(face, hw, thickness)
            if o.show_boxes:
                self._add_box(face)

    def _add_mask(self, face: FaceResult, hw: tuple[int, int], thickness: int) -> None:
        mask = face.mask()
        if mask is None or face.crop is None:
            return
        placed = mask_to_frame(mask, face.crop, hw)
        if placed is None:
            return
        x, y, roi = placed
        rgba = mask_rgba(roi, self.options.threshold, self._lut, self.options.mode, thickness)
        item = pg.ImageItem(rgba, axisOrder="row-major", levels=None)
        item.setPos(x, y)
        item.setOpacity(self.options.opacity)
        item.setZValue(10)
        self.view.addItem(item)
        self.mask_items.append(item)

    def _add_box(self, face: FaceResult) -> None:
        x, y, w, h = face.box
        color = QColor(*track_color(face.track))
        pen = QPen(color)
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        if face.state != "ok":
            pen.setStyle(Qt.PenStyle.DashLine)
        if face.state == "error":
            pen.setColor(QColor(220, 40, 40))
        box = QGraphicsRectItem(QRectF(x, y, w, h))
        box.setPen(pen)
        box.setZValue(20)
        self.view.addItem(box)
        self.box_items.append(box)
        if face.state == "ok" and face.fake_score is not None:
            text = f"P{face.track}  {face.fake_score:.2f}"
        elif face.state == "too_small":
            text = f"P{face.track}  too small"
        else:
            text = f"P{face.track}  error"
        fill = pg.mkBrush(color.red(), color.green(), color.blue(), 210) if face.state != "error" else pg.mkBrush(
            200, 40, 40, 210)
        label = pg.TextItem(text, color=(255, 255, 255), fill=fill, anchor=(0, 1))
        label.setPos(x, y)
        label.setZValue(21)
        if face.error:
            label.setToolTip(face.error)
        self.view.addItem(label)
        self.label_items.append(label)

    def labels(self) -> list[str]:
        """Texts of the face labels on screen (for tests and accessibility)."""
        return [item.textItem.toPlainText() for item in self.label_items]


class OverlayControls(QGroupBox):
    """Opacity, mask threshold, colormap, fill/contour and on/off switches for the overlay."""

    optionsChanged = Signal(object)  # OverlayOptions

    def __init__(self, options: OverlayOptions | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Mask overlay", parent)
        o = options or OverlayOptions()
        self.show_mask = QCheckBox("Show mask")
        self.show_mask.setToolTip("Draw the model's manipulation mask over each face (M)")
        self.show_boxes = QCheckBox("Show face boxes")
        self.show_boxes.setToolTip("Draw each face's box with its person number and score (B)")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("How opaque the mask is drawn over the frame (the frame itself is never changed)")
        self.opacity_label = QLabel()
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setToolTip("Pixels whose mask probability is below this are not drawn")
        self.threshold_label = QLabel()
        self.colormap = QComboBox()
        self.colormap.addItems(list(COLORMAPS))
        self.colormap.setToolTip("Colours for the mask: solid red, or a colour scale by mask strength")
        self.mode = QComboBox()
        self.mode.addItem("Filled", "fill")
        self.mode.addItem("Contour", "contour")
        self.mode.setToolTip("Fill the masked area, or draw only its outline so the face stays visible")
        for w in (self.show_mask, self.show_boxes, self.opacity, self.threshold, self.colormap, self.mode):
            w.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.set_options(o)

        form = QFormLayout(self)
        checks = QHBoxLayout()
        checks.addWidget(self.show_mask)
        checks.addWidget(self.show_boxes)
        form.addRow(checks)
        form.addRow("Opacity", self._with_label(self.opacity, self.opacity_label))
        form.addRow("Mask threshold", self._with_label(self.threshold, self.threshold_label))
        form.addRow("Colours", self.colormap)
        form.addRow("Style", self.mode)

        self.show_mask.toggled.connect(self._emit)
        self.show_boxes.toggled.connect(self._emit)
        self.opacity.valueChanged.connect(self._emit)
        self.threshold.valueChanged.connect(self._emit)
        self.colormap.currentIndexChanged.connect(self._emit)
        self.mode.currentIndexChanged.connect(self._emit)

    @staticmethod
    def _with_label(slider: QSlider, label: QLabel) -> QWidget:
        w = QWidget()
        lay = QHBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(slider, 1)
        label.setMinimumWidth(36)
        lay.addWidget(label)
        return w

    def set_options(self, o: OverlayOptions) -> None:
        widgets: list[Any] = [self.show_mask, self.show_boxes, self.opacity, self.threshold, self.colormap, self.mode]
        for w in widgets:
            w.blockSignals(True)
        self.show_mask.setChecked(o.show_mask)
        self.show_boxes.setChecked(o.show_boxes)
        self.opacity.setValue(round(o.opacity * 100))
        self.threshold.setValue(round(o.threshold * 100))
        self.colormap.setCurrentIndex(max(0, self.colormap.findText(o.colormap)))
        self.mode.setCurrentIndex(max(0, self.mode.findData(o.mode)))
        for w in widgets:
            w.blockSignals(False)
        self._update_labels()

    def options(self) -> OverlayOptions:
        return OverlayOptions(
            show_mask=self.show_mask.isChecked(),
            show_boxes=self.show_boxes.isChecked(),
            opacity=self.opacity.value() / 100.0,
            threshold=self.threshold.value() / 100.0,
            colormap=self.colormap.currentText(),
            mode=str(self.mode.currentData()),
        )

    def _update_labels(self) -> None:
        self.opacity_label.setText(f"{self.opacity.value()} %")
        self.threshold_label.setText(f"{self.threshold.value() / 100:.2f}")

    def _emit(self, *_: Any) -> None:
        self._update_labels()
        self.optionsChanged.emit(self.options())
