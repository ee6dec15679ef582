"""Remembered preferences (QSettings): recent files, window geometry/state, overlay and analysis choices.

Tests (and anyone who wants a portable profile) pass their own ``QSettings`` (e.g. an INI file in a
temporary folder), so running the suite never touches the user's real preferences.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

from .overlay import OverlayOptions

MAX_RECENT = 10
ORG = "DeepYN"
APP = "DeepYN Viewer"


def default_settings() -> QSettings:
    """The user's settings; ``DEEPYN_GUI_SETTINGS=/path/file.ini`` redirects them to an INI file."""
    path = os.environ.get("DEEPYN_GUI_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def _as_bool(v: Any, default: bool) -> bool:
    if v is None:
        return default
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes", "on")
    return bool(v)


def _as_float(v: Any, default: float, lo: float = 0.0, hi: float = 1.0) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return min(max(f, lo), hi) if math.isfinite(f) else default


class Preferences:
    """Typed access to the settings the viewer remembers."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qs = settings if settings is not None else default_settings()

    # -- recent files -------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        v = self.qs.value("recent/files", [])
        if isinstance(v, str):
            v = [v] if v else []
        return [str(p) for p in (v if isinstance(v, (list, tuple)) else [])][:MAX_RECENT]

    def add_recent(self, path: str) -> list[str]:
        p = str(Path(path).resolve())
        files = [f for f in self.recent_files() if f != p]
        files.insert(0, p)
        files = files[:MAX_RECENT]
        self.qs.setValue("recent/files", files)
        return files

    def clear_recent(self) -> None:
        self.qs.setValue("recent/files", [])

    # -- window -------------------------------------------------------------------------------------
    def save_window(self, win: QMainWindow) -> None:
        self.qs.setValue("window/geometry", win.saveGeometry())
        self.qs.setValue("window/state", win.saveState())

    def restore_window(self, win: QMainWindow) -> bool:
        geom = self.qs.value("window/geometry")
        state = self.qs.value("window/state")
        ok = False
        if isinstance(geom, QByteArray) and not geom.isEmpty():
            ok = win.restoreGeometry(geom)
        if isinstance(state, QByteArray) and not state.isEmpty():
            win.restoreState(state)
        return ok

    def save_splitter(self, name: str, state: QByteArray) -> None:
        self.qs.setValue(f"window/splitter_{name}", state)

    def splitter(self, name: str) -> QByteArray | None:
        v = self.qs.value(f"window/splitter_{name}")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    # -- analysis -----------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return str(self.qs.value("analysis/backend", "onnx") or "onnx")

    @backend.setter
    def backend(self, name: str) -> None:
        self.qs.setValue("analysis/backend", name)

    @property
    def model_path(self) -> str | None:
        v = self.qs.value("analysis/model_path", "")
        return str(v) if v else None

    @model_path.setter
    def model_path(self, path: str | None) -> None:
        self.qs.setValue("analysis/model_path", path or "")

    @property
    def analyze_on_open(self) -> bool:
        return _as_bool(self.qs.value("analysis/analyze_on_open"), False)

    @analyze_on_open.setter
    def analyze_on_open(self, on: bool) -> None:
        self.qs.setValue("analysis/analyze_on_open", bool(on))

    # -- overlay ------------------------------------------------------------------------------------
    def overlay(self) -> OverlayOptions:
        d = OverlayOptions()
        g = self.qs.value
        return OverlayOptions(
            show_mask=_as_bool(g("overlay/show_mask"), d.show_mask),
            show_boxes=_as_bool(g("overlay/show_boxes"), d.show_boxes),
            opacity=_as_float(g("overlay/opacity"), d.opacity),
            threshold=_as_float(g("overlay/threshold"), d.threshold),
            colormap=str(g("overlay/colormap", d.colormap) or d.colormap),
            mode=str(g("overlay/mode", d.mode) or d.mode),
        )

    def set_overlay(self, o: OverlayOptions) -> None:
        for key, value in (("show_mask", o.show_mask), ("show_boxes", o.show_boxes), ("opacity", o.opacity),
                           ("threshold", o.threshold), ("colormap", o.colormap), ("mode", o.mode)):
            self.qs.setValue(f"overlay/{key}", value)

    def sync(self) -> None:
        self.qs.sync()
