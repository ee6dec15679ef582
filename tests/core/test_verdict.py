"""Aggregators, score bands and the explicit no-score outcomes of the verdict."""

import pytest

from deepyn_gui.core.results import FaceResult, FrameResult, ModelInfo
from deepyn_gui.core.verdict import confident_aggregator, failure_sentence, mean_aggregator, video_verdict

MODEL = ModelInfo("m", "0" * 64, threshold=0.5, real_below=0.3)


def frames_for(scores_by_track, start=0):
    n = max(len(s) for s in scores_by_track.values())
    out = []
    for i in range(n):
        faces = []
        for track, scores in scores_by_track.items():
            if i < len(scores) and scores[i] is not None:
                s = scores[i]
                if s == "small":
                    faces.append(FaceResult(track, (0, 0, 10, 10), "too_small"))
                elif s == "err":
                    faces.append(FaceResult(track, (0, 0, 90, 90), "error", error="backend error: boom"))
                else:
                    faces.append(FaceResult(track, (0, 0, 90, 90), "ok", fake_score=s))
        state = "ok" if faces else "no_face"
        if faces and all(f.state == "error" for f in faces):
            state = "error"
        out.append(FrameResult(start + i, i / 25, state, tuple(faces), error="boom" if state == "error" else None))
    return out


def test_confident_strategy_branches():
    high = [0.9] * 10 + [0.1] * 10  # 10 > 20/2.5 = 8 and > 11 frames total
    assert confident_aggregator(high) == pytest.approx(0.9)
    low = [0.1] * 19 + [0.9]  # 95 % below 0.2
    assert confident_aggregator(low) == pytest.approx(0.1)
    mixed = [0.5] * 10 + [0.9] * 3
    assert confident_aggregator(mixed) == pytest.approx(mean_aggregator(mixed))
    few = [0.9] * 11  # not > 11 frames: falls through to the mean
    assert confident_aggregator(few) == pytest.approx(0.9)


def test_video_is_as_fake_as_its_fakest_person():
    v = video_verdict(frames_for({1: [0.05] * 20, 2: [0.95] * 20}), MODEL)
    assert v.label == "fake" and v.fake_score == pytest.approx(0.95)
    assert {t.track: t.label for t in v.tracks} == {1: "real", 2: "fake"}
    assert "2 people" in v.explanation
    assert v.band == "high"


def test_uncertain_between_real_below_and_threshold():
    v = video_verdict(frames_for({1: [0.4] * 15}), MODEL)
    assert v.label == "uncertain"


def test_short_spurious_track_does_not_decide():
    v = video_verdict(frames_for({1: [0.05] * 30, 7: [0.99]}), MODEL)
    assert v.label == "real"


def test_explicit_outcomes_never_carry_a_number():
    assert video_verdict(frames_for({1: [None] * 5}), MODEL).label == "no_face"
    v = video_verdict(frames_for({1: ["small"] * 5}), MODEL)
    assert v.label == "too_small" and v.fake_score is None
    v = video_verdict(frames_for({1: ["err"] * 5}), MODEL)
    assert v.label == "error" and v.fake_score is None and "boom" in v.explanation
    v = video_verdict([], MODEL)
    assert v.label == "no_face" and v.fake_score is None


def test_untrained_model_says_so():
    v = video_verdict(frames_for({1: [0.6] * 5}), ModelInfo("m", "0" * 64, trained=False))
    assert "UNTRAINED" in v.explanation


def test_mean_aggregator_and_unknown():
    v = video_verdict(frames_for({1: [0.9] * 13 + [0.1] * 7}), MODEL, aggregator="mean")
    assert v.fake_score == pytest.approx((0.9 * 13 + 0.1 * 7) / 20)
    with pytest.raises(ValueError):
        video_verdict([], MODEL, aggregator="median")


def test_explanation_names_the_deciding_person_when_a_short_track_exists():
    v = video_verdict(frames_for({1: [0.05] * 30, 7: [0.99]}), MODEL)
    assert "only person" not in v.explanation
    assert "person 1" in v.explanation


def test_failures_name_the_stage_that_failed():
    """A detector failure is not reported as a backend error (and vice versa)."""
    det = [FrameResult(i, i / 25, "error", error="face detection failed: cv2.error: bad frame") for i in range(4)]
    v = video_verdict(det, MODEL)
    assert v.label == "error" and v.fake_score is None
    assert v.explanation == "Face detection failed: cv2.error: bad frame"
    assert "Backend" not in v.explanation
    v = video_verdict(frames_for({1: ["err"] * 5}), MODEL)
    assert v.explanation == "Backend error: boom"
    assert failure_sentence("  ") == "Analysis failed (no reason was recorded)."
    assert failure_sentence("disk vanished") == "Analysis failed: disk vanished"
