"""Analysis from the window: live curves, overlay, verdict, cancel, close mid-run, errors, GUI stalls.

Uses the tiny untrained ONNX U-YNet from ``tests/conftest.py`` (real inference, fast) on clips of the
public-domain astronaut portrait, so the face detector finds a real face.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from qt_helpers import wait_shown, worker_threads

from deepyn_gui.core.errors import BackendError
from deepyn_gui.core.pipeline import AnalysisSettings
from deepyn_gui.core.results import ModelInfo
from deepyn_gui.core.verdict import verdict_words
from deepyn_gui.core.video import VideoSource
from deepyn_gui.qt.timeline import STATE_LANES

ANALYSIS_TIMEOUT_MS = 90_000  # generous: the test machine is small and shared


def _use_model(win, model) -> None:  # type: ignore[no-untyped-def]
    win.set_backend("onnx")
    win.set_model_path(str(model))
    win.session.threads = 1


def test_analysis_streams_curves_overlay_and_verdict(window, open_clip, qtbot, face_clip, tiny_onnx_model,
                                                     stall_probe):  # type: ignore[no-untyped-def]
    open_clip(window, face_clip)
    _use_model(window, tiny_onnx_model)
    batches: list[int] = []
    window.session.resultsAdded.connect(lambda frames: batches.append(len(frames)))
    stall_probe.start()
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.session.analysisFinished, timeout=ANALYSIS_TIMEOUT_MS) as done:
        window.act_analyze.trigger()
        assert window.session.analysis_running
        assert window.progress_bar.isVisible() and window.cancel_button.isVisible()
    elapsed = time.perf_counter() - t0
    stall_probe.stop()
    print(f"\nanalysis of 12 frames: {elapsed:.2f} s; longest GUI-thread stall {stall_probe.longest_s * 1000:.1f} ms "
          f"(p99 {stall_probe.percentile(99) * 1000:.1f} ms) in {len(batches)} result batches")
    assert stall_probe.longest_s < 2.0, "the GUI thread was blocked for seconds during analysis"

    result = done.args[0]
    s = window.session
    assert result is not None and result.complete and s.analysis_state == "done"
    assert len(s.results) == 12 and sum(batches) == 12
    assert not window.progress_bar.isVisible()
    # one curve per person, holding exactly the scores of that person's ok faces
    ok = [(fr.index, f) for fr in result.frames for f in fr.faces if f.state == "ok"]
    assert ok, "the detector found no face on the astronaut clip"
    tracks = sorted({f.track for _, f in ok})
    assert sorted(window.timeline.curves) == tracks
    for t in tracks:
        x, y = window.timeline.curves[t].getData()
        expected = {i: f.fake_score for i, f in ok if f.track == t}
        got = {int(xi): float(yi) for xi, yi in zip(x, y) if np.isfinite(yi)}
        assert got.keys() == expected.keys()
        assert all(abs(got[i] - expected[i]) < 1e-6 for i in got)
    # verdict panel: the verdict computed by core, and an untrained model said plainly
    panel = window.verdict_panel
    assert panel.verdict is result.verdict
    assert not result.model.trained
    assert panel.untrained_banner.isVisibleTo(panel)
    assert "UNTRAINED" in panel.text()
    assert result.verdict.aggregator in panel.text() and result.model.name in panel.text()
    if result.verdict.fake_score is not None:
        assert f"{result.verdict.fake_score:.2f}" in panel.text()
    # the threshold line follows the model
    assert window.timeline.threshold_line.value() == pytest.approx(result.model.threshold)

    # overlay on a frame with a face: masks, boxes and labels; the frame pixels are untouched
    index, face = ok[len(ok) // 2]
    window.session.seek(index)
    wait_shown(qtbot, window, index)
    frame = window.session.shown
    with VideoSource(face_clip) as src:
        reference = src.frame_at(index).rgb
    faces_here = [f for f in frame.result.faces if f.mask_blob is not None]
    ov = window.overlay
    assert len(ov.mask_items) == len(faces_here) >= 1
    assert f"P{face.track}  {face.fake_score:.2f}" in ov.labels()
    assert len(ov.box_items) == len(frame.result.faces)
    window.overlay_controls.threshold.setValue(0)  # everything the model marked at all
    assert ov.options.threshold == 0.0
    alpha = ov.mask_items[0].image[..., 3]
    assert (alpha > 0).mean() > 0.5
    opaque_fill = int((alpha > 0).sum())
    window.overlay_controls.mode.setCurrentIndex(window.overlay_controls.mode.findData("contour"))
    alpha_contour = ov.mask_items[0].image[..., 3]
    assert 0 < int((alpha_contour > 0).sum()) < opaque_fill
    window.overlay_controls.opacity.setValue(80)
    assert ov.mask_items[0].opacity() == pytest.approx(0.8)
    np.testing.assert_array_equal(window.player.frame_view.displayed_rgb(), reference)
    qtbot.keyClick(window, Qt.Key.Key_M)  # mask off
    assert ov.mask_items == [] and len(ov.box_items) >= 1
    qtbot.keyClick(window, Qt.Key.Key_B)  # boxes off
    assert ov.box_items == [] and ov.labels() == []
    np.testing.assert_array_equal(window.player.frame_view.displayed_rgb(), reference)
    assert "score" in window.player.frame_state.text()


def test_cancel_stops_the_run_promptly(window, open_clip, qtbot, long_face_clip, tiny_onnx_model):  # type: ignore[no-untyped-def]
    """Cancel stops the analysis part-way and keeps what was analysed. The bound is a hang check (a run that
    finished its clip, or a worker stuck on a full queue, takes far longer), not a speed figure: the latency
    itself is measured by bench/bench_gui.py ("cancel"), since a shared 2-core machine can stretch any
    sub-second bound."""
    open_clip(window, long_face_clip)
    _use_model(window, tiny_onnx_model)
    window.act_analyze.trigger()
    qtbot.waitUntil(lambda: len(window.session.results) >= 3, timeout=ANALYSIS_TIMEOUT_MS)
    analysed_before = len(window.session.results)
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.session.analysisFinished, timeout=5000) as done:
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    latency = time.perf_counter() - t0
    print(f"\ncancel -> finished on the GUI thread: {latency * 1000:.0f} ms "
          f"(worker: {window.session.last_cancel_latency_s * 1000:.0f} ms)")
    assert latency < 3.0
    result = done.args[0]
    assert window.session.analysis_state == "cancelled"
    assert result is not None and not result.complete and "cancel" in result.stop_reason
    assert analysed_before <= len(result.frames) < 150
    assert len(window.session.results) == len(result.frames)  # what was analysed stays on the timeline
    assert window.timeline.curves
    assert "cancelled" in window.verdict_panel.text()
    assert window.act_analyze.isEnabled() and not window.cancel_button.isVisible()
    qtbot.waitUntil(lambda: not worker_threads() - {t for t in worker_threads() if t.name == "deepyn-gui-decode"},
                    timeout=2000)


def test_limits_are_shown_beside_the_first_provisional_score(window, open_clip, qtbot, long_face_clip):  # type: ignore[no-untyped-def]
    """While the scores stream in, the verdict panel already says what is not analysed and what the
    bundled model's card says it misses; before, both appeared only after the last frame."""
    from deepyn_gui.backends import default_model_path

    open_clip(window, long_face_clip)
    _use_model(window, default_model_path())
    window.act_analyze.trigger()
    qtbot.waitUntil(lambda: len(window.session.results) >= 1, timeout=ANALYSIS_TIMEOUT_MS)
    running = window.session.analysis_state == "running"
    text = window.verdict_panel.coverage.text()
    window.session.cancel_analysis()
    qtbot.waitUntil(lambda: window.session.analysis_state in ("cancelled", "done"), timeout=ANALYSIS_TIMEOUT_MS)
    assert running, "the clip was analysed before the panel could be read mid-run"
    assert "Not analysed:" in text and "audio track" in text
    assert "Known limits of this model (its card):" in text and "generated talking head" in text



