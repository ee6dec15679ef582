"""``detect_every``: the detector skips frames only where that is safe.

Between detections faces move on at their measured velocity; the detector still runs on every frame
while nothing is tracked, and at once on a shot change, so no box is carried into another scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepyn_gui.core import faces
from deepyn_gui.core.pipeline import AnalysisSettings, analyze
from deepyn_gui.core.results import ModelInfo
from tests.media import astronaut_clip_frames, moving_pattern_frames, write_clip


class Backend:
    name = "grey"
    batch_size = 8

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo("grey", "0" * 64)

    def describe(self) -> dict:
        return {"name": self.name}

    def infer(self, crops: np.ndarray):  # type: ignore[no-untyped-def]
        n = len(crops)
        return np.zeros((n, 224, 224), np.float32), crops.reshape(n, -1).mean(axis=1).astype(np.float32) / 255

    def close(self) -> None:
        pass


@pytest.fixture
def count_detections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = faces.make_detector

    def counting(*a, **k):  # type: ignore[no-untyped-def]
        det = real(*a, **k)
        inner = det.detect

        def detect(rgb):  # type: ignore[no-untyped-def]
            calls.append(1)
            return inner(rgb)

        det.detect = detect
        return det

    monkeypatch.setattr(faces, "make_detector", counting)
    return calls


@pytest.fixture(scope="module")
def panning(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("de") / "pan.mp4",
                      astronaut_clip_frames(12, 320, 240, face_px=90, pan_px_per_frame=4.0), fps=25)


def _iou(a, b) -> float:  # type: ignore[no-untyped-def]
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def test_moving_face_is_followed_between_detections(panning: Path, count_detections: list[int]) -> None:
    ref = analyze(str(panning), Backend(), AnalysisSettings(detect_every=1, full_detect_every=1))
    n_ref = len(count_detections)
    count_detections.clear()
    var = analyze(str(panning), Backend(), AnalysisSettings(detect_every=4, full_detect_every=1))
    assert n_ref == 12 and len(count_detections) == 3  # frames 0, 4, 8
    assert [len(f.faces) for f in var.frames] == [len(f.faces) for f in ref.frames] == [1] * 12
    ious = [_iou(a.faces[0].box, b.faces[0].box) for a, b in zip(ref.frames, var.frames)]
    # frames 1-3: no velocity yet (one detection), the box stays put while the face moves 4 px a frame;
    # from frame 4 on the box moves with the face
    assert min(ious[:4]) > 0.7 and min(ious[4:]) > 0.9, ious
    assert {f.faces[0].track for f in var.frames} == {1}


def test_shot_change_forces_a_detection(tmp_path: Path, count_detections: list[int]) -> None:
    face = list(astronaut_clip_frames(5, 320, 240, face_px=90))
    other = [np.ascontiguousarray(np.resize(f, (240, 320, 3))) for f in moving_pattern_frames(3, 320, 240)]
    clip = write_clip(tmp_path / "cut.mp4", face + other, fps=25)
    res = analyze(str(clip), Backend(), AnalysisSettings(detect_every=50, full_detect_every=1))
    assert [len(f.faces) for f in res.frames] == [1] * 5 + [0] * 3  # no face carried into the next shot
    assert [f.state for f in res.frames[5:]] == ["no_face"] * 3
    assert len(count_detections) == 1 + 3  # the first frame, then every frame once nothing is tracked


def test_no_face_frames_are_always_looked_at(tmp_path: Path, count_detections: list[int]) -> None:
    clip = write_clip(tmp_path / "empty.mp4", moving_pattern_frames(5, 64, 48), fps=25)
    res = analyze(str(clip), Backend(), AnalysisSettings(detect_every=4, full_detect_every=1))
    assert {f.state for f in res.frames} == {"no_face"} and len(count_detections) == 5


def test_detect_every_is_recorded_in_the_settings(panning: Path) -> None:
    res = analyze(str(panning), Backend(), AnalysisSettings(detect_every=3, max_frames=2))
    assert res.settings["detect_every"] == 3


@pytest.fixture
def count_near(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Number of boxes each near pass was asked to look around (one entry per pass)."""
    calls: list[int] = []
    real = faces.Res10SsdDetector.detect_near

    def counting(self, rgb, boxes):  # type: ignore[no-untyped-def]
        calls.append(len(boxes))
        return real(self, rgb, boxes)

    monkeypatch.setattr(faces.Res10SsdDetector, "detect_near", counting)
    return calls


