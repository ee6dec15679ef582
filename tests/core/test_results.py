"""The result type refuses invalid states, round-trips through JSON and stores masks compactly."""

import json
import math

import numpy as np
import pytest

from deepyn_gui.core.results import (
    AnalysisResult,
    CropTransform,
    FaceResult,
    FrameResult,
    ModelInfo,
    SourceInfo,
    Verdict,
    compress_mask,
    decompress_mask,
)


def _face(**kw):
    base = {"track": 1, "box": (10.0, 20.0, 50.0, 60.0), "state": "ok", "fake_score": 0.7,
                "crop": CropTransform(0.0, 5.0, 80.0)}
    base.update(kw)
    return FaceResult(**base)


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5, None])
def test_ok_face_needs_a_valid_score(bad):
    with pytest.raises(ValueError):
        _face(fake_score=bad)


def test_unscored_states_cannot_carry_a_score():
    with pytest.raises(ValueError):
        _face(state="too_small", fake_score=0.5)
    with pytest.raises(ValueError):
        _face(state="error", fake_score=None)  # error needs a message
    f = _face(state="error", fake_score=None, error="backend error: boom")
    assert f.fake_score is None and "boom" in f.error


def test_frame_state_consistency():
    with pytest.raises(ValueError):
        FrameResult(0, 0.0, "no_face", (_face(),))
    with pytest.raises(ValueError):
        FrameResult(0, 0.0, "ok", ())
    with pytest.raises(ValueError):
        FrameResult(0, 0.0, "error")
    fr = FrameResult(3, 0.12, "ok", (_face(fake_score=0.2), _face(track=2, fake_score=0.9)))
    assert fr.max_score == pytest.approx(0.9)
    assert FrameResult(4, 0.16, "no_face").max_score is None


def test_mask_compression_round_trip_and_size():
    rng = np.random.default_rng(0)
    prob = np.zeros((224, 224), np.float32)
    prob[60:160, 70:150] = rng.uniform(0.6, 1.0, (100, 80))
    blob = compress_mask(prob)
    back = decompress_mask(blob)
    assert back.dtype == np.uint8 and back.shape == (224, 224)
    assert np.abs(back / 255.0 - prob).max() <= 0.5 / 255 + 1e-6
    smooth = np.zeros((224, 224), np.float32)
    smooth[50:150, 50:150] = 1.0
    assert len(compress_mask(smooth)) < 2000  # ~50 KB raw
    with pytest.raises(ValueError):
        compress_mask(np.full((4, 4), np.nan, np.float32))


def test_masks_stored_by_earlier_versions_still_load():
    """Caches hold masks as written then: two uint16 sizes + zlib of the raw bytes (before PNG)."""
    import zlib

    m = (np.arange(224 * 200) % 251).astype(np.uint8).reshape(200, 224)
    legacy = np.array(m.shape, dtype="<u2").tobytes() + zlib.compress(m.tobytes(), 6)
    np.testing.assert_array_equal(decompress_mask(legacy), m)
    np.testing.assert_array_equal(decompress_mask(compress_mask(m)), m)  # lossless, any shape
    assert compress_mask(m)[:4] == b"\x89PNG"
    with pytest.raises(ValueError):
        decompress_mask(b"\x89PNG\r\n\x1a\n" + b"garbage")


def test_crop_transform_inverse():
    t = CropTransform(-12.5, 30.0, 300.0)
    pts = np.array([[0.0, 0.0], [100.0, 250.0], [-5.0, 400.0]])
    assert np.allclose(t.crop_to_frame(t.frame_to_crop(pts)), pts)
    with pytest.raises(ValueError):
        CropTransform(0, 0, 0)


def test_analysis_json_round_trip():
    frames = [
        FrameResult(0, 0.0, "ok", (_face(mask_blob=compress_mask(np.zeros((224, 224)))),)),
        FrameResult(1, 0.04, "no_face"),
        FrameResult(2, 0.08, "error", (_face(state="error", fake_score=None, error="x"),), error="x"),
    ]
    res = AnalysisResult(
        source=SourceInfo("a.mp4", "ab" * 32, 3, 25.0, 64, 48),
        model=ModelInfo("m", "cd" * 32, trained=False),
        backend={"name": "onnx"}, settings={"stride": 1}, frames=frames,
        verdict=Verdict("fake", 0.7, "confident", "elevated", "text", 0.5),
    )
    d = json.loads(json.dumps(res.to_json()))
    assert d["schema"] == "deepyn.analysis/1"
    for key in ("path", "sha256", "frames", "fps", "width", "height"):
        assert key in d["source"]
    assert d["frames"][1]["faces"] == [] and d["frames"][1]["state"] == "no_face"
    assert d["frames"][0]["faces"][0]["box"] == [10.0, 20.0, 50.0, 60.0]
    back = AnalysisResult.from_json(d)
    assert back.frames[2].faces[0].error == "x"
    assert back.verdict.fake_score == pytest.approx(0.7)
    assert not back.model.trained
    assert math.isclose(back.frames[1].pts_s, 0.04)
