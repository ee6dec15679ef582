"""The evidence's identity on screen: its SHA-256 (copyable), a red banner when it changed, and a note
when the results come from the session cache; plus the Analysis ▸ Re-analyse action.

:func:`install_evidence_ui` adds all of it to a main window (side panel, status bar, Analysis menu)
and wires it to the window's session, so the window itself needs one call.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QBoxLayout, QFrame, QLabel, QMainWindow, QMenu, QVBoxLayout, QWidget

from ..core.cache import CacheHit
from ..core.evidence_index import CHANGED, HASH_FAILED, HASHED, HASHING, VERIFIED, EvidenceStatus, format_utc
from ..core.results import AnalysisResult
from .session import Session

_SUFFIX = {HASHED: "(computed on open)", VERIFIED: "(verified)", CHANGED: "(CHANGED since analysed)"}
_COLOR = {VERIFIED: "#1e8449", CHANGED: "#c0392b", HASH_FAILED: "#b9770e"}


def evidence_text(st: EvidenceStatus, digits: int = 12) -> str:
    """One line for the status bar / panel: ``SHA-256: 3f2a1b2c4d5e… (verified)``."""
    if not st.state:
        return ""
    if st.state == HASHING:
        pct = f" {100 * st.done // st.total} %" if st.total > 0 else ""
        return f"SHA-256: hashing…{pct}"
    if st.state == HASH_FAILED:
        return "SHA-256: could not be computed"
    return f"SHA-256: {st.sha256[:digits]}… {_SUFFIX.get(st.state, '')}".rstrip()


def evidence_tooltip(st: EvidenceStatus) -> str:
    """The full value and what it was compared with (right-click copies the full value)."""
    if st.state == HASH_FAILED:
        return st.message
    if not st.sha256:
        return "The evidence file is being hashed on a worker thread."
    lines = [f"SHA-256 of {st.path}:", st.sha256]
    if st.state == VERIFIED:
        lines.append(f"Equals the SHA-256 recorded when it was analysed ({format_utc(st.analysed_utc)}).")
    elif st.state == CHANGED:
        differs = f"DIFFERS from the SHA-256 recorded when it was analysed ({format_utc(st.analysed_utc)}):"
        lines += [differs, st.recorded_sha256]
    else:
        lines.append("Not analysed before (no earlier hash to compare with).")
    lines.append("Right-click to copy.")
    return "\n".join(lines)


class EvidenceBar(QFrame):
    """SHA-256 line, evidence-changed banner and cache note, above the verdict."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = EvidenceStatus()
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet(
            "background:#c0392b; color:white; border:2px solid #7b241c; padding:6px; font-weight:bold;"
        )
        self.banner.hide()
        self.sha_label = QLabel()
        self.sha_label.setWordWrap(True)
        self.sha_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#1f618d; font-style:italic;")
        self.note.hide()
        # decode warnings and an incomplete analysis: said here, not only in exported files
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warnings.setStyleSheet("background:#fdebd0; color:#784212; border:1px solid #d68910; padding:4px;")
        self.warnings.hide()
        # the same line in the status bar (install_evidence_ui puts it there)
        self.status_label = QLabel()
        self.status_label.setContentsMargins(6, 0, 6, 0)

        self.copy_action = QAction("Copy SHA-256", self)
        self.copy_action.setEnabled(False)
        self.copy_action.triggered.connect(self.copy_sha256)
        for label in (self.sha_label, self.status_label):
            label.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
            label.addAction(self.copy_action)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.banner)
        lay.addWidget(self.sha_label)
        lay.addWidget(self.note)
        lay.addWidget(self.warnings)
        self.set_status(EvidenceStatus())

    def set_status(self, st: EvidenceStatus) -> None:
        self.status = st
        text = evidence_text(st)
        tip = evidence_tooltip(st) if st.state else ""
        color = _COLOR.get(st.state, "#444")
        for label in (self.sha_label, self.status_label):
            label.setText(text)
            label.setToolTip(tip)
            label.setStyleSheet(f"color:{color};" + (" font-weight:bold;" if st.state == CHANGED else ""))
        self.sha_label.setVisible(bool(text))
        self.copy_action.setEnabled(bool(st.sha256))
        if st.state == CHANGED:
            when = f" on {html.escape(format_utc(st.analysed_utc))}" if st.analysed_utc else ""
            self.banner.setText(
                f"⚠ EVIDENCE CHANGED — this file is not the one analysed{when}.<br>"
                f"SHA-256 now <tt>{st.sha256[:16]}…</tt>, was <tt>{st.recorded_sha256[:16]}…</tt>. "
                "Earlier results do not describe it; analyse it again."
            )
            self.banner.setToolTip(evidence_tooltip(st))
        self.banner.setVisible(st.state == CHANGED)
        self.setVisible(bool(st.state))

    def set_cache_note(self, hit: CacheHit | None) -> None:
        if hit is None:
            self.note.clear()
            self.note.hide()
            return
        when = format_utc(hit.result.created_utc or hit.saved_utc)
        self.note.setText(f"Loaded from cache (analysed {when}). Analysis ▸ Re-analyse runs the model again.")
        self.note.show()

    def set_result_warnings(self, result: AnalysisResult | None) -> None:
        """Show what the analysis could not do: incomplete (the gap named) and every decode warning."""
        lines: list[str] = []
        if result is not None and not getattr(result, "complete", True):
            lines.append(f"⚠ INCOMPLETE: {getattr(result, 'stop_reason', '') or 'stopped early'}")
        for w in (getattr(result, "warnings", None) or []) if result is not None else []:
            lines.append(f"⚠ {w}")
        if not lines:
            self.warnings.clear()
            self.warnings.hide()
            return
        shown = lines[:6] + ([f"… and {len(lines) - 6} more (all in the report and the JSON)"] if len(lines) > 6 else [])
        self.warnings.setText("<br>".join(html.escape(s) for s in shown))
        self.warnings.setToolTip("\n".join(lines))
        self.warnings.show()
        self.show()

    def copy_sha256(self) -> None:
        if self.status.sha256:
            QGuiApplication.clipboard().setText(self.status.sha256)

    def text(self) -> str:
        """Everything the bar says, as plain text (tests, accessibility)."""
        parts = [self.banner.text()] if self.banner.isVisibleTo(self) else []
        parts += [self.sha_label.text(), self.note.text() if self.note.isVisibleTo(self) else ""]
        if self.warnings.isVisibleTo(self):
            parts.append(self.warnings.toolTip())
        return "\n".join(p for p in parts if p)


