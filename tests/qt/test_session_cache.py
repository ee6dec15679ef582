"""Evidence SHA-256 in the viewer and the session cache.

The clip is hashed on open (on a worker, shown with a copyable full value), re-verified against the
hash recorded when it was last analysed, and keys the session cache: a clip analysed before with the
same model and settings is shown again without building a backend; Re-analyse runs it anyway; a file
whose bytes changed is announced loudly and its old results are not shown. Every test has its own
``DEEPYN_DATA_DIR`` (autouse fixture in conftest.py).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QGuiApplication
from qt_helpers import wait_shown, worker_threads

from deepyn_gui.core.errors import Cancelled
from deepyn_gui.core.pipeline import AnalysisSettings

ANALYSIS_TIMEOUT_MS = 60_000
FRAMES = 6


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CountingFactory:
    """The real backend registry, counting how many backends were built (a cache hit builds none)."""

    def __init__(self) -> None:
        self.created = 0

    def __call__(self, name: str, model_path: str | None = None, **options: Any) -> Any:
        from deepyn_gui.backends import create_backend

        self.created += 1
        return create_backend(name, model_path=model_path, **options)


def _window(qtbot, prefs, model: Path, factory: CountingFactory | None = None):  # type: ignore[no-untyped-def]
    from deepyn_gui.qt.main_window import MainWindow
    from deepyn_gui.qt.session import Session

    win = MainWindow(prefs=prefs, session=Session(backend_factory=factory))
    qtbot.addWidget(win)
    win.set_backend("onnx")
    win.set_model_path(str(model))
    win.session.threads = 1
    win.session.settings = replace(AnalysisSettings(), max_frames=FRAMES)
    win.show()
    return win


def _wait_hashed(qtbot, win, timeout: int = 10_000) -> str:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: win.session.evidence.state not in ("", "hashing"), timeout=timeout)
    return win.session.evidence.state


def _analyse(qtbot, win, reanalyse: bool = False):  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(win.session.analysisFinished, timeout=ANALYSIS_TIMEOUT_MS) as done:
        (win.act_reanalyse if reanalyse else win.act_analyze).trigger()
    return done.args[0]


def test_hash_shown_after_open_equals_hashlib(window, open_clip, qtbot, face_clip):  # type: ignore[no-untyped-def]
    open_clip(window, face_clip)
    assert _wait_hashed(qtbot, window) == "hashed"  # computed; never analysed before
    expected = _sha(face_clip)
    st = window.session.evidence
    assert st.sha256 == expected and st.path == str(face_clip)
    bar = window.evidence_bar
    assert bar.status_label.text() == f"SHA-256: {expected[:12]}… (computed on open)"
    assert bar.sha_label.text() == bar.status_label.text() and bar.sha_label.isVisible()
    assert expected in bar.status_label.toolTip() and expected in bar.sha_label.toolTip()
    assert bar.status_label in window.statusBar().findChildren(type(bar.status_label))
    assert not bar.banner.isVisible()
    bar.copy_action.trigger()  # the right-click "Copy SHA-256"
    assert QGuiApplication.clipboard().text() == expected


def test_analyse_close_reopen_shows_cached_results_without_a_backend(qtbot, prefs, open_clip, face_clip,
                                                                     tiny_onnx_model):  # type: ignore[no-untyped-def]
    factory = CountingFactory()
    win = _window(qtbot, prefs, tiny_onnx_model, factory)
    open_clip(win, face_clip)
    sha = _sha(face_clip)
    assert _wait_hashed(qtbot, win) == "hashed"
    first = _analyse(qtbot, win)
    assert first.complete and factory.created == 1
    assert first.source.sha256 == sha  # the hash computed on open is the one recorded in the result
    assert win.session.results_from_cache is None
    qtbot.waitUntil(lambda: win.session.last_cache_save is not None, timeout=10_000)
    win.close()

    factory2 = CountingFactory()
    win2 = _window(qtbot, prefs, tiny_onnx_model, factory2)
    with qtbot.waitSignal(win2.session.cacheLoaded, timeout=15_000) as loaded:
        open_clip(win2, face_clip)
    hit = loaded.args[0]
    s = win2.session
    assert factory2.created == 0 and s._runs == []  # no backend built, no analysis worker ran
    assert s.evidence.state == "verified" and s.evidence.sha256 == sha
    assert "(verified)" in win2.evidence_bar.status_label.text()
    # the results on screen are the analysis made before, with the path of this opening
    assert s.analysis_result is hit.result and s.analysis_state == "done"
    assert hit.result.source.sha256 == sha and hit.result.source.path == str(face_clip)
    assert sorted(s.results) == [fr.index for fr in first.frames]
    # (as saved: analysis JSON keeps scores to 6 decimals, so compare serialised forms; masks exactly)
    assert s.verdict is hit.result.verdict and win2.verdict_panel.verdict is hit.result.verdict
    assert hit.result.verdict.to_json() == first.verdict.to_json()
    assert [fr.to_json() for fr in hit.result.frames] == [fr.to_json() for fr in first.frames]
    assert [f.mask_blob for fr in hit.result.frames for f in fr.faces] == \
           [f.mask_blob for fr in first.frames for f in fr.faces]
    ok = [(fr.index, f) for fr in first.frames for f in fr.faces if f.state == "ok"]
    assert ok, "the detector found no face on the astronaut clip"
    assert sorted(win2.timeline.curves) == sorted({f.track for _, f in ok})
    index = ok[0][0]
    s.seek(index)
    wait_shown(qtbot, win2, index)
    assert s.shown.result is s.results[index]
    assert len(win2.overlay.box_items) == len(s.shown.result.faces) >= 1
    note = win2.evidence_bar.note
    assert note.isVisible() and note.text().startswith("Loaded from cache (analysed ")
    assert "Loaded from cache" in win2.state_label.text()

    # Analyze again: the cached results already answer it, nothing runs
    assert not s.start_analysis() and factory2.created == 0 and not s.analysis_running
    # Re-analyse ignores the cache and runs the model again, with the same numbers
    again = _analyse(qtbot, win2, reanalyse=True)
    assert factory2.created == 1 and again is not hit.result and s.results_from_cache is None
    assert not note.isVisible()
    assert [fr.to_json() for fr in again.frames] == [fr.to_json() for fr in first.frames]
    win2.close()
    assert worker_threads() == set()


def test_changed_evidence_is_announced_and_old_results_are_not_loaded(qtbot, prefs, open_clip, face_clip,
                                                                      pattern_clip, tiny_onnx_model,
                                                                      tmp_path: Path):  # type: ignore[no-untyped-def]
    evidence = tmp_path / "exhibit" / "clip.mp4"
    evidence.parent.mkdir()
    shutil.copyfile(face_clip, evidence)
    old_sha = _sha(evidence)
    factory = CountingFactory()
    win = _window(qtbot, prefs, tiny_onnx_model, factory)
    open_clip(win, evidence)
    _wait_hashed(qtbot, win)
    assert _analyse(qtbot, win).source.sha256 == old_sha
    qtbot.waitUntil(lambda: win.session.last_cache_save is not None, timeout=10_000)
    win.close()

    shutil.copyfile(pattern_clip, evidence)  # same path, other bytes (still a valid video)
    new_sha = _sha(evidence)
    assert new_sha != old_sha
    factory2 = CountingFactory()
    win2 = _window(qtbot, prefs, tiny_onnx_model, factory2)
    loaded: list[Any] = []
    win2.session.cacheLoaded.connect(loaded.append)
    open_clip(win2, evidence)
    assert _wait_hashed(qtbot, win2) == "changed"
    st = win2.session.evidence
    assert st.sha256 == new_sha and st.recorded_sha256 == old_sha
    box = win2.last_message_box
    assert box is not None and box.isVisible() and "EVIDENCE CHANGED" in box.text() and new_sha[:16] in box.text()
    bar = win2.evidence_bar
    assert bar.banner.isVisible() and "EVIDENCE CHANGED" in bar.banner.text() and "#c0392b" in bar.banner.styleSheet()
    assert "CHANGED" in bar.status_label.text() and old_sha in bar.status_label.toolTip()
    qtbot.waitUntil(lambda: win2.session._lookup_task is None, timeout=5_000)  # the look-up has answered
    qtbot.wait(100)
    s = win2.session
    assert loaded == [] and s.analysis_result is None and s.results == {} and s.verdict is None
    assert factory2.created == 0
    assert "NOT ANALYSED YET" in win2.verdict_panel.text()
    win2.close()


def _slow_hash(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[dict[str, Any]]:
    """Make evidence hashing take ``seconds`` (cancellable, with progress); returns a log of calls.

    ``calls[0]["delay"]["seconds"]`` may be changed to make later calls slower or faster.
    """
    import deepyn_gui.core.evidence as ev

    real = ev.sha256_file
    calls: list[dict[str, Any]] = []
    delay = {"seconds": seconds}

    def slow(path: Any, chunk_size: int = 1 << 20, progress: Any = None, cancel: Any = None) -> str:
        call = {"path": str(path), "cancelled": False, "done": False, "delay": delay}
        calls.append(call)
        steps = 50
        for i in range(steps):
            if cancel is not None and cancel.is_set():
                call["cancelled"] = True
                raise Cancelled("hashing cancelled")
            time.sleep(delay["seconds"] / steps)
            if progress is not None:
                progress(i + 1, steps)
        call["done"] = True
        return real(path, chunk_size=chunk_size)

    monkeypatch.setattr(ev, "sha256_file", slow)
    return calls


def test_hashing_never_blocks_the_gui_and_is_cancelled_by_a_new_clip_or_close(
        window, open_clip, qtbot, face_clip, pattern_clip, stall_probe,
        monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    calls = _slow_hash(monkeypatch, seconds=3.0)
    stall_probe.start()
    open_clip(window, face_clip)
    assert window.session.evidence.state == "hashing"
    qtbot.waitUntil(lambda: window.session.evidence.done >= 10, timeout=5_000)
    assert "hashing…" in window.evidence_bar.status_label.text() and "%" in window.evidence_bar.status_label.text()
    window.session.seek(5)  # the viewer works while the file is hashed
    wait_shown(qtbot, window, 5)
    stall_probe.stop()
    print(f"\nlongest GUI-thread stall while hashing: {stall_probe.longest_s * 1000:.1f} ms")
    assert stall_probe.longest_s < 1.0  # the 3 s hash on the GUI thread would stall it for seconds (bench_gui: figures)

    open_clip(window, pattern_clip)  # another clip: the first hash stops
    qtbot.waitUntil(lambda: calls[0]["cancelled"], timeout=2_000)
    assert not calls[0]["done"]
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=2_000)
    assert window.session.evidence.state == "hashing" and window.session.evidence.path == str(pattern_clip)
    t0 = time.perf_counter()
    window.close()  # closing mid-hash joins the hashing thread promptly
    took = time.perf_counter() - t0
    assert calls[1]["cancelled"] and not calls[1]["done"]
    assert took < 1.0 and worker_threads() == set()


def test_runs_carry_the_evidence_hash_even_when_started_or_cancelled_before_it_is_known(
        qtbot, prefs, open_clip, face_clip, long_face_clip, tiny_onnx_model,
        monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    calls = _slow_hash(monkeypatch, seconds=0.5)
    win = _window(qtbot, prefs, tiny_onnx_model)
    # started while the clip is still being hashed, it finishes with the hash computed on open
    open_clip(win, face_clip)
    assert win.session.evidence.state == "hashing"
    result = _analyse(qtbot, win)
    assert result.complete and result.source.sha256 == _sha(face_clip)
    qtbot.waitUntil(lambda: win.session.last_cache_save is not None, timeout=10_000)

    # cancelled before the hash is known: the result gets the hash when it arrives
    calls[0]["delay"]["seconds"] = 30.0  # still hashing when the run is cancelled
    open_clip(win, long_face_clip)
    win.session.settings = AnalysisSettings()
    win.act_analyze.trigger()
    qtbot.waitUntil(lambda: len(win.session.results) >= 1, timeout=ANALYSIS_TIMEOUT_MS)
    with qtbot.waitSignal(win.session.analysisFinished, timeout=5_000) as done:
        win.session.cancel_analysis()
    partial = done.args[0]
    assert partial is not None and not partial.complete
    assert win.session.evidence.state == "hashing" and partial.source.sha256 == ""  # not known yet
    calls[0]["delay"]["seconds"] = 0.0  # let the hash finish now
    qtbot.waitUntil(lambda: partial.source.sha256 != "", timeout=10_000)
    assert partial.source.sha256 == _sha(long_face_clip)
    assert win.session.analysis_result is partial
    win.close()


def test_analyze_on_open_waits_for_the_hash_and_then_uses_the_cache(qtbot, prefs, open_clip, face_clip,
                                                                     tiny_onnx_model):  # type: ignore[no-untyped-def]
    factory = CountingFactory()
    win = _window(qtbot, prefs, tiny_onnx_model, factory)
    win.session.analyze_on_open = True
    with qtbot.waitSignal(win.session.analysisFinished, timeout=ANALYSIS_TIMEOUT_MS) as first:
        open_clip(win, face_clip)
    assert first.args[0].complete and factory.created == 1 and win.session.results_from_cache is None
    qtbot.waitUntil(lambda: win.session.last_cache_save is not None, timeout=10_000)
    # reopening: the run looks the cache up before building a backend, and answers from it
    with qtbot.waitSignal(win.session.cacheLoaded, timeout=15_000) as loaded:
        open_clip(win, face_clip)
    assert factory.created == 1 and win.session._runs[-1].from_cache
    assert loaded.args[0].result.verdict.to_json() == first.args[0].verdict.to_json()
    assert win.session.evidence.state == "verified" and win.evidence_bar.note.isVisible()
    win.close()
