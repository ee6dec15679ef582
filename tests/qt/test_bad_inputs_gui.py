"""The bad-input corpus in the real main window: a message for what cannot be used, the picture for what
can, and a window that stays usable after each (the next good clip opens and analyses).

The corpus comes from ``tests/corpus/make_corpus.py`` (the same files the CLI tests use).
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from qt_helpers import wait_shown, worker_threads

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for tests.corpus

from deepyn_gui.core.pipeline import AnalysisSettings
from deepyn_gui.core.verdict import verdict_words
from tests.corpus.make_corpus import Case, build_corpus

REFUSED = ["zero_bytes", "text_renamed_mp4", "random_bytes", "audio_only", "directory", "missing_file", "fifo",
           "broken_symlink", "truncated_10", "truncated_99", "corrupt_header"]
SHOWN = ["one_frame", "rotation_90", "size_1x1", "size_7x5", "size_3x200", "gray16_ffv1", "rgb48_png", "gif_pal8",
         "raw_h264_no_fps", "avi_zero_fps", "variable_frame_rate", "resolution_change", "truncated_faststart_50",
         "corrupt_middle", "non_ascii_name", "long_name_240", "protocol_like_name", "long_cheap_10min",
         "size_8k_square"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return {c.name: c for c in build_corpus(tmp_path_factory.mktemp("gui_corpus"))}


def _fingerprint(p: Path) -> tuple[str, int] | None:
    if not p.is_file():
        return None
    return hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns


def _use_tiny_model(win, model: Path) -> None:  # type: ignore[no-untyped-def]
    win.set_backend("onnx")
    win.set_model_path(str(model))
    win.session.threads = 1


def _good_clip_still_works(qtbot, win, clip: Path, open_clip) -> None:  # type: ignore[no-untyped-def]
    open_clip(win, clip)
    assert win.session.path == str(clip)
    assert win.act_analyze.isEnabled()


@pytest.mark.timeout(180)
def test_refused_files_show_a_message_and_the_window_stays_usable(window, qtbot, open_clip, face_clip,  # type: ignore[no-untyped-def]
                                                                  corpus: dict[str, Case]) -> None:
    open_clip(window, face_clip)
    before = {n: _fingerprint(corpus[n].path) for n in REFUSED}
    listing = sorted(os.listdir(corpus["zero_bytes"].path.parent))
    for name in REFUSED:
        case = corpus[name]
        with qtbot.waitSignal(window.session.openFailed, timeout=20_000) as failed:
            window.open_file(case.path)
        path, message = failed.args
        assert path == str(case.path)
        box = window.last_message_box
        assert box is not None and box.isVisible() and box.text() == message, name
        assert message and "\n" not in message and "Traceback" not in message, message
        # the clip that was open stays open and usable
        assert window.session.path == str(face_clip), name
        window.session.seek(3)
        wait_shown(qtbot, window, 3)
        box.close()
    assert {n: _fingerprint(corpus[n].path) for n in REFUSED} == before
    assert sorted(os.listdir(corpus["zero_bytes"].path.parent)) == listing, "something was written next to the inputs"


@pytest.mark.timeout(300)
def test_odd_but_valid_files_are_shown(window, qtbot, open_clip, corpus: dict[str, Case]) -> None:  # type: ignore[no-untyped-def]
    for name in SHOWN:
        case = corpus[name]
        before = _fingerprint(case.path)
        open_clip(window, case.path, timeout=60_000)
        info = window.session.info
        rgb = window.player.frame_view.displayed_rgb()
        assert rgb is not None and rgb.shape == (info.height, info.width, 3), name
        for key in ("width", "height"):
            if key in case.extra:
                assert getattr(info, key) == case.extra[key], name
        last = info.frames - 1
        if last > 0 and name != "size_8k_square":
            window.session.seek(last)
            if case.warns:  # the last frames are damaged: the picture, or a message that says so
                qtbot.waitUntil(lambda: window.session.shown.index == last  # noqa: B023
                                or "could not be decoded" in window.statusBar().currentMessage(), timeout=30_000)
            else:
                wait_shown(qtbot, window, last, timeout=30_000)
        assert _fingerprint(case.path) == before, name
        if window.last_message_box is not None:
            assert window.last_message_box.icon() != window.last_message_box.Icon.Critical or \
                "could not" not in window.last_message_box.text(), (name, window.last_message_box.text())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["truncated_faststart_50", "tiny_faces", "size_7x5"])
def test_analysis_of_odd_files_finishes_with_honest_states(window, qtbot, open_clip, tiny_onnx_model,  # type: ignore[no-untyped-def]
                                                           corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    open_clip(window, case.path, timeout=60_000)
    _use_tiny_model(window, tiny_onnx_model)
    with qtbot.waitSignal(window.session.analysisFinished, timeout=120_000) as done:
        window.session.start_analysis()
    result = done.args[0]
    assert result is not None and len(result.frames) >= case.min_frames
    if case.verdicts:
        assert result.verdict.label in case.verdicts
    if result.verdict.label in ("no_face", "too_small", "error"):
        assert result.verdict.fake_score is None and window.timeline.curves == {}
    text = window.verdict_panel.text()
    assert verdict_words(result.verdict.label) in text  # the one vocabulary, as CLI and report
    assert window.act_analyze.isEnabled()
    qtbot.waitUntil(lambda: not {t for t in worker_threads() if t.name.startswith("deepyn-") and "gui" not in t.name},
                    timeout=5_000)


def _analyse_and_delete(window, qtbot, open_clip, model: Path, src: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    clip = tmp_path / "evidence.mp4"
    clip.write_bytes(src.read_bytes())
    open_clip(window, clip)
    _use_tiny_model(window, model)
    window.session.settings = replace(AnalysisSettings(), batch_size=1)
    with qtbot.waitSignal(window.session.analysisFinished, timeout=120_000) as done:
        window.session.start_analysis()
        qtbot.waitUntil(lambda: len(window.session.results) >= 1, timeout=60_000)
        clip.unlink()
    return done.args[0]


@pytest.mark.timeout(300)
def test_file_deleted_while_the_gui_analyses_it(window, qtbot, open_clip, tiny_onnx_model, face_clip,  # type: ignore[no-untyped-def]
                                                corpus: dict[str, Case], tmp_path: Path) -> None:
    """No crash and no hang; the frames analysed stay on the timeline and in an exportable result.

    The worker reads the clip's facts when the run starts, so deleting the clip mid-run keeps every
    frame analysed so far in the AnalysisResult.
    """
    result = _analyse_and_delete(window, qtbot, open_clip, tiny_onnx_model, corpus["vanishes_mid_run"].path, tmp_path)
    assert len(window.session.results) >= 1
    assert all(f.state in ("ok", "error", "no_face") for f in window.session.results.values())
    assert result is not None and len(result.frames) >= 1
    window.session.seek(1)
    qtbot.wait(200)
    _good_clip_still_works(qtbot, window, face_clip, open_clip)
    rgb = window.player.frame_view.displayed_rgb()
    assert rgb is not None and np.asarray(rgb).ndim == 3
