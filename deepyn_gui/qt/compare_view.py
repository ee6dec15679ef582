"""The backend comparison view: one clip, two backends, the same crops, side by side, timed like for like.

A :class:`~.compare_worker.CompareWorker` (an adapter over the viewer's one job class) builds both
backends (a model can take seconds to load) and runs :class:`deepyn_gui.core.compare.Comparison`, which feeds each batch of decoded, detected and cropped
faces to both backends one after the other. The window shows, for each backend, the latest frame
with that backend's mask overlay and score; both score curves; live charts of throughput (crops/s),
batch latency p50/p95 and end-to-end fps (shared decode + detection time charged equally to both);
and the agreement figures. A backend that cannot run here is greyed out with the reason and never
given a number. Results export as JSON, CSV and a PNG chart (the same pure functions as the CLI).

Size (~610 lines): the two side panes and the live charts of one window that only make sense
together; the worker is :mod:`.compare_worker`, the comparison itself (and its exports) core's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.compare import (
    SERIES_COLORS,
    CompareBatch,
    ComparisonResult,
    unique_labels,
    write_comparison_csv,
    write_comparison_json,
    write_comparison_png,
)
from ..core.errors import DeepYNError
from ..core.pipeline import AnalysisSettings
from ..core.results import FrameResult
from ..core.verdict import verdict_words
from .compare_worker import BackendChoice, BackendFactory, CompareWorker, backend_catalogue
from .overlay import MaskOverlay
from .player import FrameView

log = logging.getLogger(__name__)

SIDES = ("A", "B")


# --------------------------------------------------------------------------------------------------
# Widgets
# --------------------------------------------------------------------------------------------------


class BackendSelector(QGroupBox):
    """Backend, model file and threads for one side; unavailable backends are greyed with the reason."""

    def __init__(self, side: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Backend {side}", parent)
        self.combo = QComboBox()
        self.combo.setToolTip("Greyed-out backends cannot run on this machine: hover for the reason")
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("bundled model")
        self.model_edit.setToolTip("Model file (.onnx, or .xmodel for vart); empty: the bundled model")
        self.model_button = QToolButton()
        self.model_button.setText("…")
        self.model_button.setToolTip("Choose a model file")
        self.model_button.clicked.connect(self._choose_model)
        self.threads = QSpinBox()
        self.threads.setRange(1, 32)
        self.threads.setValue(2)
        self.threads.setPrefix("threads ")
        self.threads.setToolTip("Inference threads (ONNX) or DPU runners (vart)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 4)
        lay.addWidget(self.combo, 2)
        lay.addWidget(self.model_edit, 3)
        lay.addWidget(self.model_button)
        lay.addWidget(self.threads)
        self.combo.currentTextChanged.connect(self._backend_changed)
        self.reasons: dict[str, str] = {}
        self._label: tuple[str, str] = ("", "")
        self.refresh()

    def refresh(self) -> None:
        current = self.combo.currentText()
        self.combo.clear()
        model = self.combo.model()
        assert isinstance(model, QStandardItemModel)
        for name, desc, selectable, reason in backend_catalogue():
            self.combo.addItem(name)
            item = model.item(self.combo.count() - 1)
            self.reasons[name] = reason
            item.setToolTip(f"{desc}\nunavailable: {reason}" if reason else desc)
            if not selectable:
                item.setEnabled(False)  # greyed out: cannot run here
                item.setForeground(QColor(150, 150, 150))
        if current:
            self.set_backend(current)

    def _backend_changed(self, name: str) -> None:
        remote = name == "remote"
        self.model_edit.setPlaceholderText("url=http://host:8080,url=...,model=uynet" if remote else "bundled model")
        self.model_edit.setToolTip(
            "Remote endpoints: url=http://host:8080 (repeatable), model=NAME, timeout=S, token_env=VAR"
            if remote else "Model file (.onnx, or .xmodel for vart); empty: the bundled model"
        )
        self.model_button.setEnabled(not remote)

    def set_backend(self, name: str) -> None:
        i = self.combo.findText(name)
        if i >= 0:
            self.combo.setCurrentIndex(i)

    def set_choice(self, choice: BackendChoice) -> None:
        self.set_backend(choice.name)
        self.model_edit.setText(choice.model_path or "")
        self.threads.setValue(choice.threads)
        self._label = (choice.name, choice.label)

    def choice(self) -> BackendChoice:
        name = self.combo.currentText()
        label = self._label[1] if self._label[0] == name else ""  # a label set in code, while its backend stays
        return BackendChoice(name, self.model_edit.text().strip() or None, self.threads.value(), label)

    def _choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.onnx *.xmodel);;All files (*)")
        if path:
            self.model_edit.setText(path)


class BackendPane(QFrame):
    """One side of the split view: the backend's name, the latest frame with its overlay, its figures."""

    def __init__(self, side: str, color: tuple[int, int, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.color = color
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(f"Backend {side}")
        self.title.setStyleSheet(f"font-weight: bold; color: rgb{color};")
        self.caption = QLabel("")
        self.caption.setStyleSheet("color: #444;")
        self.model_note = QLabel("")
        self.model_note.setStyleSheet("color: #555; font-size: 11px;")
        self.frame_view = FrameView()
        self.frame_view.setMinimumHeight(200)
        self.overlay = MaskOverlay(self.frame_view.view, self)
        self.reason = QLabel("")
        self.reason.setWordWrap(True)
        self.reason.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reason.setStyleSheet("color: #777; font-size: 13px; padding: 20px; background: #ececec;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.frame_view)
        self.stack.addWidget(self.reason)
        self.figures = QLabel("—")
        self.figures.setStyleSheet("font-family: monospace;")
        self.figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.caption)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addLayout(head)
        lay.addWidget(self.model_note)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.figures)
        self.label: str | None = None
        self.unavailable_reason = ""

    def reset(self, title: str) -> None:
        self.label = None
        self.unavailable_reason = ""
        self.title.setText(title)
        self.title.setEnabled(True)
        self.caption.setText("")
        self.model_note.setText("")
        self.figures.setText("—")
        self.figures.setEnabled(True)
        self.stack.setCurrentWidget(self.frame_view)
        self.overlay.set_result(None, None)
        self.frame_view.clear_frame()

    def set_available(self, label: str, note: str = "") -> None:
        self.label = label
        self.title.setText(f"{self.side}: {label}")
        self.model_note.setText(f"model: {note}" if note else "")
        if "UNTRAINED" in note:
            self.model_note.setStyleSheet("color: #b03a2e; font-size: 11px; font-weight: bold;")

    def set_unavailable(self, name: str, reason: str) -> None:
        """Greyed out with the reason; no frame, no numbers."""
        self.label = None
        self.unavailable_reason = reason
        self.title.setText(f"{self.side}: {name} — unavailable")
        self.title.setEnabled(False)
        self.reason.setText(f"{name} cannot run here:\n{reason}")
        self.stack.setCurrentWidget(self.reason)
        self.figures.setText("no figures: backend unavailable")
        self.figures.setEnabled(False)

    def show_frame(self, rgb: np.ndarray, result: FrameResult | None) -> None:
        self.frame_view.set_frame(rgb)
        self.overlay.set_result(result, (int(rgb.shape[0]), int(rgb.shape[1])))
        if result is None:
            self.caption.setText("")
            return
        if result.state == "no_face":
            text = "no face"
        elif result.state == "error":
            text = f"error: {result.error}"
        else:
            parts = [f"P{f.track} {f.fake_score:.3f}" if f.fake_score is not None else f"P{f.track} {f.state}"
                     for f in result.faces]
            text = ", ".join(parts)
        self.caption.setText(f"frame {result.index}: {text}")

    def set_figures(self, st: dict[str, Any]) -> None:
        def f(v: float | None, nd: int = 1) -> str:
            return "n/a" if v is None else f"{v:.{nd}f}"

        err = f"   errors: {st['error_batches']}" if st.get("error_batches") else ""
        split = ""
        if st.get("server_infer_s") is not None:  # a remote backend: the wire apart from the model
            split = f"   server inference {f(st['server_infer_s'], 2)} s + network {f(st['network_s'], 2)} s"
        self.figures.setText(
            f"{st['crops']} crops   {f(st['crops_per_s'])} crops/s   latency p50 {f(st['latency_p50_ms'])} ms  "
            f"p95 {f(st['latency_p95_ms'])} ms   end-to-end {f(st['fps_e2e'], 2)} fps{split}{err}"
        )


class CompareCharts(pg.GraphicsLayoutWidget):  # type: ignore[misc]  # pyqtgraph is untyped
    """Both score curves over the clip, and live throughput, latency p50/p95 and end-to-end fps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setMinimumHeight(260)
        self.scores = self._plot(0, 0, "fake score (max over faces) per frame", "frame", colspan=3)
        self.scores.setYRange(0.0, 1.0, padding=0.02)
        self.throughput = self._plot(1, 0, "throughput (crops/s)", "seconds")
        self.latency = self._plot(1, 1, "batch latency (ms): p50 —, p95 - -", "seconds")
        self.fps = self._plot(1, 2, "end-to-end fps (shared time charged to both)", "seconds")
        self.legend = self.scores.addLegend(offset=(-10, 8), labelTextSize="9pt")
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {}
        self.data: dict[str, dict[str, list[float]]] = {}

    def _plot(self, row: int, col: int, title: str, xlabel: str, colspan: int = 1) -> pg.PlotItem:
        p = self.addPlot(row=row, col=col, colspan=colspan)
        p.setTitle(title, size="9pt")
        p.setMenuEnabled(False)
        p.hideButtons()
        p.showGrid(x=True, y=True, alpha=0.2)
        p.setLabel("bottom", xlabel)
        return p

    def reset(self) -> None:
        for plot in (self.scores, self.throughput, self.latency, self.fps):
            plot.clear()
        self.legend.clear()
        self.curves.clear()
        self.data.clear()

    def add_series(self, label: str, color: tuple[int, int, int], dashed: bool = False) -> None:
        """One backend's curves; ``dashed`` draws its score curve dashed so identical curves stay visible."""
        pen = pg.mkPen(color, width=2)
        dash = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine)
        sym = {"symbol": "o", "symbolSize": 5, "symbolBrush": color, "symbolPen": None}
        self.curves[label] = {
            "score": self.scores.plot(pen=dash if dashed else pen, name=label, connect="finite"),
            "crops_per_s": self.throughput.plot(pen=pen, **sym),
            "p50": self.latency.plot(pen=pen, **sym),
            "p95": self.latency.plot(pen=dash),
            "fps": self.fps.plot(pen=pen, **sym),
        }
        self.data[label] = {k: [] for k in ("frame", "score", "t", "crops_per_s", "p50", "p95", "fps")}

    def add_batch(self, label: str, frames: tuple[FrameResult, ...], t: float, st: dict[str, Any]) -> None:
        d = self.data[label]
        for fr in frames:
            d["frame"].append(float(fr.index))
            d["score"].append(np.nan if fr.max_score is None else float(fr.max_score))
        if st.get("crops_per_s") is not None:
            d["t"].append(t)
            d["crops_per_s"].append(float(st["crops_per_s"]))
            d["p50"].append(float(st["latency_p50_ms"]))
            d["p95"].append(float(st["latency_p95_ms"]))
            d["fps"].append(float(st["fps_e2e"]))
        c = self.curves[label]
        c["score"].setData(np.asarray(d["frame"]), np.asarray(d["score"]))
        for key in ("crops_per_s", "p50", "p95", "fps"):
            c[key].setData(np.asarray(d["t"]), np.asarray(d[key]))

    def points(self, label: str, key: str) -> int:
        """How many points a series holds (for tests)."""
        return len(self.data.get(label, {}).get(key, []))


