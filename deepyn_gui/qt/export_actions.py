"""The viewer's Export menu: thin Qt wrappers over the same core export functions the CLI calls.

Every export here ends in ``deepyn_gui.core.export`` (annotate/frames/video/report/data) or
``deepyn_gui.core.evidence``, so the viewer and ``deepyn report`` / ``deepyn export-frames`` write the
same bytes. Long exports (video, report, frame hashes, and the SHA-256 re-check that precedes every
export) run on the viewer's one job class (:class:`~.jobs.Worker`) behind a progress dialog with Cancel; the GUI thread never waits on them.

Qt's own job is the PDF: :func:`html_to_pdf` prints the report's HTML with QTextDocument + QPdfWriter
(the CLI imports it lazily, only for ``--pdf``).

Size (~650 lines): one thin wrapper per export kind plus the shared progress/cancel dialog; the
exports themselves are core's pure functions.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QMarginsF, QObject, QRectF, QSizeF, QStandardPaths, Qt
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QGuiApplication,
    QKeySequence,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextBlock,
    QTextBlockFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressDialog,
    QPushButton,
    QWidget,
)

from ..core.errors import DeepYNError
from ..core.evidence import is_evidence_folder, prepare_export, require_evidence
from ..core.export.annotate import COLORMAPS, AnnotateStyle
from ..core.export.atomic import atomic_path, write_bytes_atomic
from ..core.export.frames import flagged_frames, frame_file_name, raw_frame_png, render_frame_png
from ..core.output_guard import check_output_file
from ..core.results import AnalysisResult
from .host import ShownClip
from .jobs import Worker
from .overlay import OverlayOptions

log = logging.getLogger(__name__)

PDF_RESOLUTION = 300


# ---------------------------------------------------------------------------------------------- PDF


_APP: QGuiApplication | None = None  # kept alive when this module had to create the application


def _ensure_gui_app() -> None:
    """Printing needs a QGuiApplication; make one (offscreen when there is no display) if none exists."""
    global _APP
    if QGuiApplication.instance() is None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _APP = QGuiApplication(sys.argv[:1] or ["deepyn"])


#: A4 page margins in millimetres (left/right, top, bottom); the footer sits in the bottom margin.
PDF_MARGINS_MM = (18.0, 16.0, 18.0)


def _first_line_y(doc: QTextDocument, block: QTextBlock, last: bool = False) -> float:
    """Document y of a block's first (or last) laid-out line: a line pushed to the next page counts there."""
    top = doc.documentLayout().blockBoundingRect(block).top()
    lay = block.layout()
    if lay is None or lay.lineCount() == 0:
        return top
    return top + lay.lineAt(lay.lineCount() - 1 if last else 0).y()


