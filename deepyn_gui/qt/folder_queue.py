"""File > Open folder...: the batch queue (clip, verdict, score, state) filling in as clips finish.

It drives the same core call as ``deepyn batch`` (:func:`deepyn_gui.core.batch.run_batch`) with the
viewer's backend, model and settings, so every finished clip lands in the session cache under the key
the viewer looks up: opening an entry shows its analysis from the cache at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.batch import BatchItem
from ..core.verdict import verdict_words
from .host import AnalysisChoice
from .jobs import Worker

COLUMNS = ("Clip", "Verdict", "Score", "State")
_STATE_TEXT = {"queued": "queued", "running": "analysing…", "done": "done", "cached": "done (cache)",
               "failed": "failed", "cancelled": "not finished"}


class FolderQueueWindow(QWidget):
    """The queue of one folder's clips; double-click (or Enter) opens a clip in the main window."""

    def __init__(self, parent: QWidget | None, choice: AnalysisChoice, open_clip: Callable[[str], None],
                 clips: list[Path], start: bool = True) -> None:
        """``choice``: the viewer's backend, model and settings; ``open_clip(path)`` shows a clip in the viewer."""
        super().__init__(parent, Qt.WindowType.Window)
        self.choice = choice
        self._open_clip = open_clip
        self.clips = clips
        self.setWindowTitle(f"Folder queue — {len(clips)} clips")
        self.resize(820, 420)
        self.table = QTableWidget(len(clips), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(lambda idx: self.open_row(idx.row()))
        self.table.activated.connect(lambda idx: self.open_row(idx.row()))
        self.status = QLabel("")
        self.cancel_button = QPushButton("Stop after current clips")
        self.cancel_button.clicked.connect(self.cancel)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Double-click a clip to open it; finished clips open with their analysis at once."))
        lay.addWidget(self.table)
        lay.addLayout(bottom)
        self.items: list[BatchItem] = [BatchItem(str(c)) for c in clips]
        for row, item in enumerate(self.items):
            self._show(row, item)
        self.worker: Worker | None = None
        if start:
            self.start()

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the folder through core's batch on the viewer's one job class (:class:`~.jobs.Worker`)."""
        c = self.choice
        backend_name, model_path, threads = c.backend_name, c.model_path, c.threads
        settings, root, clips = c.settings, c.cache_root, self.clips

        def work(cancel: threading.Event, emit: Callable[[Any], None]) -> str:
            """Each finished clip goes out as ``(row, BatchItem)``; returns the closing status line."""
            from ..backends import create_backend
            from ..core.batch import default_parallel, run_batch
            from ..core.cache import AnalysisCache

            try:
                backend = create_backend(backend_name, model_path=model_path, threads=threads,
                                         batch_size=settings.batch_size)
            except Exception as exc:  # noqa: BLE001 - shown in the window, never a silent stop
                return f"cannot start: {exc}"
            try:
                run = run_batch(clips, backend, settings, cache=AnalysisCache(root), parallel=default_parallel(backend),
                                reports=False, cancel=cancel, on_item=lambda i, it: emit((i, it)))
                for i, it in enumerate(run.snapshot()):
                    emit((i, it))
            except Exception as exc:  # noqa: BLE001
                return f"stopped: {exc}"
            finally:
                backend.close()
            return ""

        self.status.setText(f"Analysing with {backend_name}…")
        # drained on cancel: the clips being analysed finish and their rows still arrive
        self.worker = Worker(work, "folder-queue", drain_on_cancel=True, parent=self)
        self.worker.yielded.connect(lambda row_item: self._on_item(*row_item))
        self.worker.succeeded.connect(self._on_finished)
        self.worker.cancelled.connect(lambda message: self._on_finished(message or ""))
        self.worker.failed.connect(self._on_finished)
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self.status.setText("Stopping after the clips being analysed…")

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.worker is not None:
            self.worker.cancel()
        super().closeEvent(event)

    # -- display ----------------------------------------------------------------------------------
    def _show(self, row: int, item: BatchItem) -> None:
        score = "—" if item.fake_score is None else f"{item.fake_score:.3f}"
        verdict = verdict_words(item.label).lower() if item.label else "—"
        cells = (Path(item.clip).name, f"{verdict} · caution" if item.caution else verdict, score,
                 _STATE_TEXT.get(item.state, item.state))
        for col, text in enumerate(cells):
            cell = QTableWidgetItem(text)
            if col == 0:
                cell.setToolTip(item.clip)
            if col == 1 and item.caution:
                cell.setToolTip(item.caution)
            if col == 3 and item.error:
                cell.setToolTip(item.error)
            if col == 2:
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, col, cell)

    def _on_item(self, row: int, item: BatchItem) -> None:
        self.items[row] = item
        self._show(row, item)
        finished = sum(1 for i in self.items if i.state in ("done", "cached", "failed"))
        self.status.setText(f"{finished} of {len(self.items)} clips finished")

    def _on_finished(self, message: str) -> None:
        self.cancel_button.setEnabled(False)
        finished = sum(1 for i in self.items if i.state in ("done", "cached", "failed"))
        self.status.setText(message or f"{finished} of {len(self.items)} clips finished")

    def open_row(self, row: int) -> None:
        if 0 <= row < len(self.items):
            self._open_clip(self.items[row].clip)
