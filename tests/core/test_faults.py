"""Fault injection: failing, lying and hanging backends, failing stages, a full or read-only disk during
export, and cancellation at random points. Expected every time: the affected frames say ``error`` with
the reason, the run stops or goes on as configured, no thread is left behind, and no score is invented.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from deepyn_gui.core.errors import Cancelled, ExportError, InputError
from deepyn_gui.core.pipeline import AnalysisSettings, Progress, analyze, iter_analysis
from deepyn_gui.core.results import FrameResult, ModelInfo
from tests.media import astronaut_clip_frames, write_clip

N_FRAMES = 12


class FaultyBackend:
    """Scores crops by brightness; on chosen calls (1-based) it raises, lies or hangs."""

    name = "faulty"
    batch_size = 4

    def __init__(self, *, raise_on: set[int] = frozenset(), exc: BaseException | None = None,  # type: ignore[assignment]
                 nan_mask_on: set[int] = frozenset(), score: float | None = None,  # type: ignore[assignment]
                 wrong_shape_on: set[int] = frozenset(), hang_on: set[int] = frozenset(),  # type: ignore[assignment]
                 delay: float = 0.0) -> None:
        self.calls = 0
        self.raise_on, self.exc = raise_on, exc or RuntimeError("device lost")
        self.nan_mask_on, self.score, self.wrong_shape_on = nan_mask_on, score, wrong_shape_on
        self.hang_on = hang_on
        self.release = threading.Event()  # a hung call returns once this is set
        self.hung_threads: list[str] = []
        self.delay = delay

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo("faulty", "0" * 64, trained=True)

    def describe(self) -> dict:
        return {"name": self.name}

    def infer(self, crops: np.ndarray):  # type: ignore[no-untyped-def]
        self.calls += 1
        k = self.calls
        if self.delay:
            time.sleep(self.delay)
        if k in self.hang_on:
            self.hung_threads.append(threading.current_thread().name)
            self.release.wait()  # like a native call that never returns
        if k in self.raise_on:
            raise self.exc
        n = len(crops)
        score = crops.reshape(n, -1).mean(axis=1).astype(np.float32) / 255.0
        if self.score is not None:
            score[:] = self.score
        mask = np.full((n, 224, 224), 0.25, np.float32)
        if k in self.nan_mask_on:
            mask[0, 10, 10] = np.nan
        if k in self.wrong_shape_on:
            return mask[:, :112, :112], score
        return mask, score

    def close(self) -> None:
        self.release.set()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "face.mp4"
    return write_clip(path, astronaut_clip_frames(N_FRAMES, 320, 240, face_px=90), fps=25)


def deepyn_threads(timeout: float = 3.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("deepyn-") and t.is_alive()]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def states(frames: list[FrameResult]) -> list[str]:
    return [f.state for f in frames]


# ------------------------------------------------------------------------------------------------
# Backends that fail or lie
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_backend_raising_a_plain_exception_on_batch_k(clip: Path, on_error: str) -> None:
    backend = FaultyBackend(raise_on={2}, exc=RuntimeError("device lost"))
    res = analyze(str(clip), backend, AnalysisSettings(batch_size=4, on_error=on_error))  # type: ignore[arg-type]
    assert states(res.frames[:4]) == ["ok"] * 4
    assert states(res.frames[4:8]) == ["error"] * 4
    assert all(f.error == "backend error: RuntimeError: device lost" for f in res.frames[4:8])
    assert all(face.fake_score is None and face.state == "error" for f in res.frames[4:8] for face in f.faces)
    if on_error == "continue":
        assert res.complete and states(res.frames[8:]) == ["ok"] * (N_FRAMES - 8)
    else:
        assert not res.complete and len(res.frames) == 8 and "on_error=stop" in res.stop_reason
    assert not deepyn_threads()


@pytest.mark.parametrize("fault, message", [
    ({"nan_mask_on": {1}}, "NaN or infinite mask"),
    ({"score": 1.5}, "outside [0, 1]"),
    ({"score": -0.2}, "outside [0, 1]"),
    ({"wrong_shape_on": {1}}, "mask of shape"),
])
def test_backend_lying_marks_the_batch_error_never_a_score(clip: Path, fault: dict, message: str) -> None:
    res = analyze(str(clip), FaultyBackend(**fault), AnalysisSettings(batch_size=4))
    bad = [f for f in res.frames if f.state == "error"]
    assert bad and all(message in f.error for f in bad), [f.error for f in res.frames]
    assert all(face.fake_score is None for f in bad for face in f.faces)
    assert res.complete
    if "score" not in fault:
        assert states(res.frames[4:]) == ["ok"] * (N_FRAMES - 4)  # only the faulty batch
    else:
        assert res.verdict.label == "error" and res.verdict.fake_score is None


# ------------------------------------------------------------------------------------------------
# A backend that hangs
# ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_hung_backend_call_times_out(clip: Path, on_error: str) -> None:
    backend = FaultyBackend(hang_on={2})
    settings = AnalysisSettings(batch_size=4, on_error=on_error, infer_timeout_s=0.3)  # type: ignore[arg-type]
    try:
        res = analyze(str(clip), backend, settings)
        assert states(res.frames[4:8]) == ["error"] * 4
        assert all(f.error == "backend error: backend timed out after 0.3 s" for f in res.frames[4:8])
        if on_error == "continue":
            assert res.complete and states(res.frames[8:]) == ["ok"] * (N_FRAMES - 8)
        else:
            assert not res.complete and len(res.frames) == 8
        # the hung call is abandoned, not killed: its thread says so until the call returns
        assert backend.hung_threads == ["deepyn-infer-call"]
        assert "deepyn-infer-abandoned" in [t.name for t in threading.enumerate()]
    finally:
        backend.release.set()
    assert not deepyn_threads()


@pytest.mark.timeout(60)
def test_cancel_while_the_backend_hangs(clip: Path) -> None:
    """Cancel is honoured although the backend never answers (no timeout configured to rescue it)."""
    backend = FaultyBackend(hang_on={1})
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            analyze(str(clip), backend, AnalysisSettings(batch_size=4, infer_timeout_s=3600), cancel=cancel)
        assert time.monotonic() - t0 < 20, "cancel waited for the hung backend"
    finally:
        backend.release.set()
    assert not deepyn_threads()


def test_timeout_setting_is_validated() -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InputError):
            AnalysisSettings(infer_timeout_s=bad)
    assert AnalysisSettings(infer_timeout_s=None).infer_timeout_s is None
    assert AnalysisSettings().to_json()["infer_timeout_s"] == 60.0


def test_no_timeout_calls_the_backend_inline(clip: Path) -> None:
    backend = FaultyBackend()
    seen: list[str] = []
    original = backend.infer
    backend.infer = lambda crops: (seen.append(threading.current_thread().name), original(crops))[1]  # type: ignore[method-assign]
    res = analyze(str(clip), backend, AnalysisSettings(batch_size=4, infer_timeout_s=None))
    assert res.complete and set(seen) == {"deepyn-infer"}


# ------------------------------------------------------------------------------------------------
# Other stages failing part-way
# ------------------------------------------------------------------------------------------------


def test_detector_failing_on_one_frame_marks_that_frame(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepyn_gui.core import faces

    real = faces.make_detector

    def flaky(*a, **k):  # type: ignore[no-untyped-def]
        det = real(*a, **k)
        calls = {"n": 0}
        inner = det.detect

        def detect(rgb):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 3:
                raise ValueError("odd frame")
            return inner(rgb)

        det.detect = detect
        return det

    monkeypatch.setattr(faces, "make_detector", flaky)
    res = analyze(str(clip), FaultyBackend(), AnalysisSettings(batch_size=4, detect_every=1, full_detect_every=1))
    assert res.complete and len(res.frames) == N_FRAMES
    assert res.frames[2].state == "error" and not res.frames[2].faces
    assert res.frames[2].error == "face detection failed: ValueError: odd frame"
    assert all(f.state == "ok" for i, f in enumerate(res.frames) if i != 2)


def test_decoder_failing_part_way_keeps_earlier_frames(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepyn_gui.core.video import VideoSource

    real = VideoSource.frames

    def frames(self, *a, **k):  # type: ignore[no-untyped-def]
        for i, f in enumerate(real(self, *a, **k)):
            if i == 5:
                raise InputError("the disk holding the clip stopped answering")
            yield f

    monkeypatch.setattr(VideoSource, "frames", frames)
    res = analyze(str(clip), FaultyBackend(), AnalysisSettings(batch_size=4))
    assert not res.complete and "stopped answering" in res.stop_reason
    assert [f.index for f in res.frames] == list(range(len(res.frames))) and 0 < len(res.frames) <= 5
    assert not deepyn_threads()


def test_a_bug_in_a_stage_after_some_frames_keeps_them(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepyn_gui.core import pipeline

    real = pipeline._frame_result
    calls = {"n": 0}

    def broken(p):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyError("bug")
        return real(p)

    monkeypatch.setattr(pipeline, "_frame_result", broken)
    res = analyze(str(clip), FaultyBackend(), AnalysisSettings(batch_size=1))
    assert not res.complete and "infer stage failed: KeyError" in res.stop_reason
    assert len(res.frames) == 6
    assert not deepyn_threads()


# ------------------------------------------------------------------------------------------------
# Disk full / read-only during export
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result(clip: Path):  # type: ignore[no-untyped-def]
    return analyze(str(clip), FaultyBackend(), AnalysisSettings(batch_size=4, max_frames=4))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or p.name.startswith("."))


@pytest.mark.parametrize("where", ["write", "fsync", "replace", "mkstemp"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_export_on_a_full_or_read_only_disk(result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                            where: str, code: int) -> None:
    from deepyn_gui.core.export import atomic
    from deepyn_gui.core.export.data import write_csv, write_json

    target = tmp_path / "analysis.json"
    target.write_text("previous export\n")
    csv_target = tmp_path / "analysis.csv"

    def fail(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(code, os.strerror(code))

    if where == "write":  # the disk fills up half-way through the file
        real_write_atomic = atomic.write_atomic

        def write_atomic(t, write):  # type: ignore[no-untyped-def]
            def half(fh):  # type: ignore[no-untyped-def]
                fh.write(b'{"half": ')
                fh.flush()
                fail()
            return real_write_atomic(t, half)

        monkeypatch.setattr(atomic, "write_atomic", write_atomic)
    elif where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", fail)
    elif where == "replace":
        monkeypatch.setattr(atomic.os, "replace", fail)
    else:
        monkeypatch.setattr(atomic.tempfile, "mkstemp", fail)

    for writer, out in ((write_json, target), (write_csv, csv_target)):
        with pytest.raises(ExportError) as info:
            writer(result, out)
        msg = str(info.value)
        assert os.strerror(code) in msg and (out.name in msg or str(out.parent) in msg), msg
        assert "\n" not in msg
    assert target.read_text() == "previous export\n", "the previous export was damaged"
    assert not csv_target.exists()
    assert _leftovers(tmp_path) == [], "a half-written temp file was left behind"


def test_cli_reports_a_full_disk_in_one_line(clip: Path, tmp_path: Path, tiny_onnx_model: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from deepyn_gui.cli import main
    from deepyn_gui.core.export import atomic

    def full(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    out = tmp_path / "r.json"
    rc = main(["analyze", str(clip), "--model", str(tiny_onnx_model), "-q", "--threads", "1", "--max-frames", "2",
               "--json", str(out)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "UNTRAINED" not in ln]
    assert rc == 2 and lines == ["deepyn: error: could not write r.json: No space left on device"], err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_annotated_video_export_on_a_full_disk(result, clip: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from deepyn_gui.core.export import atomic
    from deepyn_gui.core.export.video import export_annotated_video

    def full(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "replace", full)
    out = tmp_path / "annotated.mp4"
    with pytest.raises(ExportError, match="No space left on device"):
        export_annotated_video(result, str(clip), out, threads=1)
    assert not out.exists() and _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# Cancel at random points
# ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_cancel_at_random_points_leaves_nothing_behind(clip: Path) -> None:
    rng = random.Random(7)
    outcomes = {"cancelled": 0, "finished": 0, "closed": 0}
    for trial in range(10):
        backend = FaultyBackend(delay=rng.choice([0.01, 0.03, 0.06]))
        settings = AnalysisSettings(batch_size=rng.choice([1, 3, 8]), infer_timeout_s=rng.choice([None, 30.0]))
        cancel = threading.Event()
        how = rng.choice(["event", "close"])
        delay = rng.uniform(0.0, 0.4)
        got: list[FrameResult] = []
        timer = threading.Timer(delay, cancel.set) if how == "event" else None
        gen = iter_analysis(str(clip), backend, settings, cancel, total_frames=N_FRAMES)
        t_stop = time.monotonic() + delay
        try:
            if timer:
                timer.start()
            for item in gen:
                if isinstance(item, FrameResult):
                    got.append(item)
                else:
                    assert isinstance(item, Progress)
                if how == "close" and time.monotonic() >= t_stop:
                    gen.close()
                    outcomes["closed"] += 1
                    break
            else:
                outcomes["finished"] += 1
        except Cancelled:
            outcomes["cancelled"] += 1
        finally:
            if timer:
                timer.cancel()
        assert [f.index for f in got] == list(range(len(got))), f"trial {trial}: frames out of order or lost"
        assert all(f.state == "ok" for f in got)
        assert not deepyn_threads(), f"trial {trial}: threads left: {deepyn_threads()}"
    assert outcomes["cancelled"] + outcomes["closed"] >= 2, outcomes
