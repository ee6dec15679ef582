"""Exports from the viewer: same bytes as the CLI, custody prompts, video with progress, PDF that renders.

The viewer analyses the clip itself (its own worker, its own decode path) with the deterministic
colour backend; the CLI does the same headless. The exported PNGs must be byte-identical.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from qt_helpers import wait_shown

from deepyn_gui import cli
from deepyn_gui.core.export.frames import frame_file_name
from deepyn_gui.core.pipeline import AnalysisSettings
from deepyn_gui.core.video import VideoSource

try:
    from tests.exports_support import TINTED, ColourBackend, shared_analysis, write_test_clip
except ImportError:  # pragma: no cover
    from exports_support import TINTED, ColourBackend, shared_analysis, write_test_clip  # type: ignore[no-redef]

ANALYSIS_TIMEOUT_MS = 90_000


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPYN_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def analysed_window(qtbot, prefs, open_clip, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real main window that analysed an 8-frame clip with the colour backend (Haar detector)."""
    from deepyn_gui.qt.main_window import MainWindow
    from deepyn_gui.qt.session import Session

    (tmp_path / "evidence").mkdir()
    clip = write_test_clip(tmp_path / "evidence" / "clip.mp4", n=8)
    session = Session(backend_factory=lambda name, **kw: ColourBackend())
    win = MainWindow(prefs=prefs, session=session)
    qtbot.addWidget(win)
    win.show()
    open_clip(win, clip)
    session.settings = AnalysisSettings(detector="haar")
    with qtbot.waitSignal(session.analysisFinished, timeout=ANALYSIS_TIMEOUT_MS) as done:
        session.start_analysis()
    assert done.args[0] is not None and done.args[0].complete
    yield win, clip
    win.close()


def _save_as(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    import deepyn_gui.qt.export_actions as ea

    monkeypatch.setattr(ea.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))


def _run_action(qtbot, win, key: str) -> Any:  # type: ignore[no-untyped-def]
    acts = win.export_actions
    acts.last_outcome = None
    acts.actions[key].trigger()
    qtbot.waitUntil(lambda: acts.last_outcome is not None, timeout=60_000)
    assert acts.wait()
    return acts.last_outcome


def _cli_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    import deepyn_gui.commands.common as report_cmd  # analysis_for builds the backend

    monkeypatch.setattr(report_cmd, "backend_from_args", lambda args: ColourBackend())


def test_gui_and_cli_frame_exports_are_byte_identical(analysed_window, qtbot, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    win, clip = analysed_window
    idx = TINTED[1]
    win.session.seek(idx)
    wait_shown(qtbot, win, idx)
    gui = tmp_path / "gui"
    gui.mkdir()
    for raw in (False, True):
        _save_as(monkeypatch, gui / frame_file_name(idx, raw))
        _run_action(qtbot, win, "raw" if raw else "frame")
    _cli_backend(monkeypatch)
    assert cli.main(["export-frames", str(clip), "--frames", str(idx), "--out", str(tmp_path / "cli"), "--raw",
                     "--detector", "haar", "-q"]) == 0
    for raw in (False, True):
        name = frame_file_name(idx, raw)
        g, c = (gui / name).read_bytes(), (tmp_path / "cli" / name).read_bytes()
        assert g == c, f"{name}: GUI and CLI exports differ"
    # and the annotated one really shows the flagged face (not a blank or raw copy)
    assert (gui / frame_file_name(idx)).read_bytes() != (gui / frame_file_name(idx, True)).read_bytes()


def test_evidence_folder_needs_confirmation(analysed_window, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import deepyn_gui.qt.export_actions as ea

    win, clip = analysed_window
    asked: list[str] = []
    monkeypatch.setattr(ea.QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[1]) or ea.QMessageBox.StandardButton.No))
    _save_as(monkeypatch, clip.parent / "frame.png")
    win.export_actions.actions["frame"].trigger()
    assert asked == ["Evidence folder"]
    assert sorted(p.name for p in clip.parent.iterdir()) == ["clip.mp4"]