def test_the_clips_caution_shows_while_the_scores_stream_in(window, open_clip, qtbot, long_face_clip):  # type: ignore[no-untyped-def]
    """The test clip's faces are smaller than the model's input: the panel says so beside the provisional
    score, not only after the last frame."""
    from deepyn_gui.backends import default_model_path

    open_clip(window, long_face_clip)
    _use_model(window, default_model_path())
    window.act_analyze.trigger()
    seen: dict[str, object] = {}

    def caution_or_done() -> bool:
        text = window.verdict_panel.coverage.text()
        if "Caution for this clip:" in text and "running" not in seen:
            # mid-run: no final result yet (the finished result brings its own caution as well)
            seen["running"] = window.session.analysis_state == "running" and window.session.analysis_result is None
            seen["text"] = text
        return "text" in seen or window.session.analysis_state in ("done", "cancelled", "failed")

    qtbot.waitUntil(caution_or_done, timeout=ANALYSIS_TIMEOUT_MS)
    window.session.cancel_analysis()
    qtbot.waitUntil(lambda: window.session.analysis_state in ("cancelled", "done"), timeout=ANALYSIS_TIMEOUT_MS)
    assert seen.get("running"), "no caution was shown while the analysis ran"
    text = str(seen["text"])
    assert "The faces in this clip are small" in text and "Not analysed:" in text and "Known limits" in text

def test_closing_mid_run_leaves_no_thread(qtbot, prefs, open_clip, long_face_clip, tiny_onnx_model):  # type: ignore[no-untyped-def]
    from deepyn_gui.qt.main_window import MainWindow

    assert not worker_threads()
    win = MainWindow(prefs=prefs)
    qtbot.addWidget(win)
    win.show()
    open_clip(win, long_face_clip)
    _use_model(win, tiny_onnx_model)
    win.session.start_analysis()
    qtbot.waitUntil(lambda: len(win.session.results) >= 1, timeout=ANALYSIS_TIMEOUT_MS)
    assert any(t.name.startswith("deepyn-gui-analysis") for t in worker_threads())
    t0 = time.perf_counter()
    win.close()
    took = time.perf_counter() - t0
    print(f"\nclose mid-run joined every worker in {took * 1000:.0f} ms")
    assert worker_threads() == set()
    assert win.session.threads_alive() == []
    assert took < 5.0


