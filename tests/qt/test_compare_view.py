"""The backend comparison window: both overlays, both score curves, live charts, greyed-out backends."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from deepyn_gui.qt.compare_view import BackendChoice, CompareWindow, backend_catalogue


@pytest.fixture
def no_vitis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure xir/vart are not importable, as on a machine without Vitis AI."""
    monkeypatch.setitem(sys.modules, "xir", None)
    monkeypatch.setitem(sys.modules, "vart", None)


def _run(qtbot, win: CompareWindow, timeout: int = 90_000):  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(win.finished, timeout=timeout) as blocker:
        assert win.start()
    return blocker.args[0]


def test_two_cpu_backends_side_by_side(qtbot, face_clip: Path, tiny_onnx_model: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = CompareWindow(clip_path=str(face_clip))
    qtbot.addWidget(win)
    win.set_choices(BackendChoice("onnx", str(tiny_onnx_model), threads=1),
                    BackendChoice("onnx", str(tiny_onnx_model), threads=2))
    win.batch.setValue(4)
    result = _run(qtbot, win)
    assert result is not None and result.complete
    assert result.labels == ["onnx@1t", "onnx"]
    # both panes show the last frame with their own overlay and figures
    for pane in win.panes:
        shown = pane.frame_view.displayed_rgb()
        assert shown is not None and shown.shape == (240, 320, 3)
        assert pane.overlay.labels() and pane.overlay.labels()[0].startswith("P1 ")
        assert "crops/s" in pane.figures.text() and "p95" in pane.figures.text()
        assert pane.caption.text().startswith("frame 11:")
    np.testing.assert_array_equal(win.panes[0].frame_view.displayed_rgb(), win.panes[1].frame_view.displayed_rgb())
    # both score curves and a point per batch in every live chart
    for label in result.labels:
        assert win.charts.points(label, "score") == 12
        for key in ("crops_per_s", "p50", "p95", "fps"):
            assert win.charts.points(label, key) == 3
    assert "mean |Δ fake score| 0.0000" in win.agreement.text() and "verdicts agree" in win.agreement.text()
    # exports: the same files as the CLI
    assert all(b.isEnabled() for b in win.export_buttons.values())
    data = json.loads(win.export("JSON", tmp_path / "c.json").read_text())
    assert [b["label"] for b in data["backends"]] == ["onnx@1t", "onnx"]
    assert win.export("PNG", tmp_path / "c.png").stat().st_size > 1000
    assert win.export("CSV", tmp_path / "c.csv").read_text().count("\n") == 13


def test_unavailable_backend_is_greyed_out_with_the_reason(qtbot, no_vitis: None, face_clip: Path,  # type: ignore[no-untyped-def]
                                                            tiny_onnx_model: Path) -> None:
    names = {n: (ok, reason) for n, _d, ok, reason in backend_catalogue()}
    assert names["vart"] == (False, "xir/vart not importable: install Vitis AI 3.0 runtime + XRT")
    win = CompareWindow(clip_path=str(face_clip))
    qtbot.addWidget(win)
    combo = win.selectors[1].combo
    item = combo.model().item(combo.findText("vart"))
    assert not item.isEnabled() and "xir/vart not importable" in item.toolTip()
    win.set_choices(BackendChoice("onnx", str(tiny_onnx_model), threads=1),
                    BackendChoice("vart", "YNET.xmodel", threads=2))
    win.batch.setValue(6)
    result = _run(qtbot, win)
    a, b = win.panes
    assert b.label is None and not b.title.isEnabled()
    assert "unavailable" in b.title.text() and "xir/vart not importable" in b.reason.text()
    assert b.stack.currentWidget() is b.reason and "no figures" in b.figures.text()
    assert b.frame_view.displayed_rgb() is None  # never a frame or a number for it
    assert "crops/s" in a.figures.text()
    assert result.labels == ["onnx@1t"] and result.unavailable[0]["label"] == "vart"
    assert "needs two available backends" in win.agreement.text()


def test_stop_cancels_and_joins(qtbot, long_face_clip: Path, tiny_onnx_model: Path) -> None:  # type: ignore[no-untyped-def]
    win = CompareWindow(clip_path=str(long_face_clip))
    qtbot.addWidget(win)
    win.set_choices(BackendChoice("onnx", str(tiny_onnx_model), threads=1),
                    BackendChoice("onnx", str(tiny_onnx_model), threads=1))
    win.batch.setValue(2)
    with qtbot.waitSignal(win.finished, timeout=60_000) as blocker:
        win.start()
        qtbot.waitUntil(lambda: win.charts.points("onnx@1t", "score") >= 2, timeout=30_000)
        assert win.stop_button.isEnabled() and not win.start_button.isEnabled()
        win.stop()
    result = blocker.args[0]
    assert result is not None and not result.complete and result.stop_reason == "cancelled by the user"
    assert len(result.frames[0]) < 150
    assert win.shutdown(5.0) and not win.running
    assert win.start_button.isEnabled()


def test_window_without_clip_cannot_start(qtbot) -> None:  # type: ignore[no-untyped-def]
    win = CompareWindow()
    qtbot.addWidget(win)
    assert not win.start_button.isEnabled() and not win.start()
    assert win.isWindow()


def test_main_window_opens_the_comparison_on_its_clip(qtbot, window, face_clip: Path) -> None:  # type: ignore[no-untyped-def]
    window.session.open(str(face_clip))
    qtbot.waitUntil(lambda: window.session.path == str(face_clip), timeout=10_000)
    assert window.act_compare in window.menu_analysis.actions()
    window.act_compare.trigger()
    wins = window.findChildren(CompareWindow)
    assert len(wins) == 1 and wins[0].isWindow() and wins[0].isVisible()
    assert wins[0].clip_path == str(face_clip) and wins[0].start_button.isEnabled()
    wins[0].close()