def test_annotated_video_from_the_viewer(analysed_window, qtbot, tmp_path: Path,  # type: ignore[no-untyped-def]
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    win, clip = analysed_window
    (tmp_path / "out").mkdir()
    _save_as(monkeypatch, tmp_path / "out" / "annotated.mp4")
    outcome = _run_action(qtbot, win, "video")
    with VideoSource(clip) as src, VideoSource(outcome.path) as dst:
        assert dst.info.frames == src.info.frames == 8


def test_report_from_the_viewer_with_pdf(analysed_window, qtbot, tmp_path: Path,  # type: ignore[no-untyped-def]
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import deepyn_gui.qt.export_actions as ea

    win, clip = analysed_window
    out = tmp_path / "report"

    def fill_and_accept(dialog) -> int:  # type: ignore[no-untyped-def]
        dialog.folder.setText(str(out))
        dialog.analyst.setText("Ann <A>")
        dialog.frames.setCurrentText("none")
        return ea.QDialog.DialogCode.Accepted

    monkeypatch.setattr(ea.ReportDialog, "exec", fill_and_accept)
    files = _run_action(qtbot, win, "report")
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF")
    assert "Ann &lt;A&gt;" in files.html.read_text()
    assert files.frames == [] and sorted(p.name for p in clip.parent.iterdir()) == ["clip.mp4"]


def test_export_without_analysis_explains_why(qtbot, prefs, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import deepyn_gui.qt.export_actions as ea
    from deepyn_gui.qt.main_window import MainWindow

    win = MainWindow(prefs=prefs)
    qtbot.addWidget(win)
    warned: list[str] = []
    monkeypatch.setattr(ea.QMessageBox, "warning", staticmethod(lambda *a, **k: warned.append(a[2])))
    assert win.menu_export.menuAction().isVisible() or not win.isVisible()
    assert {"frame", "raw", "flagged", "video", "data", "report", "hashes", "verify"} <= set(win.export_actions.actions)
    win.export_actions.actions["report"].trigger()
    assert warned and "Analyse the clip first" in warned[0]
    win.close()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) not installed")
def test_report_pdf_renders(tmp_path: Path) -> None:
    from deepyn_gui.core.export.report import write_report
    from deepyn_gui.qt.export_actions import html_to_pdf

    clip, result = shared_analysis()
    files = write_report(result, clip, tmp_path / "pkg", frames="none", pdf_writer=html_to_pdf,
                         analyst="Test Analyst", notes="Sample report made from the synthetic astronaut test clip.")
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF")
    assert files.pdf.name in (files.folder / "SHA256SUMS").read_text()
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", str(files.pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    page = next(tmp_path.glob("page*.png"))
    img = cv2.imread(str(page))
    assert img is not None and img.shape[0] > img.shape[1] > 300  # an A4 portrait page
    ink = (img.mean(axis=2) < 128).mean()
    assert 0.01 < ink < 0.5, f"page 1 looks blank or black (ink {ink:.3f})"
    colourful = (img.max(axis=2).astype(int) - img.min(axis=2)) > 60
    assert colourful.mean() > 0.002  # the verdict banner / timeline are in colour, not only text
    assert np.isfinite(ink)


def _pdf_writer(path: Path) -> Any:
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter

    w = QPdfWriter(str(path))
    w.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    w.setPageMargins(QMarginsF(0, 0, 0, 0), QPageLayout.Unit.Millimeter)
    w.setResolution(300)
    return w


def test_pdf_keeps_each_heading_on_the_page_of_its_image(tmp_path: Path) -> None:
    """QTextDocument alone lets a heading end a page with its image on the next (issue 15); the PDF
    layout moves such a heading. Fillers of many lengths put the headings at every height of a page."""
    from deepyn_gui.core.export.annotate import encode_png
    from deepyn_gui.core.export.report import data_uri_png
    from deepyn_gui.qt.export_actions import _ensure_gui_app, _page_doc, heading_cut_from_next, layout_pages

    _ensure_gui_app()
    png = encode_png(np.full((256, 256, 3), 90, np.uint8))
    writer = _pdf_writer(tmp_path / "x.pdf")
    cut_without_fix = 0
    for filler in range(4, 40, 3):
        body = "".join(f"<p>Filler paragraph {i} with enough words to fill one line.</p>" for i in range(filler))
        for k in range(4):
            body += f'<h3>Person 1 — frame {k}</h3><p><img src="{data_uri_png(png)}" width="380"></p>'
        html = f"<html><body>{body}</body></html>"
        doc, _margins = layout_pages(html, writer)
        assert heading_cut_from_next(doc) is None, filler
        plain = _page_doc(html, writer, (68.0, 60.0, 68.0), set())
        cut_without_fix += heading_cut_from_next(plain) is not None
    assert cut_without_fix > 0  # the test does put headings where the plain layout cuts them off


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
def test_report_pdf_has_no_raw_markdown_and_few_pages(tmp_path: Path) -> None:
    import unicodedata

    from deepyn_gui.core.export.report import write_report
    from deepyn_gui.qt.export_actions import html_to_pdf

    clip, result = shared_analysis()
    files = write_report(result, clip, tmp_path / "pkg", pdf_writer=html_to_pdf)
    text = subprocess.run(["pdftotext", str(files.pdf), "-"], capture_output=True, text=True, check=True).stdout
    text = unicodedata.normalize("NFKC", text)
    assert "**" not in text and "](" not in text
    assert text.count("\f") <= 12
    assert "Not analysed" in text and "page 1 of" in text