class _FailingBackend:
    """A backend whose device fails on every batch: the GUI must show the error, never a score."""

    name = "failing"
    batch_size = 4

    def __init__(self, **_: Any) -> None:
        self.closed = False

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(name="fake-model", sha256="0" * 64, trained=True)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": "0"}

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise BackendError("the device stopped responding")

    def close(self) -> None:
        self.closed = True


def test_backend_error_is_shown_as_an_error_state(qtbot, prefs, open_clip, face_clip):  # type: ignore[no-untyped-def]
    from deepyn_gui.qt.main_window import MainWindow
    from deepyn_gui.qt.session import Session

    session = Session(backend_factory=lambda name, **kw: _FailingBackend(**kw))
    win = MainWindow(prefs=prefs, session=session)
    qtbot.addWidget(win)
    win.show()
    open_clip(win, face_clip)
    session.settings = replace(AnalysisSettings(), max_frames=4, batch_size=4)
    with qtbot.waitSignal(session.analysisFinished, timeout=ANALYSIS_TIMEOUT_MS) as done:
        session.start_analysis()
    result = done.args[0]
    assert result.verdict.label == "error" and result.verdict.fake_score is None
    errors = win.timeline.state_frames("error")
    assert errors == [fr.index for fr in result.frames if any(f.state == "error" for f in fr.faces)]
    assert errors, "the failing backend produced no error state"
    assert win.timeline.curves == {}  # no number was invented for a failed frame
    lane = win.timeline.state_items["error"].getData()[1]
    assert np.all(lane == STATE_LANES["error"]) and STATE_LANES["error"] < 0
    text = win.verdict_panel.text()
    assert verdict_words("error") in text and "device stopped responding" in text
    win.session.seek(errors[0])
    wait_shown(qtbot, win, errors[0])
    assert "error" in win.overlay.labels()[0]
    win.close()


def test_unavailable_backend_reports_why(window, open_clip, qtbot, face_clip):  # type: ignore[no-untyped-def]
    from deepyn_gui.backends import list_backends

    unavailable = [(spec, a) for spec, a in list_backends() if not a.available]
    if not unavailable:
        pytest.skip("every backend is available here")
    spec, avail = unavailable[0]
    action = window.backend_actions[spec.name]
    assert not action.isEnabled()
    assert avail.reason in action.toolTip()
    open_clip(window, face_clip)
    window.session.backend_name = spec.name  # e.g. chosen on another machine and remembered
    with qtbot.waitSignal(window.session.analysisFinished, timeout=30000):
        window.session.start_analysis()
    assert window.session.analysis_state == "stopped"
    box = window.last_message_box
    assert box is not None and box.isVisible() and "unavailable" in box.text()


def test_no_face_frames_are_marked_not_scored(window, open_clip, qtbot, pattern_clip, tiny_onnx_model):  # type: ignore[no-untyped-def]
    open_clip(window, pattern_clip)
    _use_model(window, tiny_onnx_model)
    window.session.settings = replace(AnalysisSettings(), max_frames=8)
    with qtbot.waitSignal(window.session.analysisFinished, timeout=ANALYSIS_TIMEOUT_MS) as done:
        window.session.start_analysis()
    result = done.args[0]
    assert result.verdict.label == "no_face"
    assert window.timeline.state_frames("no_face") == list(range(8))
    assert window.timeline.curves == {}
    lane = window.timeline.state_items["no_face"].getData()[1]
    assert np.all(lane == STATE_LANES["no_face"])
    assert "NO FACE FOUND" in window.verdict_panel.text()
    wait_shown(qtbot, window, 0)
    assert window.player.frame_state.text() == "no face on this frame"
    window.session.seek(20)  # beyond max_frames: not analysed, and says so
    wait_shown(qtbot, window, 20)
    assert window.player.frame_state.text() == "not analysed"


def test_backend_menu_lists_every_backend(qtbot, prefs):  # type: ignore[no-untyped-def]
    from deepyn_gui.core.inference import Availability
    from deepyn_gui.qt.main_window import MainWindow

    class Spec:
        def __init__(self, name: str, description: str) -> None:
            self.name, self.description = name, description

    entries = [(Spec("onnx", "ONNX Runtime"), Availability(True)),
               (Spec("vart", "VCK5000"), Availability(False, "no VCK5000 card found"))]
    prefs.backend = "vart"  # remembered, but unavailable here: the first available one is chosen
    win = MainWindow(prefs=prefs, list_backends=lambda: entries)
    qtbot.addWidget(win)
    assert set(win.backend_actions) == {"onnx", "vart"}
    assert win.backend_actions["onnx"].isEnabled() and win.backend_actions["onnx"].isChecked()
    assert not win.backend_actions["vart"].isEnabled()
    assert "no VCK5000 card found" in win.backend_actions["vart"].toolTip()
    assert win.session.backend_name == "onnx"
    win.close()