def install_evidence_ui(window: QMainWindow, session: Session, side: QBoxLayout, analysis_menu: QMenu,
                        after: QAction | None, on_cache_loaded: Callable[[], None]) -> tuple[EvidenceBar, QAction]:
    """Add the evidence bar (top of ``side`` + the window's status bar) and Analysis ▸ Re-analyse (after
    ``after`` in ``analysis_menu``), and wire them to ``session``; returns both.

    ``on_cache_loaded()`` lets the window redraw what it owns when a cached analysis is shown.
    """
    bar = EvidenceBar()
    side.insertWidget(0, bar)
    window.statusBar().insertPermanentWidget(0, bar.status_label)

    act = QAction("R&e-analyse (ignore cache)", window)
    act.setShortcut("Ctrl+Shift+R")
    tip = "Run the model again even if this clip was analysed before with the same model and settings"
    act.setStatusTip(tip)
    act.setToolTip(tip)
    window.addAction(act)
    actions = analysis_menu.actions()
    if after is not None and after in actions[:-1]:
        analysis_menu.insertAction(actions[actions.index(after) + 1], act)
    else:
        analysis_menu.addAction(act)

    def reanalyse() -> None:
        if not session.has_clip:
            window.statusBar().showMessage("Open a video first.", 5000)
            return
        session.reanalyse()

    def update_enabled(*_: object) -> None:
        act.setEnabled(session.has_clip and not session.analysis_running)

    def cache_loaded(hit: CacheHit) -> None:
        bar.set_cache_note(hit)
        on_cache_loaded()

    act.triggered.connect(lambda *_: reanalyse())
    session.evidenceStatusChanged.connect(bar.set_status)
    session.cacheLoaded.connect(cache_loaded)
    session.resultsCleared.connect(lambda: bar.set_cache_note(None))
    session.resultsCleared.connect(lambda: bar.set_result_warnings(None))
    session.analysisFinished.connect(bar.set_result_warnings)
    session.cacheLoaded.connect(lambda hit: bar.set_result_warnings(hit.result))
    session.clipOpened.connect(update_enabled)
    session.analysisStateChanged.connect(update_enabled)
    update_enabled()
    return bar, act