@pytest.fixture(scope="module")
def small_face_pan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A face small in a wide frame: where looking only near it saves most."""
    return write_clip(tmp_path_factory.mktemp("de") / "small.mp4",
                      astronaut_clip_frames(12, 640, 360, face_px=70, pan_px_per_frame=4.0), fps=25)


def test_near_passes_follow_the_face_between_whole_frame_passes(
    small_face_pan: Path, count_detections: list[int], count_near: list[int]
) -> None:
    ref = analyze(str(small_face_pan), Backend(), AnalysisSettings(detect_every=1, full_detect_every=1))
    assert len(count_detections) == 12 and count_near == []
    count_detections.clear()
    var = analyze(str(small_face_pan), Backend(), AnalysisSettings(detect_every=1, full_detect_every=4))
    assert len(count_detections) == 3 and count_near == [1] * 9  # whole frame on 0, 4, 8; near elsewhere
    assert [len(f.faces) for f in var.frames] == [1] * 12
    ious = [_iou(a.faces[0].box, b.faces[0].box) for a, b in zip(ref.frames, var.frames)]
    assert min(ious) > 0.97, ious  # the same box a whole-frame pass gives
    assert [f.max_score for f in var.frames] == pytest.approx([f.max_score for f in ref.frames], abs=0.01)
    assert {f.faces[0].track for f in var.frames} == {1}
    assert var.settings["full_detect_every"] == 4


def test_close_ups_get_whole_frame_passes(panning: Path, count_detections: list[int], count_near: list[int]) -> None:
    """A face that fills much of the frame: a window would be the whole image, so the pass is a whole one."""
    analyze(str(panning), Backend(), AnalysisSettings(detect_every=1, full_detect_every=4))
    assert len(count_near) == 9 and len(count_detections) == 12


def test_a_face_that_walks_in_is_found_by_the_next_whole_frame_pass(
    tmp_path: Path, count_near: list[int]
) -> None:
    half = list(astronaut_clip_frames(16, 240, 240, face_px=90))
    grey = np.full_like(half[0], 128)
    # one face on the left; from frame 5 the same face again on the right
    frames = [np.concatenate([f, f if i >= 5 else grey], axis=1) for i, f in enumerate(half)]
    clip = write_clip(tmp_path / "walk_in.mp4", frames, fps=25)
    res = analyze(str(clip), Backend(), AnalysisSettings(detect_every=1, full_detect_every=4))
    counts = [len(f.faces) for f in res.frames]
    assert counts[:5] == [1] * 5 and counts[8:] == [2] * 8, counts  # whole-frame pass on frame 8 at the latest
    assert count_near, "near passes were used while one face was tracked"


def test_a_lost_face_makes_the_next_detection_a_whole_frame_one() -> None:
    from deepyn_gui.core.faces import Detection
    from deepyn_gui.core.pipeline import _BoxCarrier

    rgb = np.zeros((240, 320, 3), np.uint8)
    carry = _BoxCarrier(every=1, full_every=4)
    assert carry.must_detect(rgb) and carry.near_boxes() is None  # nothing tracked yet
    face = (1, Detection(box=(100.0, 80.0, 60.0, 60.0), score=0.9))
    carry.detected(rgb, [face])
    assert carry.must_detect(rgb) and carry.near_boxes() == [face[1].box]
    carry.detected(rgb, [], near=True)  # looked near it and found nothing
    assert carry.must_detect(rgb) and carry.near_boxes() is None


@pytest.fixture
def count_all_detections(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts whole-frame (``detect``) and near-the-tracked-faces (``detect_near``) detector calls."""
    calls = {"detect": 0, "detect_near": 0}
    real = faces.make_detector

    def counting(*a, **k):  # type: ignore[no-untyped-def]
        det = real(*a, **k)
        for name in calls:
            inner = getattr(det, name, None)
            if inner is None:
                continue

            def wrapped(*args, _inner=inner, _name=name, **kw):  # type: ignore[no-untyped-def]
                calls[_name] += 1
                return _inner(*args, **kw)

            setattr(det, name, wrapped)
        return det

    monkeypatch.setattr(faces, "make_detector", counting)
    return calls


@pytest.mark.parametrize(("every", "full_every"), [(3, 4), (1, 1), (2, 2)])
def test_compare_and_analyze_share_the_detect_stage(panning: Path, count_all_detections: dict[str, int],
                                                    every: int, full_every: int) -> None:
    """compare drives the pipeline's detect stage: same boxes, same detector calls, schedule honoured."""
    from deepyn_gui.core.compare import compare

    settings = AnalysisSettings(detect_every=every, full_detect_every=full_every, batch_size=4)
    ref = analyze(str(panning), Backend(), settings)
    n_analyze = dict(count_all_detections)
    for k in count_all_detections:
        count_all_detections[k] = 0
    cmp = compare(str(panning), [Backend(), Backend()], ["a", "b"], settings)
    assert dict(count_all_detections) == n_analyze
    if every == 1:
        assert n_analyze["detect"] == 12  # the schedule really differs between the cases
    else:
        assert sum(n_analyze.values()) < 12
    boxes = [[f.box for f in fr.faces] for fr in ref.frames]
    assert boxes and all(boxes)
    for frames in cmp.frames:
        assert [[f.box for f in fr.faces] for fr in frames] == boxes
        assert [f.to_json() for f in frames] == [f.to_json() for f in ref.frames]
    assert cmp.settings == ref.settings
