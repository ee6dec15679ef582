"""The analysis pipeline end to end: order, states, cancel, errors, and no thread left behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from deepyn_gui.core.errors import BackendError, Cancelled, DeepYNError
from deepyn_gui.core.pipeline import AnalysisSettings, Progress, analyze, iter_analysis
from deepyn_gui.core.results import FrameResult, ModelInfo
from tests.media import astronaut_clip_frames, moving_pattern_frames, write_clip


class FakeBackend:
    """Scores each crop by its mean brightness (deterministic), optionally failing or stalling."""

    name = "fake"
    batch_size = 4

    def __init__(self, fail_on_batch: int | None = None, nan_on_batch: int | None = None, delay: float = 0.0):
        self.calls = 0
        self.fail_on_batch = fail_on_batch
        self.nan_on_batch = nan_on_batch
        self.delay = delay
        self.closed = False

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo("fake", "0" * 64, trained=True)

    def describe(self) -> dict:
        return {"name": self.name}

    def infer(self, crops: np.ndarray):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on_batch is not None and self.calls == self.fail_on_batch:
            raise BackendError("card fell off the bus")
        n = len(crops)
        score = crops.reshape(n, -1).mean(axis=1).astype(np.float32) / 255.0
        if self.nan_on_batch is not None and self.calls == self.nan_on_batch:
            score[:] = np.nan
        mask = np.zeros((n, 224, 224), np.float32)
        mask[:, 80:140, 80:140] = 0.9
        return mask, score

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "face.mp4"
    write_clip(path, astronaut_clip_frames(24, 320, 240, face_px=90), fps=25)
    return path


@pytest.fixture(scope="module")
def noface_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "noface.mp4"
    write_clip(path, moving_pattern_frames(10, 64, 48), fps=25)
    return path


def _deepyn_threads():
    return [t for t in threading.enumerate() if t.name.startswith("deepyn-")]


def _wait_no_threads(timeout=3.0):
    deadline = time.monotonic() + timeout
    while _deepyn_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return _deepyn_threads()


def test_results_in_order_with_faces_and_masks(face_clip):
    items = list(iter_analysis(str(face_clip), FakeBackend(), AnalysisSettings(batch_size=4)))
    frames = [i for i in items if isinstance(i, FrameResult)]
    assert [f.index for f in frames] == list(range(24))
    assert all(f.state == "ok" for f in frames), [f.state for f in frames]
    face = frames[5].faces[0]
    assert face.track == frames[0].faces[0].track  # one person, one track
    assert 0.0 < face.fake_score < 1.0
    assert face.mask().shape == (224, 224) and face.mask().max() == round(0.9 * 255)
    assert isinstance(items[-1], Progress) and items[-1].done == 24
    assert all(np.diff([f.pts_s for f in frames]) > 0)
    assert not _wait_no_threads()


def test_stride_and_detect_every(face_clip):
    frames = [i for i in iter_analysis(str(face_clip), FakeBackend(), AnalysisSettings(stride=3, detect_every=2))
              if isinstance(i, FrameResult)]
    assert [f.index for f in frames] == list(range(0, 24, 3))
    assert all(f.faces for f in frames)


def test_real_model_scores_real_face(face_clip, tiny_onnx_model):
    from deepyn_gui.backends import create_backend

    backend = create_backend("onnx", model_path=str(tiny_onnx_model), threads=1)
    res = analyze(str(face_clip), backend, AnalysisSettings(max_frames=6))
    assert len(res.frames) == 6 and res.complete
    assert res.verdict.label in ("fake", "real", "uncertain")
    assert res.source.sha256 and len(res.source.sha256) == 64
    assert res.source.frames == 24
    assert not res.model.trained and "UNTRAINED" in res.verdict.explanation
    js = res.to_json()
    assert js["schema"] == "deepyn.analysis/1" and js["backend"]["name"] == "onnx"


def test_no_face_clip_gives_no_face_verdict(noface_clip):
    res = analyze(str(noface_clip), FakeBackend())
    assert {f.state for f in res.frames} == {"no_face"}
    assert res.verdict.label == "no_face" and res.verdict.fake_score is None


@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_backend_failure_marks_frames_error(face_clip, on_error):
    backend = FakeBackend(fail_on_batch=2)
    res = analyze(str(face_clip), backend, AnalysisSettings(batch_size=4, on_error=on_error))
    errors = [f for f in res.frames if f.state == "error"]
    assert len(errors) == 4
    assert all("card fell off the bus" in f.error for f in errors)
    assert all(face.fake_score is None for f in errors for face in f.faces)
    if on_error == "continue":
        assert len(res.frames) == 24 and res.complete
    else:
        assert not res.complete and "stopped" in res.stop_reason
        assert len(res.frames) == 8
    assert not _wait_no_threads()


def test_nan_scores_are_an_error_not_a_number(face_clip):
    res = analyze(str(face_clip), FakeBackend(nan_on_batch=1), AnalysisSettings(batch_size=4))
    assert [f.state for f in res.frames[:4]] == ["error"] * 4
    assert "NaN" in res.frames[0].error
    assert res.frames[4].state == "ok"


def test_cancel_is_prompt_and_leaves_no_thread(face_clip):
    cancel = threading.Event()
    backend = FakeBackend(delay=0.2)
    got = []
    with pytest.raises(Cancelled):
        for item in iter_analysis(str(face_clip), backend, AnalysisSettings(batch_size=1), cancel):
            if isinstance(item, FrameResult):
                got.append(item)
                if len(got) == 2:
                    t0 = time.monotonic()
                    cancel.set()
    assert time.monotonic() - t0 < 0.5
    assert not _wait_no_threads(1.0)


def test_closing_the_generator_stops_threads(face_clip):
    gen = iter_analysis(str(face_clip), FakeBackend(delay=0.05), AnalysisSettings(batch_size=1))
    next(gen)
    gen.close()
    assert not _wait_no_threads(1.0)


def test_stage_exception_surfaces_not_hangs(face_clip, monkeypatch):
    from deepyn_gui.core import faces

    def boom(*a, **k):
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(faces, "make_detector", boom)
    with pytest.raises(DeepYNError, match="detector exploded"):
        list(iter_analysis(str(face_clip), FakeBackend()))
    assert not _wait_no_threads()


def test_bad_settings_are_refused():
    with pytest.raises(DeepYNError):
        AnalysisSettings(stride=0)
    with pytest.raises(DeepYNError):
        AnalysisSettings(margin=0.5)
