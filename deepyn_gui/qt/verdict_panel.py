"""The verdict panel: what the analysis concluded, for the video and for each person, in words.

It shows only what :func:`deepyn_gui.core.verdict.video_verdict` produced: the label, score and
band, the one-line explanation, the aggregator, the model (name, version, whether it is trained) and
the backend. States that carry no number ("No face found", "Faces too small", "Backend error", "Face detection failed") are
shown as such, never as a score. An untrained model is announced in a banner that cannot be missed.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.results import ModelInfo, Verdict
from ..core.verdict import verdict_words
from .style import VERDICT_STYLE, track_color


class VerdictPanel(QFrame):
    """Video verdict, per-person verdicts, and the provenance needed to read them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.untrained_banner = QLabel(
            "⚠ UNTRAINED MODEL — its scores mean nothing. Use it only to try the program."
        )
        self.untrained_banner.setWordWrap(True)
        self.untrained_banner.setStyleSheet(
            "background:#f9e79f; color:#7d6608; border:1px solid #b7950b; padding:5px; font-weight:bold;"
        )
        self.untrained_banner.hide()
        self.headline = QLabel()
        self.headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.headline.setWordWrap(True)
        self.score = QLabel()
        self.score.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.score.setWordWrap(True)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explanation.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color:#666; font-style:italic;")
        self.tracks = QTreeWidget()
        self.tracks.setRootIsDecorated(False)
        self.tracks.setHeaderLabels(["Person", "Verdict", "Score", "Band", "Frames"])
        self.tracks.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tracks.header().setStretchLastSection(False)
        self.tracks.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.tracks.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.coverage = QLabel()  # what the analysis did NOT look at (audio, outside faces, stride)
        self.coverage.setWordWrap(True)
        self.coverage.setMinimumWidth(10)
        self.coverage.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.coverage.setStyleSheet("color:#444; font-size:9pt;")
        self.coverage.hide()
        self.provenance = QLabel()
        self.provenance.setWordWrap(True)
        self.provenance.setMinimumWidth(10)
        self.provenance.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.provenance.setStyleSheet("color:#444; font-size:9pt;")

        title = QLabel("<b>Verdict</b>")
        lay = QVBoxLayout(self)
        lay.addWidget(title)
        lay.addWidget(self.untrained_banner)
        lay.addWidget(self.headline)
        lay.addWidget(self.score)
        lay.addWidget(self.explanation)
        lay.addWidget(self.status)
        lay.addWidget(self.tracks)
        lay.addWidget(self.coverage)
        lay.addWidget(self.provenance)

        self.verdict: Verdict | None = None
        self.model: ModelInfo | None = None
        self.backend: dict[str, Any] | None = None
        self._state = "idle"
        self._partial = ""
        self.set_verdict(None)

    # -- inputs -------------------------------------------------------------------------------------
    def set_model(self, model: ModelInfo | None, backend: dict[str, Any] | None) -> None:
        self.model = model
        self.backend = backend
        self.untrained_banner.setVisible(model is not None and not model.trained)
        self._update_provenance()

    def set_state(self, state: str, partial_note: str = "") -> None:
        """Analysis state (idle/starting/running/...): says whether the verdict is final."""
        self._state = state
        self._partial = partial_note
        self._update_status()

    def set_coverage(self, notes: list[str], limits: list[str] | None = None, cautions: list[str] | None = None) -> None:
        """Cautions about this clip (:func:`deepyn_gui.core.verdict.clip_cautions`), what was not analysed
        (:func:`deepyn_gui.core.verdict.not_analysed`) and the model card's first limits
        (:func:`deepyn_gui.core.verdict.known_limits`); all empty hides it."""
        parts = []
        for title, lines in (("Caution for this clip:", cautions or []), ("Not analysed:", notes),
                             ("Known limits of this model (its card):", limits or [])):
            if lines:
                items = "".join(f"<li>{html.escape(n)}</li>" for n in lines)
                parts.append(f"<b>{title}</b><ul style='margin:0'>{items}</ul>")
        self.coverage.setText("".join(parts))
        self.coverage.setVisible(bool(parts))

    def set_verdict(self, verdict: Verdict | None) -> None:
        self.verdict = verdict
        if verdict is None:
            self._set_headline("NOT ANALYSED YET", "#85929e")
            self.score.setText("")
            self.explanation.setText("Open a clip, then run Analysis ▸ Analyze (Ctrl+R) to score its faces.")
            self.tracks.clear()
            self.tracks.hide()
        else:
            word, color = VERDICT_STYLE.get(verdict.label, (verdict_words(verdict.label), "#5d6d7e"))
            self._set_headline(word, color)
            if verdict.fake_score is not None:
                self.score.setText(
                    f"<span style='font-size:15pt'><b>{verdict.fake_score:.2f}</b></span>"
                    f"&nbsp; fake score · band <b>{html.escape(verdict.band or '—')}</b>"
                    f" · threshold {verdict.threshold:.2f}"
                )
            else:
                self.score.setText("<i>no score: nothing could be evaluated</i>")
            self.explanation.setText(html.escape(verdict.explanation))
            self._fill_tracks(verdict)
        self._update_status()
        self._update_provenance()

    # -- drawing ------------------------------------------------------------------------------------
    def _set_headline(self, text: str, color: str) -> None:
        self.headline.setText(text)
        self.headline.setStyleSheet(
            f"background:{color}; color:white; font-size:14pt; font-weight:bold; padding:8px; border-radius:4px;"
        )

    def _fill_tracks(self, v: Verdict) -> None:
        self.tracks.clear()
        for tv in v.tracks:
            score = "—" if tv.fake_score is None else f"{tv.fake_score:.2f}"
            item = QTreeWidgetItem(
                [f"P{tv.track}", verdict_words(tv.label).lower(), score, tv.band or "—",
                 f"{tv.frames_scored}/{tv.frames_seen}"]
            )
            item.setForeground(0, track_color_brush(tv.track))
            for c in range(5):
                item.setToolTip(c, tv.explanation)
            self.tracks.addTopLevelItem(item)
        self.tracks.setVisible(bool(v.tracks))
        # as tall as its rows (up to 5), so one person does not leave an empty box
        rows = min(max(len(v.tracks), 1), 5)
        row_h = self.tracks.sizeHintForRow(0) if v.tracks else 20
        extra = self.tracks.horizontalScrollBar().sizeHint().height() if len(v.tracks) else 0
        self.tracks.setFixedHeight(self.tracks.header().sizeHint().height() + rows * max(row_h, 18) + extra + 6)

    def _update_status(self) -> None:
        s = self._state
        text = {
            "starting": "Loading the model…",
            "running": "Analysis running — provisional verdict on the frames so far.",
            "cancelling": "Cancelling…",
            "cancelled": "Analysis cancelled — the verdict covers only the frames analysed.",
            "stopped": "Analysis stopped early — the verdict covers only the frames analysed.",
        }.get(s, "")
        if self._partial and s in ("cancelled", "stopped"):
            text += f" ({self._partial})"
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def _update_provenance(self) -> None:
        parts = []
        m = self.model
        if m is not None:
            ver = f" (version {m.version})" if m.version else ""
            trained = "" if m.trained else " <b style='color:#b03a2e'>(untrained)</b>"
            parts.append(f"Model: {html.escape(m.name)}{html.escape(ver)}{trained} · sha256 {m.sha256[:12]}")
        if self.backend:
            b = self.backend
            extra = b.get("providers") or b.get("device") or ""
            if isinstance(extra, (list, tuple)):
                extra = ", ".join(str(x) for x in extra)
            parts.append(f"Backend: {html.escape(str(b.get('name', '?')))}"
                         + (f" ({html.escape(str(extra))})" if extra else ""))
        if self.verdict is not None:
            parts.append(f"Aggregator: {html.escape(self.verdict.aggregator)}")
        self.provenance.setText("<br>".join(parts))
        self.provenance.setVisible(bool(parts))

    # -- queries ------------------------------------------------------------------------------------
    def text(self) -> str:
        """Everything the panel says, as plain text (tests, accessibility, copy)."""
        out = [self.untrained_banner.text()] if self.untrained_banner.isVisibleTo(self) else []
        out += [self.headline.text(), self.score.text(), self.explanation.text(), self.status.text(),
                self.coverage.text(), self.provenance.text()]
        for i in range(self.tracks.topLevelItemCount()):
            it = self.tracks.topLevelItem(i)
            out.append(" ".join(it.text(c) for c in range(5)))
        return "\n".join(t for t in out if t)


def track_color_brush(track: int):  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(*track_color(track)))
