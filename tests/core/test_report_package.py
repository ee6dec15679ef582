"""Issue 13: a report package appears at its target only when complete; a failure leaves nothing there."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from deepyn_gui.core.errors import Cancelled, ExportError
from deepyn_gui.core.export import report as report_mod
from deepyn_gui.core.export.report import write_report

try:
    from tests.exports_support import shared_analysis
except ImportError:  # pragma: no cover
    from exports_support import shared_analysis  # type: ignore[no-redef]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_package_is_renamed_into_place_complete(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    seen: list[bool] = []

    def watch(what: str, done: int, total: int) -> None:  # while writing, the target does not exist yet
        seen.append((tmp_path / "pkg").exists())

    files = write_report(result, clip, tmp_path / "pkg", frames="flagged", on_progress=watch)
    assert seen and not any(seen)
    assert files.folder == tmp_path / "pkg" and files.html == tmp_path / "pkg" / "report.html"
    assert (tmp_path / "pkg" / "SHA256SUMS").is_file() and all(p.is_file() for p in files.frames)
    assert _leftovers(tmp_path) == ["pkg"]  # no staging folder left beside it


@pytest.mark.parametrize("how", ["error", "cancel"])
def test_a_failure_midway_leaves_nothing_at_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       how: str) -> None:
    clip, result = shared_analysis()
    cancel = threading.Event()
    real = report_mod.report_html

    def fail_late(*a: object, **k: object) -> str:  # data and frames are written by now
        if how == "cancel":
            cancel.set()
            return real(*a, **k)  # type: ignore[arg-type]
        raise ExportError("disk full (simulated)")

    monkeypatch.setattr(report_mod, "report_html", fail_late)
    (tmp_path / "deeper").mkdir()
    target = tmp_path / "deeper" / "new" / "pkg"
    with pytest.raises(Cancelled if how == "cancel" else ExportError):
        write_report(result, clip, target, frames="all", cancel=cancel,
                     pdf_writer=(lambda html, path: None) if how == "cancel" else None)
    assert _leftovers(tmp_path / "deeper") == []  # no package, no staging folder, no empty "new/"


def test_a_non_empty_target_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "notes.txt").write_text("the analyst's own file")
    with pytest.raises(ExportError, match="not empty"):
        write_report(result, clip, tmp_path / "pkg")
    assert _leftovers(tmp_path / "pkg") == ["notes.txt"] and _leftovers(tmp_path) == ["pkg"]
    (tmp_path / "empty").mkdir()
    assert write_report(result, clip, tmp_path / "empty", frames="none").html == tmp_path / "empty" / "report.html"