def heading_cut_from_next(doc: QTextDocument, skip: set[int] | frozenset[int] = frozenset()) -> int | None:
    """Block number of the first heading whose next block (a keyframe image, a table, a paragraph)
    starts on a later page than the heading: QTextDocument has no keep-with-next. None when none is."""
    page_h = doc.pageSize().height()
    block = doc.begin()
    while block.isValid():
        nxt = block.next()
        if (block.blockFormat().headingLevel() > 0 and nxt.isValid() and block.blockNumber() not in skip
                and int(_first_line_y(doc, nxt) // page_h) > int(_first_line_y(doc, block, last=True) // page_h)):
            return block.blockNumber()
        block = nxt
    return None


def _page_doc(html: str, writer: QPdfWriter, margins: tuple[float, float, float], breaks: set[int]) -> QTextDocument:
    """The report laid out for ``writer``'s pages, with a page break before each block in ``breaks``.

    Built afresh for each set of breaks: changing a laid-out document's block formats re-lays it out only
    lazily, and painting such a document dropped blocks.
    """
    side, top, bottom = margins
    doc = QTextDocument()
    doc.documentLayout().setPaintDevice(writer)  # fonts and images measured as printed
    doc.setMetaInformation(QTextDocument.MetaInformation.CssMedia, "print")  # not the screen-only max-width
    doc.setHtml(html)
    root = doc.rootFrame().frameFormat()
    root.setLeftMargin(side)
    root.setRightMargin(side)
    root.setTopMargin(top)
    root.setBottomMargin(bottom)
    doc.rootFrame().setFrameFormat(root)
    for n in sorted(breaks):
        block = doc.findBlockByNumber(n)
        fmt = QTextBlockFormat(block.blockFormat())
        fmt.setPageBreakPolicy(QTextFormat.PageBreakFlag.PageBreak_AlwaysBefore)
        QTextCursor(block).setBlockFormat(fmt)
    doc.setPageSize(QSizeF(writer.width(), writer.height()))
    return doc


def layout_pages(html: str, writer: QPdfWriter, max_moves: int = 60) -> tuple[QTextDocument, tuple[float, float, float]]:
    """The report laid out on ``writer``'s pages with every heading on the page of what follows it;
    also the (side, top, bottom) margins in device pixels."""
    dots_per_mm = writer.resolution() / 25.4
    side, top, bottom = (m * dots_per_mm for m in PDF_MARGINS_MM)
    # Frame margins are given in logical (screen) pixels: the layout scales them to the device.
    screen = QGuiApplication.primaryScreen()
    to_logical = (screen.logicalDotsPerInchY() if screen is not None else 96.0) / writer.resolution()
    margins = (side * to_logical, top * to_logical, bottom * to_logical)
    breaks: set[int] = set()
    doc = _page_doc(html, writer, margins, breaks)
    for _ in range(max_moves):  # keep each heading on the page of what it introduces
        cut = heading_cut_from_next(doc, breaks)
        if cut is None:
            break
        breaks.add(cut)
        doc = _page_doc(html, writer, margins, breaks)
    return doc, (side, top, bottom)


def html_to_pdf(html: str, out_path: str | os.PathLike[str], title: str = "DeepYN forensic report",
                max_moves: int = 60) -> Path:
    """Print report HTML to an A4 PDF, atomically (temp file + rename).

    The pages are laid out here rather than by ``QTextDocument.print_`` so that headings stay with what
    they introduce (:func:`heading_cut_from_next`) and every page carries "page N of M".
    """
    _ensure_gui_app()
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        writer = QPdfWriter(str(tmp))
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageMargins(QMarginsF(0, 0, 0, 0), QPageLayout.Unit.Millimeter)
        writer.setResolution(PDF_RESOLUTION)
        writer.setTitle(title)
        writer.setCreator("DeepYN Viewer")
        doc, (side, _top, bottom) = layout_pages(html, writer, max_moves)
        page = doc.pageSize()
        pages = doc.pageCount()
        painter = QPainter(writer)
        try:
            foot = QFont(doc.defaultFont())
            foot.setPointSizeF(7.5)
            for i in range(pages):
                if i:
                    writer.newPage()
                painter.save()
                painter.translate(0, -i * page.height())
                doc.drawContents(painter, QRectF(0, i * page.height(), page.width(), page.height()))
                painter.restore()
                painter.setFont(foot)
                painter.setPen(QColor(90, 90, 90))
                painter.drawText(QRectF(side, page.height() - bottom * 0.7, page.width() - 2 * side, bottom * 0.4),
                                 int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                                 f"{title} — page {i + 1} of {pages}")
        finally:
            painter.end()
        del writer  # flushes and closes the file before the rename
    return out_path


# ---------------------------------------------------------------------------------------------- style


def style_from_overlay(options: OverlayOptions | None, result: AnalysisResult) -> AnnotateStyle:
    """The export style that matches what the viewer shows (its overlay options), else the default.

    With the viewer's default options this equals the CLI's default style, so a frame exported from
    the viewer and by ``deepyn export-frames`` is the same file.
    """
    if options is None:
        return AnnotateStyle.for_result(result)
    cmap = options.colormap.lower()
    return AnnotateStyle.for_result(
        result,
        show_mask=options.show_mask,
        show_boxes=options.show_boxes,
        opacity=float(options.opacity),
        mask_threshold=float(options.threshold),
        colormap=cmap if cmap in COLORMAPS else "red",
        mask_mode=options.mode,
    )


def current_frame_png(session: ShownClip, style: AnnotateStyle | None = None, raw: bool = False) -> tuple[str, bytes]:
    """File name and PNG bytes of the frame on screen, from the pixels the viewer decoded."""
    shown = session.shown
    if shown is None:
        raise DeepYNError("No frame is shown yet.")
    if raw:
        return frame_file_name(shown.index, raw=True), raw_frame_png(shown.rgb)
    result = session.analysis_result
    if result is None:
        raise DeepYNError("Analyse the clip first (an annotated frame needs the analysis); raw frames need none.")
    data = render_frame_png(shown.rgb, shown.index, shown.pts_s, result, style or AnnotateStyle.for_result(result))
    return frame_file_name(shown.index), data


def export_current_frame(
    session: ShownClip,
    out_path: str | os.PathLike[str],
    style: AnnotateStyle | None = None,
    raw: bool = False,
    allow_evidence_dir: bool = False,
) -> Path:
    """Write the shown frame (annotated or raw) after the custody checks; the GUI's "Export frame"."""
    out_path = Path(out_path)
    _name, data = current_frame_png(session, style, raw)
    evidence = session.path
    if not evidence:
        raise DeepYNError("Open a clip first.")
    expected = session.analysis_result.source.sha256 if session.analysis_result is not None else ""
    prepare_export(evidence, expected, out_path.parent, allow_evidence_dir, verify=bool(expected))
    check_output_file(out_path, inputs=[evidence], evidence=[evidence], allow_evidence_dir=allow_evidence_dir)
    return write_bytes_atomic(out_path, data)


# ---------------------------------------------------------------------------------------------- jobs


def export_worker(fn: Callable[[threading.Event, Callable[[str, int, int], None]], Any],
                  parent: QObject | None = None) -> Worker:
    """A :class:`~.jobs.Worker` for ``fn(cancel, progress)``; progress arrives as ``yielded((what, done, total))``."""
    return Worker(lambda cancel, emit: fn(cancel, lambda what, done, total: emit((what, done, total))), "export",
                  parent=parent)


def run_with_progress(parent: QWidget | None, title: str, fn: Callable[..., Any],
                      on_done: Callable[[Any], None] | None = None) -> Worker:
    """Start ``fn(cancel, progress)`` on an Worker behind a modal progress dialog with Cancel."""
    dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
    dialog.setWindowTitle(title)
    dialog.setMinimumDuration(300)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    job = export_worker(fn, parent)

    def progressed(item: tuple[str, int, int]) -> None:
        what, done, total = item
        dialog.setLabelText(f"{title}: {what}")
        dialog.setMaximum(max(total, 0))
        dialog.setValue(min(done, total) if total else 0)

    def close_dialog() -> bool:
        """Close the dialog without it counting as a cancel; True if the user had cancelled."""
        cancelled = job.cancel_requested
        dialog.canceled.disconnect(job.cancel)
        dialog.close()
        dialog.deleteLater()
        return cancelled

    def finished_ok(outcome: Any) -> None:
        close_dialog()
        if on_done:
            on_done(outcome)

    def finished_bad(message: str) -> None:
        if not close_dialog():
            QMessageBox.critical(parent, title, message)

    job.yielded.connect(progressed)
    job.succeeded.connect(finished_ok)
    job.failed.connect(finished_bad)
    job.cancelled.connect(lambda _partial: close_dialog())  # the user's own cancel: no message
    dialog.canceled.connect(job.cancel)
    job.start()
    return job


# ---------------------------------------------------------------------------------------------- dialogs


class ReportDialog(QDialog):
    """Who writes the report, notes, and what goes into the package."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export forensic report")
        form = QFormLayout(self)
        self.folder = QLineEdit()
        self.analyst = QLineEdit()
        self.notes = QPlainTextEdit()
        self.notes.setFixedHeight(90)
        self.frames = QComboBox()
        # key: each person's most suspicious frames + first/last of each flagged span (the CLI's default)
        self.frames.addItems(["key", "flagged", "all", "none"])
        self.frames.setToolTip("key: each person's 3 most suspicious frames and the first and last frame of "
                               "each flagged span; flagged: every frame at or above the threshold")
        self.pdf = QCheckBox("also print report.pdf")
        self.pdf.setChecked(True)
        self.video = QCheckBox("annotated video (H.264)")
        self.hashes = QCheckBox("per-frame hashes (TSV)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        form.addRow("Analyst", self.analyst)
        form.addRow("Notes", self.notes)
        form.addRow("Annotated frames", self.frames)
        form.addRow("", self.pdf)
        form.addRow("", self.video)
        form.addRow("", self.hashes)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Report folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def values(self) -> dict[str, Any]:
        return {
            "folder": self.folder.text().strip(),
            "analyst": self.analyst.text().strip(),
            "notes": self.notes.toPlainText().strip(),
            "frames": self.frames.currentText(),
            "pdf": self.pdf.isChecked(),
            "video": self.video.isChecked(),
            "frame_hashes": self.hashes.isChecked(),
        }


# ---------------------------------------------------------------------------------------------- menu


class ExportActions(QObject):
    """The Export menu's actions, bound to one clip's session (read through :class:`~.host.ShownClip`).

    ``window`` parents the dialogs and is watched for its close; ``style_getter`` returns the overlay
    options on screen (exports look like the viewer); ``show_status(text, ms)`` reports a finished export.
    """

    def __init__(self, window: QWidget, session: ShownClip, menu: QMenu,
                 style_getter: Callable[[], OverlayOptions | None] | None = None,
                 show_status: Callable[[str, int], None] | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.session = session
        self.menu = menu
        self._style_getter = style_getter
        self._show_status = show_status
        self.last_dir = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(
            Path.home())
        self.jobs: list[Worker] = []
        self.last_outcome: Any = None
        self.actions: dict[str, QAction] = {}
        window.installEventFilter(self)
        add = self._add
        add("frame", "Export current frame (annotated PNG)…", self.export_frame, "Ctrl+E")
        add("raw", "Export current frame (raw PNG)…", lambda: self.export_frame(raw=True), "Ctrl+Shift+E")
        add("flagged", "Export flagged frames…", self.export_flagged)
        menu.addSeparator()
        add("video", "Export annotated video…", self.export_video)
        add("data", "Export data (JSON + CSV)…", self.export_data)
        add("report", "Export report (HTML/PDF)…", self.export_report)
        menu.addSeparator()
        add("hashes", "Write per-frame hashes (TSV)…", self.export_frame_hashes)
        add("verify", "Verify evidence SHA-256", self.verify_evidence)

    def _add(self, key: str, text: str, slot: Callable[[], Any], shortcut: str | None = None) -> None:
        act = QAction(text, self.window)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(lambda _checked=False: self._guard(slot))
        self.menu.addAction(act)
        self.actions[key] = act

    def _guard(self, slot: Callable[[], Any]) -> None:
        try:
            slot()
        except DeepYNError as exc:
            QMessageBox.warning(self.window, "Export", str(exc))

    # -- helpers --------------------------------------------------------------------------------------
    def _result(self) -> AnalysisResult:
        result = self.session.analysis_result
        if result is None:
            raise DeepYNError("Analyse the clip first: this export needs a finished analysis.")
        return result

    def _evidence(self) -> str:
        path = self.session.path
        if not path:
            raise DeepYNError("Open a clip first.")
        return str(path)

    def style(self) -> AnnotateStyle:
        opts = self._style_getter() if self._style_getter else None
        return style_from_overlay(opts, self._result())

    def _allow_folder(self, folder: str) -> bool | None:
        """None = user said no; False = not the evidence folder; True = evidence folder, user agreed."""
        if not is_evidence_folder(folder, self._evidence()):
            return False
        answer = QMessageBox.question(
            self.window, "Evidence folder",
            "This is the folder that holds the evidence. Forensic practice keeps exports apart from the "
            "exhibit.\n\nWrite the export there anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return True if answer == QMessageBox.StandardButton.Yes else None

    def _ask_file(self, title: str, name: str, filt: str) -> tuple[Path, bool] | None:
        path, _ = QFileDialog.getSaveFileName(self.window, title, str(Path(self.last_dir) / name), filt)
        if not path:
            return None
        allow = self._allow_folder(str(Path(path).parent))
        if allow is None:
            return None
        self.last_dir = str(Path(path).parent)
        return Path(path), allow

    def _ask_folder(self, title: str) -> tuple[Path, bool] | None:
        folder = QFileDialog.getExistingDirectory(self.window, title, self.last_dir)
        if not folder:
            return None
        allow = self._allow_folder(folder)
        if allow is None:
            return None
        self.last_dir = folder
        return Path(folder), allow

    def _start(self, title: str, fn: Callable[..., Any], done_text: Callable[[Any], str]) -> Worker:
        def on_done(outcome: Any) -> None:
            self.last_outcome = outcome
            if self._show_status is not None:
                self._show_status(done_text(outcome), 8000)

        job = run_with_progress(self.window, title, fn, on_done)
        self.jobs = [j for j in self.jobs if _alive(j)] + [job]
        return job

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        """On the window's close: cancel running exports and join them, so no thread outlives it."""
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        for j in self.jobs:
            if _alive(j):
                j.cancel()
        return self.wait(timeout_ms)

    # -- actions --------------------------------------------------------------------------------------
    def export_frame(self, raw: bool = False) -> Worker | None:
        style = None if raw else self.style()
        name, data = current_frame_png(self.session, style, raw)  # pixels taken now, on the GUI thread
        picked = self._ask_file("Export frame", name, "PNG image (*.png)")
        if picked is None:
            return None
        out, allow = picked
        evidence = self._evidence()
        expected = self.session.analysis_result.source.sha256 if self.session.analysis_result else ""

        def work(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> Path:
            prepare_export(evidence, expected, out.parent, allow, verify=bool(expected),
                           progress=lambda d, t: progress("verifying evidence", d, t), cancel=cancel)
            check_output_file(out, inputs=[evidence], evidence=[evidence], allow_evidence_dir=allow)
            return write_bytes_atomic(out, data)

        return self._start("Export frame", work, lambda p: f"Wrote {p}")

    def export_flagged(self) -> Worker | None:
        from ..core.export.frames import export_frames

        result, style, evidence = self._result(), self.style(), self._evidence()
        wanted = flagged_frames(result)
        if not wanted:
            raise DeepYNError("No frame is flagged (no face scored at or above the model's threshold).")
        picked = self._ask_folder("Export flagged frames to folder")
        if picked is None:
            return None
        folder, allow = picked

        def work(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> list[Path]:
            return export_frames(result, evidence, wanted, folder, style, allow_evidence_dir=allow,
                                 on_progress=lambda d, t: progress("frames", d, t), cancel=cancel)

        return self._start("Export flagged frames", work, lambda ps: f"Wrote {len(ps)} frames to {folder}")

    def export_video(self) -> Worker | None:
        from ..core.export.video import export_annotated_video

        result, style, evidence = self._result(), self.style(), self._evidence()
        picked = self._ask_file("Export annotated video", Path(evidence).stem + "_annotated.mp4", "MP4 video (*.mp4)")
        if picked is None:
            return None
        out, allow = picked
        if out.suffix.lower() not in (".mp4", ".mov", ".mkv"):
            out = out.with_suffix(".mp4")

        def work(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> Any:
            return export_annotated_video(result, evidence, out, style, allow_evidence_dir=allow,
                                          on_progress=lambda d, t: progress("frames", d, t), cancel=cancel)

        return self._start("Export annotated video", work,
                           lambda v: f"Wrote {v.path} ({v.frames} frames)" + (" — INCOMPLETE" if v.problems else ""))

    def export_data(self) -> Worker | None:
        from ..core.export.data import write_csv, write_json, write_verdict_csv

        result, evidence = self._result(), self._evidence()
        picked = self._ask_folder("Export JSON and CSV to folder")
        if picked is None:
            return None
        folder, allow = picked

        def work(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> list[Path]:
            prepare_export(evidence, result.source.sha256, folder, allow,
                           progress=lambda d, t: progress("verifying evidence", d, t), cancel=cancel)
            return [write_json(result, folder / "analysis.json"), write_csv(result, folder / "analysis.csv"),
                    write_verdict_csv(result, folder / "verdict.csv")]

        return self._start("Export data", work, lambda ps: f"Wrote {', '.join(p.name for p in ps)} to {folder}")

    def export_report(self) -> Worker | None:
        from ..core.export.report import write_report

        result, style, evidence = self._result(), self.style(), self._evidence()
        dialog = ReportDialog(self.window)
        dialog.folder.setText(self.last_dir)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        v = dialog.values()
        if not v["folder"]:
            raise DeepYNError("Choose a folder for the report.")
        allow = self._allow_folder(v["folder"])
        if allow is None:
            return None
        self.last_dir = v["folder"]

        folder = Path(v["folder"])
        if folder.is_dir() and any(folder.iterdir()):
            # a package is never merged into other files: a new folder inside the chosen one
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            folder = folder / f"{Path(evidence).stem} report {stamp}"

        def work(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> Any:
            return write_report(
                result, evidence, folder, analyst=v["analyst"], notes=v["notes"], frames=v["frames"],
                video=v["video"], frame_hashes=v["frame_hashes"], pdf_writer=html_to_pdf if v["pdf"] else None,
                style=style, allow_evidence_dir=allow, on_progress=progress, cancel=cancel,
            )

        return self._start("Export report", work, lambda f: f"Wrote {f.html}" + (f" and {f.pdf.name}" if f.pdf else ""))

    def export_frame_hashes(self) -> Worker | None:
        from ..core.evidence import write_frame_hashes

        evidence = self._evidence()
        result = self.session.analysis_result
        picked = self._ask_file("Write per-frame hashes", Path(evidence).stem + "_framehash.tsv", "TSV (*.tsv)")
        if picked is None:
            return None
        out, allow = picked

        def work(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> Path:
            return write_frame_hashes(evidence, out, expected_sha256=result.source.sha256 if result else None,
                                      allow_evidence_dir=allow, on_progress=lambda d, t: progress("frames", d, t),
                                      cancel=cancel)

        return self._start("Frame hashes", work, lambda p: f"Wrote {p}")

    def verify_evidence(self) -> Worker | None:
        result, evidence = self._result(), self._evidence()

        def work(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> str:
            require_evidence(evidence, result.source.sha256,
                             progress=lambda d, t: progress("hashing", d, t), cancel=cancel)
            return result.source.sha256

        def done(sha: Any) -> None:
            QMessageBox.information(self.window, "Evidence verified",
                                    f"{Path(evidence).name} still has SHA-256\n{sha}\n(as recorded at analysis).")

        job = run_with_progress(self.window, "Verify evidence", work, done)
        self.jobs = [j for j in self.jobs if _alive(j)] + [job]
        return job

    def wait(self, timeout_ms: int = 60000) -> bool:
        """Wait for running export jobs (tests, and the window's close event)."""
        ok = True
        for j in list(self.jobs):
            if _alive(j):
                ok = j.join(timeout_ms / 1000) and ok
        return ok


def _alive(job: Worker) -> bool:
    return job.is_alive()


def install_export_actions(window: QMainWindow, session: ShownClip, menu: QMenu,
                           style_getter: Callable[[], OverlayOptions | None] | None = None) -> ExportActions:
    """Fill ``menu`` (the window's Export menu) with the export actions for ``session``'s clip.

    ``style_getter`` returns the overlay options on screen, so exports look like the viewer; finished
    exports are reported in the window's status bar.
    """
    return ExportActions(window, session, menu, style_getter,
                         show_status=lambda text, ms: window.statusBar().showMessage(text, ms))
