"""Help menu, About, first-run hint, Preferences and theme, on the real main window (offscreen)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication

from deepyn_gui import __version__
from deepyn_gui.qt import help_dialogs as hd
from deepyn_gui.qt import theme
from deepyn_gui.qt.preferences import AnalysisPrefs, PreferencesDialog, load_analysis_prefs


def _help(win):
    ha = getattr(win, "help_actions", None)
    return ha if ha is not None else hd.install_help_actions(win, win.session, win.prefs, win.menu_help)


def _prefs_action(win):
    pa = getattr(win, "preferences_action", None)
    if pa is None:
        from deepyn_gui.qt.preferences import install_preferences

        pa = install_preferences(win, win, win.menu_file, win.act_quit)
    return pa


def _native(seq) -> str:
    return QKeySequence(seq).toString(QKeySequence.SequenceFormat.NativeText)


def test_shortcuts_dialog_lists_the_windows_real_shortcuts(window, qtbot):
    _help(window)
    _prefs_action(window)
    dlg = _help(window).show_shortcuts()
    qtbot.addWidget(dlg)
    listed = {k for e in dlg.entries for k in e.keys}
    # every action of the window that has a shortcut is listed, with that shortcut
    for act in window.findChildren(QAction):
        for seq in act.shortcuts():
            if not seq.isEmpty():
                assert seq.toString(QKeySequence.SequenceFormat.NativeText) in listed, act.text()
    assert dlg.keys_for("Play / Pause") == (_native("Space"),)
    assert _native("Ctrl+R") in dlg.keys_for("Analyze")
    assert dlg.table.rowCount() == len(dlg.entries) + len(hd.MOUSE_HINTS)
    sections = {e.section for e in dlg.entries}
    assert {"Playback", "Analysis", "Help"} <= sections


def test_a_shortcut_added_later_appears_without_editing_any_list(window, qtbot):
    extra = QAction("Zap the thing", window)
    extra.setShortcut(QKeySequence("Ctrl+Shift+Z"))
    window.menu_view.addAction(extra)
    dlg = hd.ShortcutsDialog(window)
    qtbot.addWidget(dlg)
    assert dlg.keys_for("Zap the thing") == (_native("Ctrl+Shift+Z"),)


def test_about_dialog_reports_versions_model_and_licences(window, qtbot):
    import onnxruntime

    dlg = _help(window).show_about()
    qtbot.addWidget(dlg)
    versions = dict(dlg.versions)
    assert versions["DeepYN Viewer"] == __version__
    assert versions["ONNX Runtime"] == onnxruntime.__version__
    assert "Qt / PySide6" in versions and "FFmpeg (in PyAV)" in versions
    m = dlg.model
    assert m is not None and len(m.sha256) == 64
    from deepyn_gui.backends import default_model_path
    from deepyn_gui.core.model.metadata import sha256_file

    assert m.sha256 == sha256_file(default_model_path())  # the real bundled model, not a made-up entry
    parts = {p for p, _, _ in dlg.licences}
    assert {"Qt 6 / PySide6 (Essentials)", "ONNX Runtime", "PyAV", "Demo portrait"} <= parts
    assert dlg.tabs.count() == 4
    dlg.copy_versions()
    text = QApplication.clipboard().text()
    assert f"DeepYN Viewer: {__version__}" in text and m.sha256 in text
    backends = dict(dlg.backends)
    assert "onnx" in backends and "vart" in backends


def test_first_run_hint_is_shown_once_and_explains_the_models_numbers(window, qtbot):
    assert hd.first_run_due(window.prefs)
    ha = _help(window)
    assert hd.show_first_run_hint_if_due(ha)
    qtbot.waitUntil(lambda: isinstance(ha.dialog, hd.FirstRunHint), timeout=3000)
    dlg = ha.dialog
    text = dlg.text.toPlainText()
    m = hd._model_info(window.session)
    assert f"{m.threshold:.2f}" in text
    assert "cannot tell" in text and "not proof" in text
    dlg.accept()
    assert not hd.first_run_due(window.prefs)
    assert not hd.show_first_run_hint_if_due(ha)


def test_model_card_dialog_shows_the_bundled_card(window, qtbot):
    dlg = _help(window).show_card()
    qtbot.addWidget(dlg)
    assert dlg.card_path is not None and dlg.card_path.name == "uynet_default.md"
    first_heading = dlg.card_path.read_text().splitlines()[0].lstrip("# ").strip()
    assert first_heading in dlg.view.toPlainText()


def test_preferences_apply_save_and_reload(window, qtbot):
    pa = _prefs_action(window)
    assert pa.action in window.menu_file.actions()
    dlg = pa.open()
    qtbot.addWidget(dlg)
    dlg.stride.setValue(5)
    dlg.detector.setCurrentIndex(dlg.detector.findData("haar"))
    dlg.threads.setValue(1)
    dlg.theme.setCurrentIndex(dlg.theme.findData("dark"))
    o = dlg.overlay.options()
    dlg.overlay.opacity.setValue(80)
    dlg.accept()
    assert dlg.result() == dlg.DialogCode.Accepted
    s = window.session
    assert (s.settings.stride, s.settings.detector, s.threads) == (5, "haar", 1)
    assert window.overlay_controls.options().opacity == pytest.approx(0.8)
    assert o.opacity != pytest.approx(0.8)
    stored = load_analysis_prefs(window.prefs.qs)
    assert stored == AnalysisPrefs(detector="haar", detector_model=None, stride=5, threads=1, theme="dark")
    assert window.prefs.overlay().opacity == pytest.approx(0.8)
    assert theme.current_scheme() == theme.DARK
    # the timeline follows the theme
    bg = window.timeline.backgroundBrush().color()
    assert bg.lightness() < 80
    theme.apply_theme(theme.SYSTEM)


def test_preferences_refuse_yunet_without_its_model(window, qtbot):
    dlg = PreferencesDialog(window, window)
    qtbot.addWidget(dlg)
    dlg.detector.setCurrentIndex(dlg.detector.findData("yunet"))
    assert dlg.detector_model_row.isEnabled()
    before = window.session.settings
    dlg.accept()
    assert dlg.result() != dlg.DialogCode.Accepted
    assert "YuNet" in dlg.note.text()
    assert window.session.settings == before


def test_preferences_cancel_changes_nothing(window, qtbot):
    dlg = PreferencesDialog(window, window)
    qtbot.addWidget(dlg)
    before = (window.session.settings, window.session.threads, window.prefs.qs.allKeys())
    dlg.stride.setValue(9)
    dlg.reject()
    assert (window.session.settings, window.session.threads, window.prefs.qs.allKeys()) == before


def test_theme_light_and_dark_restyle_plots(window):
    theme.apply_theme(theme.DARK)
    assert theme.restyle_plots(window) >= 1
    assert window.timeline.backgroundBrush().color().lightness() < 80
    theme.apply_theme(theme.LIGHT)
    theme.restyle_plots(window)
    assert window.timeline.backgroundBrush().color().lightness() > 200
    assert theme.current_scheme() == theme.LIGHT
    theme.apply_theme(theme.SYSTEM)


def test_system_scheme_reads_qt_style_hints(qapp, monkeypatch):
    from PySide6.QtCore import Qt

    hints = qapp.styleHints()
    if not hasattr(hints, "colorScheme"):
        pytest.skip("Qt < 6.5 has no colour scheme hint")
    monkeypatch.setattr(type(hints), "colorScheme", lambda self: Qt.ColorScheme.Dark)
    assert theme.system_scheme() == theme.DARK
    monkeypatch.setattr(type(hints), "colorScheme", lambda self: Qt.ColorScheme.Light)
    assert theme.system_scheme() == theme.LIGHT


def _untipped(root):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractSlider,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QScrollBar,
        QWidget,
    )

    kinds = (QAbstractButton, QComboBox, QAbstractSlider, QAbstractSpinBox, QLineEdit)
    out = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, kinds) or isinstance(w, QScrollBar):
            continue
        name = w.objectName()
        if name.startswith("qt_") or name in ("ScrollLeftButton", "ScrollRightButton"):
            continue  # Qt's own internals (menu/tool bar overflow, table corner, tab scroll)
        if isinstance(w, QLineEdit) and isinstance(w.parent(), (QComboBox, QAbstractSpinBox)):
            continue  # the editor inside a combo/spin box; the box has the tooltip
        if not w.toolTip().strip():
            out.append(f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r} in {type(w.parent()).__name__}")
    return out


def QWidget_type():
    from PySide6.QtWidgets import QWidget

    return QWidget


def test_every_control_has_a_tooltip(window, qtbot):
    from deepyn_gui.qt.compare_view import CompareWindow

    roots = [window, CompareWindow(window), PreferencesDialog(window, window), hd.AboutDialog(window, window.session),
             hd.ShortcutsDialog(window), hd.FirstRunHint(window, window.session, window.prefs), hd.ModelCardDialog(window, window.session)]
    for r in roots[1:]:
        qtbot.addWidget(r)
    missing = [f"{type(r).__name__}: {m}" for r in roots for m in _untipped(r)]
    assert not missing, "\n".join(missing)
