"""Preferences dialog: backend, model, detector, stride, threads, overlay defaults, theme.

Everything is stored in the viewer's one QSettings store through :class:`~deepyn_gui.qt.settings.Preferences`
(backend, model path and overlay use its existing keys; the analysis and theme keys below sit beside
them under ``analysis/`` and ``view/``). Choices are applied through the window's public methods and
the session's settings, so the next analysis uses them; a running analysis keeps the settings it
started with (they are written into its results).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import APP_NAME
from . import theme
from .host import PreferencesHost
from .overlay import OverlayControls, OverlayOptions
from .session import Session

DETECTORS: tuple[tuple[str, str], ...] = (
    ("auto", "Automatic (res10 SSD, Haar cascade if it is missing)"),
    ("res10", "OpenCV res10 SSD (bundled)"),
    ("haar", "OpenCV Haar cascade (bundled, weaker)"),
    ("yunet", "YuNet (needs its .onnx file)"),
)
THEMES: tuple[tuple[str, str], ...] = (
    (theme.SYSTEM, "Follow the system"),
    (theme.LIGHT, "Light"),
    (theme.DARK, "Dark"),
)
MAX_STRIDE = 250


def _cpu_count() -> int:
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class AnalysisPrefs:
    """The analysis and look choices the Preferences dialog adds to the settings store."""

    detector: str = "auto"
    detector_model: str | None = None
    stride: int = 1
    threads: int = 2
    theme: str = theme.SYSTEM


def _int(v: Any, default: int, lo: int, hi: int) -> int:
    try:
        i = int(v)
    except (TypeError, ValueError):
        return default
    return min(max(i, lo), hi)


def load_analysis_prefs(qs: QSettings) -> AnalysisPrefs:
    d = AnalysisPrefs()
    det = str(qs.value("analysis/detector", d.detector) or d.detector)
    model = str(qs.value("analysis/detector_model", "") or "") or None
    th = str(qs.value("view/theme", d.theme) or d.theme)
    return AnalysisPrefs(
        detector=det if det in {k for k, _ in DETECTORS} else d.detector,
        detector_model=model,
        stride=_int(qs.value("analysis/stride"), d.stride, 1, MAX_STRIDE),
        threads=_int(qs.value("analysis/threads"), min(d.threads, _cpu_count()), 1, _cpu_count()),
        theme=th if th in theme.CHOICES else d.theme,
    )


def save_analysis_prefs(qs: QSettings, p: AnalysisPrefs) -> None:
    qs.setValue("analysis/detector", p.detector)
    qs.setValue("analysis/detector_model", p.detector_model or "")
    qs.setValue("analysis/stride", int(p.stride))
    qs.setValue("analysis/threads", int(p.threads))
    qs.setValue("view/theme", p.theme)


def apply_analysis_prefs(session: Session, p: AnalysisPrefs) -> None:
    """Hand the choices to the session (used by the next analysis)."""
    session.settings = replace(session.settings, stride=p.stride, detector=p.detector,
                               detector_model=p.detector_model if p.detector == "yunet" else None)
    session.threads = int(p.threads)


class PreferencesDialog(QDialog):
    """Edit and apply the viewer's preferences (OK applies and saves; Cancel changes nothing)."""

    def __init__(self, window: QWidget, host: PreferencesHost,
                 list_backends: Callable[[], list[tuple[Any, Any]]] | None = None,
                 watcher: theme.ThemeWatcher | None = None, parent: QWidget | None = None) -> None:
        """``window`` parents the dialog and is restyled on a theme change; ``host`` is what the
        choices are applied to; ``watcher`` follows the system's colour scheme when chosen."""
        super().__init__(parent or window)
        self._window = window
        self.host = host
        self.watcher = watcher
        self.prefs = host.prefs
        self.setWindowTitle(f"Preferences — {APP_NAME}")
        current = load_analysis_prefs(self.prefs.qs)
        lay = QVBoxLayout(self)

        # --- analysis ------------------------------------------------------------------------------
        box = QGroupBox("Analysis")
        form = QFormLayout(box)
        self.backend = QComboBox()
        self.backend.setToolTip("Where the model runs; unavailable backends say why")
        entries = (list_backends or host.list_backends)()
        for spec, avail in entries:
            ok = bool(getattr(avail, "available", False))
            self.backend.addItem(f"{spec.name} — {spec.description}" + ("" if ok else "  (unavailable)"), spec.name)
            i = self.backend.count() - 1
            item = self.backend.model().item(i)  # type: ignore[attr-defined]
            if item is not None:
                item.setEnabled(ok)
                item.setToolTip(spec.description if ok else f"Unavailable: {avail.reason}")
        idx = self.backend.findData(host.session.backend_name)
        self.backend.setCurrentIndex(max(idx, 0))
        form.addRow("Backend", self.backend)

        self.model_path = QLineEdit(self.prefs.model_path or "")
        self.model_path.setPlaceholderText("bundled model")
        self.model_path.setToolTip("A U-YNet .onnx (or .xmodel for VART); empty = the bundled model")
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose a model file")
        browse.clicked.connect(self._browse_model)
        bundled = QPushButton("Bundled")
        bundled.setToolTip("Use the model that ships with DeepYN Viewer")
        bundled.clicked.connect(lambda: self.model_path.setText(""))
        form.addRow("Model", self._row(self.model_path, browse, bundled))

        self.detector = QComboBox()
        self.detector.setToolTip("Face detector used before scoring; res10 is the default and the one the model was trained with")
        for key, text in DETECTORS:
            self.detector.addItem(text, key)
        self.detector.setCurrentIndex(max(self.detector.findData(current.detector), 0))
        form.addRow("Face detector", self.detector)
        self.detector_model = QLineEdit(current.detector_model or "")
        self.detector_model.setPlaceholderText("face_detection_yunet_*.onnx")
        self.detector_model.setToolTip("The YuNet model file (only for the YuNet detector)")
        det_browse = QPushButton("Browse…")
        det_browse.setToolTip("Choose the YuNet .onnx file")
        det_browse.clicked.connect(self._browse_detector)
        self.detector_model_row = self._row(self.detector_model, det_browse)
        form.addRow("YuNet model", self.detector_model_row)
        self.detector.currentIndexChanged.connect(self._sync_enabled)

        self.stride = QSpinBox()
        self.stride.setRange(1, MAX_STRIDE)
        self.stride.setValue(current.stride)
        self.stride.setSuffix(" frame(s)")
        self.stride.setToolTip("Analyse every Nth frame (1 = every frame); skipped frames show 'not analysed'")
        form.addRow("Analyse every", self.stride)
        self.threads = QSpinBox()
        self.threads.setRange(1, _cpu_count())
        self.threads.setValue(current.threads)
        self.threads.setToolTip(f"Inference threads (this computer has {_cpu_count()} logical CPUs)")
        form.addRow("Threads", self.threads)
        lay.addWidget(box)

        # --- overlay defaults (the same control the side panel uses) ------------------------------
        self.overlay = OverlayControls(self.prefs.overlay())
        self.overlay.setTitle("Mask overlay defaults")
        self.overlay.setToolTip("How masks and face boxes are drawn; the mask threshold hides weaker mask pixels")
        lay.addWidget(self.overlay)

        # --- look ----------------------------------------------------------------------------------
        look = QGroupBox("Appearance")
        lf = QFormLayout(look)
        self.theme = QComboBox()
        self.theme.setToolTip("Light or dark window colours; 'Follow the system' switches with the desktop")
        for key, text in THEMES:
            self.theme.addItem(text, key)
        self.theme.setCurrentIndex(max(self.theme.findData(current.theme), 0))
        lf.addRow("Theme", self.theme)
        lay.addWidget(look)

        self.note = QLabel("")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        if host.session.analysis_running:
            self.note.setText("An analysis is running: it keeps its settings; changes apply to the next one.")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setToolTip("Apply and save these preferences")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip("Close without changing anything")
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).setToolTip(
            "Put every field back to its default (nothing is saved until OK)")
        lay.addWidget(self.buttons)
        self._sync_enabled()

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for i, x in enumerate(widgets):
            h.addWidget(x, 1 if i == 0 else 0)
        return w

    def _sync_enabled(self) -> None:
        self.detector_model_row.setEnabled(self.detector.currentData() == "yunet")

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a U-YNet model", "",
                                              "Models (*.onnx *.xmodel);;All files (*)")
        if path:
            self.model_path.setText(path)

    def _browse_detector(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the YuNet model", "", "ONNX (*.onnx);;All files (*)")
        if path:
            self.detector_model.setText(path)

    def restore_defaults(self) -> None:
        d = AnalysisPrefs()
        idx = self.backend.findData("onnx")
        self.backend.setCurrentIndex(max(idx, 0))
        self.model_path.setText("")
        self.detector.setCurrentIndex(max(self.detector.findData(d.detector), 0))
        self.detector_model.setText("")
        self.stride.setValue(d.stride)
        self.threads.setValue(min(d.threads, _cpu_count()))
        self.overlay.set_options(OverlayOptions())
        self.theme.setCurrentIndex(max(self.theme.findData(d.theme), 0))

    def chosen(self) -> AnalysisPrefs:
        return AnalysisPrefs(
            detector=str(self.detector.currentData()),
            detector_model=self.detector_model.text().strip() or None,
            stride=int(self.stride.value()),
            threads=int(self.threads.value()),
            theme=str(self.theme.currentData()),
        )

    def problem(self) -> str | None:
        """Why the choices cannot be applied (one sentence), or None."""
        model = self.model_path.text().strip()
        if model and not Path(model).is_file():
            return f"The model file {model} does not exist."
        p = self.chosen()
        if p.detector == "yunet":
            if not p.detector_model:
                return "The YuNet detector needs its .onnx model file."
            if not Path(p.detector_model).is_file():
                return f"The YuNet model file {p.detector_model} does not exist."
        return None

    def accept(self) -> None:
        why = self.problem()
        if why:
            self.note.setText(f"<span style='color:#c0392b'>{why}</span>")
            return
        self.apply()
        super().accept()

    def apply(self) -> None:
        h = self.host
        p = self.chosen()
        save_analysis_prefs(self.prefs.qs, p)
        apply_analysis_prefs(h.session, p)
        backend = self.backend.currentData()
        if backend and backend != h.session.backend_name:
            h.set_backend(str(backend))
        model = self.model_path.text().strip() or None
        if model != h.session.model_path:
            h.set_model_path(model)
        o = self.overlay.options()
        h.overlay_controls.set_options(o)
        h.overlay_controls.optionsChanged.emit(o)  # the window saves and redraws as for a side-panel change
        if self.watcher is not None:
            self.watcher.set_choice(p.theme)
        else:
            theme.apply_theme(p.theme)
            theme.restyle_plots(self._window)
        self.prefs.sync()


class PreferencesAction(QObject):
    """The File › Preferences… action, the theme watcher, and the dialog it opens."""

    def __init__(self, window: QMainWindow, host: PreferencesHost, file_menu: QMenu | None = None,
                 before: QAction | None = None) -> None:
        """The action goes into ``file_menu`` above ``before`` (Quit), else at its end."""
        super().__init__(window)
        self.window = window
        self.host = host
        self.dialog: PreferencesDialog | None = None
        p = load_analysis_prefs(host.prefs.qs)
        apply_analysis_prefs(host.session, p)
        self.theme_watcher = theme.ThemeWatcher(p.theme, window)
        self.theme_watcher.changed.connect(lambda scheme: theme.restyle_plots(window, scheme))
        theme.restyle_plots(window)
        a = QAction("&Preferences…", window)
        keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Preferences)
        a.setShortcuts(keys or [QKeySequence("Ctrl+,")])
        a.setMenuRole(QAction.MenuRole.PreferencesRole)
        tip = "Backend, model, face detector, stride, threads, overlay defaults and theme"
        a.setToolTip(tip)
        a.setStatusTip(tip)
        a.triggered.connect(lambda *_: self.open())
        window.addAction(a)
        if file_menu is not None:
            if before is not None and before in file_menu.actions():
                file_menu.insertAction(before, a)
                file_menu.insertSeparator(before)
            else:
                file_menu.addAction(a)
        self.action = a

    def open(self) -> PreferencesDialog:
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = PreferencesDialog(self.window, self.host, watcher=self.theme_watcher)
        self.dialog.setModal(False)
        self.dialog.show()
        return self.dialog


def install_preferences(window: QMainWindow, host: PreferencesHost, file_menu: QMenu | None = None,
                        before: QAction | None = None) -> PreferencesAction:
    """Apply the stored analysis/theme preferences to ``host`` and add File › Preferences…."""
    return PreferencesAction(window, host, file_menu, before)