class CompareWindow(QWidget):
    """Compare two backends on one clip. ``CompareWindow(parent=None, clip_path=None)``."""

    finished = Signal(object)  # ComparisonResult | None

    def __init__(self, parent: QWidget | None = None, clip_path: str | None = None,
                 factory: BackendFactory | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window, True)  # its own window, even with a parent
        self.setWindowTitle("DeepYN — compare backends")
        self.resize(1500, 950)
        self._factory = factory
        self.worker: CompareWorker | None = None
        self.result: ComparisonResult | None = None
        self.clip_path: str | None = None
        self._side_labels: list[str | None] = []
        self._t0 = 0.0
        self._batches = 0

        # --- controls ---------------------------------------------------------------------------------
        self.clip_label = QLabel("no clip")
        self.clip_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.open_button = QPushButton("Open clip…")
        self.open_button.setToolTip("Choose the clip both backends will analyse (opened read-only)")
        self.open_button.clicked.connect(self._choose_clip)
        self.selectors = [BackendSelector(s) for s in SIDES]
        self.batch = QSpinBox()
        self.batch.setRange(1, 64)
        self.batch.setValue(8)
        self.batch.setPrefix("batch ")
        self.batch.setToolTip("Crops per batch: the same for both backends")
        self.stride = QSpinBox()
        self.stride.setRange(1, 100)
        self.stride.setPrefix("every ")
        self.stride.setSuffix(" frame(s)")
        self.stride.setToolTip("Analyse every Nth frame")
        self.max_frames = QSpinBox()
        self.max_frames.setRange(0, 1_000_000)
        self.max_frames.setSpecialValueText("all frames")
        self.max_frames.setSuffix(" frames")
        self.max_frames.setToolTip("Stop after this many analysed frames (0: the whole clip)")
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Run both backends on the same decoded frames and face crops")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the comparison; what was measured so far is kept")
        self.stop_button.clicked.connect(self.stop)
        self.export_buttons = {}
        for kind in ("JSON", "CSV", "PNG"):
            b = QPushButton(f"Export {kind}…")
            b.setToolTip({"JSON": "Save the full comparison (both results, timings, agreement) as JSON",
                          "CSV": "Save one row per face with both backends' scores as CSV",
                          "PNG": "Save a chart: both score curves and the speed figures"}[kind])
            b.clicked.connect(lambda *_, k=kind: self._export_dialog(k))
            self.export_buttons[kind] = b
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.clip_label, 1)
        for b in self.export_buttons.values():
            top.addWidget(b)
        sel = QHBoxLayout()
        sel.addWidget(self.selectors[0], 1)
        sel.addWidget(self.selectors[1], 1)
        sel.addWidget(self.batch)
        sel.addWidget(self.stride)
        sel.addWidget(self.max_frames)
        sel.addWidget(self.start_button)
        sel.addWidget(self.stop_button)

        # --- split view + charts -------------------------------------------------------------------------
        self.panes = [BackendPane(s, SERIES_COLORS[i]) for i, s in enumerate(SIDES)]
        self.split = QSplitter(Qt.Orientation.Horizontal)
        for p in self.panes:
            self.split.addWidget(p)
        self.charts = CompareCharts()
        self.agreement = QLabel("Agreement: run a comparison")
        self.agreement.setWordWrap(True)
        self.agreement.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        self.status.setStyleSheet("color: #555;")
        lower = QWidget()
        lower_lay = QVBoxLayout(lower)
        lower_lay.setContentsMargins(0, 0, 0, 0)
        lower_lay.addWidget(self.charts, 1)
        lower_lay.addWidget(self.agreement)
        self.vsplit = QSplitter(Qt.Orientation.Vertical)
        self.vsplit.addWidget(self.split)
        self.vsplit.addWidget(lower)
        self.vsplit.setStretchFactor(0, 3)
        self.vsplit.setStretchFactor(1, 2)
        self.vsplit.setSizes([520, 380])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addLayout(top)
        lay.addLayout(sel)
        lay.addWidget(self.vsplit, 1)
        lay.addWidget(self.status)

        self._default_choices()
        if clip_path:
            self.set_clip(clip_path)
        self._update_buttons()
        if parent is not None:
            parent.installEventFilter(self)  # the main window closing stops and joins this run too

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.parent() and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    # ------------------------------------------------------------------ configuration
    def _default_choices(self) -> None:
        """CPU on the left; on the right the card if it is here, else the int8 model, else the CPU again."""
        usable = {n: ok and not reason for n, _d, ok, reason in backend_catalogue()}
        self.selectors[0].set_choice(BackendChoice("onnx", threads=2))
        for name in ("vart", "onnx-int8"):
            if usable.get(name):
                self.selectors[1].set_choice(BackendChoice(name, threads=2))
                return
        self.selectors[1].set_choice(BackendChoice("onnx", threads=1))

    def set_clip(self, path: str | None) -> None:
        self.clip_path = str(path) if path else None
        self.clip_label.setText(Path(path).name if path else "no clip")
        self.clip_label.setToolTip(str(path) if path else "")
        self._update_buttons()

    def set_choices(self, a: BackendChoice, b: BackendChoice) -> None:
        self.selectors[0].set_choice(a)
        self.selectors[1].set_choice(b)

    def choices(self) -> list[BackendChoice]:
        return [s.choice() for s in self.selectors]

    def _choose_clip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a clip", "", "Videos (*.mp4 *.mov *.avi *.mkv *.webm);;All files (*)")
        if path:
            self.set_clip(path)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_alive()

    def start(self) -> bool:
        if self.running or not self.clip_path:
            return False
        choices = self.choices()
        labels = unique_labels([c.display_label() for c in choices])  # as set_up_backends will name them
        self.result = None
        self._batches = 0
        self._side_labels = []
        self.charts.reset()
        for pane, lab in zip(self.panes, labels):
            pane.reset(f"{pane.side}: {lab} (starting…)")
        self.agreement.setText("Agreement: waiting for the first batch…")
        settings = AnalysisSettings(batch_size=self.batch.value(), stride=self.stride.value(),
                                    max_frames=self.max_frames.value() or None)
        w = CompareWorker(self.clip_path, choices, settings, self._factory, parent=self)
        w.ready.connect(self._on_ready)
        w.batchReady.connect(self._on_batch)
        w.failed.connect(self._on_failed)
        w.finished.connect(self._on_finished)
        self.worker = w
        self._t0 = time.perf_counter()
        self.status.setText("loading the backends…")
        w.start()
        self._update_buttons(running=True)
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status.setText("stopping…")

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel and join the worker (called on close); True when no thread is left."""
        if self.worker is None:
            return True
        self.worker.cancel()
        return self.worker.join(timeout)

    def _on_ready(self, side_labels: list[str | None], reasons: list[str], notes: list[str]) -> None:
        if self.sender() is not self.worker:
            return
        self._side_labels = list(side_labels)
        choices = self.choices()
        for i, (pane, lab, reason, note) in enumerate(zip(self.panes, side_labels, reasons, notes)):
            if lab is None:
                pane.set_unavailable(choices[i].name, reason)
            else:
                pane.set_available(lab, note)
                self.charts.add_series(lab, pane.color, dashed=i > 0)
        self.status.setText("running: decode + detection once, then both backends on the same crops…")

    def _on_batch(self, batch: CompareBatch) -> None:
        if self.sender() is not self.worker:
            return
        self._batches += 1
        t = time.perf_counter() - self._t0
        stats = {s["label"]: s for s in batch.summary["backends"]}
        for label, outcome in zip(batch.labels, batch.outcomes):
            pane = next((p for p in self.panes if p.label == label), None)
            if pane is None:
                continue
            shown = next((f for f in outcome.frames if f.index == batch.preview_index), None)
            if batch.preview_rgb is not None:
                pane.show_frame(batch.preview_rgb, shown)
            pane.set_figures(stats[label])
            self.charts.add_batch(label, outcome.frames, t, stats[label])
        self._show_agreement(batch.summary, None)
        self.status.setText(f"frame {batch.done} of {batch.total} · batch {self._batches} · {batch.elapsed_s:.1f} s")

    def _show_agreement(self, summary: dict[str, Any], result: ComparisonResult | None) -> None:
        parts = []
        for lab, ag in (summary.get("agreement") or {}).items():
            def f(v: float | None, nd: int) -> str:
                if v is None:
                    return "n/a"
                return f"{v:.1e}" if 0 < abs(v) < 10 ** -nd else f"{v:.{nd}f}"

            dec = ag.get("decision_agreement")
            parts.append(
                f"<b>{lab} vs {summary.get('reference')}</b>: {ag['faces_compared']} faces, "
                f"mean |Δ fake score| {f(ag['mean_abs_score_diff'], 4)} (max {f(ag['max_abs_score_diff'], 4)}), "
                f"mask IoU@0.5 {f(ag['mask_iou'], 3)}, decisions agree "
                f"{'n/a' if dec is None else f'{100 * dec:.1f}%'}"
            )
        if result is not None and len(result.verdicts) >= 2:
            same = all(v.label == result.verdicts[0].label for v in result.verdicts[1:])
            verdicts = ", ".join(f"{lab}: {verdict_words(v.label).lower()}"
                                 + ("" if v.fake_score is None else f" ({v.fake_score:.3f})")
                                 for lab, v in zip(result.labels, result.verdicts))
            parts.append(f"verdicts {'agree' if same else '<b>DISAGREE</b>'} — {verdicts}")
        if not parts:
            parts.append("Agreement: needs two available backends")
        self.agreement.setText("<br>".join(parts))

    def _on_failed(self, message: str) -> None:
        if self.sender() is not self.worker:
            return
        self.status.setText(message)

    def _on_finished(self, result: ComparisonResult | None) -> None:
        if self.sender() is not self.worker:
            return
        self.result = result
        if result is not None:
            self._show_agreement(result.summary, result)
            state = "complete" if result.complete else f"stopped: {result.stop_reason}"
            self.status.setText(f"{state} — {result.summary.get('frames', 0)} frames")
        self._update_buttons(running=False)
        self.finished.emit(result)

    def _update_buttons(self, running: bool | None = None) -> None:
        running = self.running if running is None else running
        self.start_button.setEnabled(not running and bool(self.clip_path))
        self.stop_button.setEnabled(running)
        for s in self.selectors:
            s.setEnabled(not running)
        for w in (self.batch, self.stride, self.max_frames):
            w.setEnabled(not running)
        self.open_button.setEnabled(not running)
        for b in self.export_buttons.values():
            b.setEnabled(not running and self.result is not None)

    # ------------------------------------------------------------------ export
    def export(self, kind: str, path: str | Path) -> Path:
        """Write the last result as JSON, CSV or PNG (the same files as ``deepyn compare``)."""
        if self.result is None:
            raise DeepYNError("nothing to export: run a comparison first")
        writer = {"JSON": write_comparison_json, "CSV": write_comparison_csv, "PNG": write_comparison_png}[kind.upper()]
        return writer(self.result, path)

    def _export_dialog(self, kind: str) -> None:
        ext = kind.lower()
        path, _ = QFileDialog.getSaveFileName(self, f"Export comparison as {kind}", f"comparison.{ext}",
                                              f"{kind} (*.{ext})")
        if not path:
            return
        try:
            out = self.export(kind, path)
        except DeepYNError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return
        self.status.setText(f"wrote {out}")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)


__all__ = ["BackendChoice", "BackendPane", "BackendSelector", "CompareCharts", "CompareWindow", "CompareWorker",
           "backend_catalogue"]

