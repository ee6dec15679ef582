"""Aggregators, score bands and the explicit no-score outcomes of the verdict."""

import pytest

from deepyn_gui.core.results import FaceResult, FrameResult, ModelInfo, ScoreBand
from deepyn_gui.core.verdict import (
    AGGREGATORS,
    DEFAULT_AGGREGATOR,
    SpanRule,
    confident_aggregator,
    failure_sentence,
    find_span,
    mean_aggregator,
    rolling_median,
    span_level,
    video_verdict,
)

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


def test_a_briefly_seen_person_does_not_decide_at_any_stride_but_is_named():
    # a passing face scored on 3 frames at stride 5 (frames 5 apart at 25 fps): 0.6 s of the clip
    faces3 = [0.98, 0.97, 0.99]
    rows = {1: [0.2] * 12, 3: [None] * 9 + faces3}
    strided = [FrameResult(i * 5, i * 5 / 25, fr.state, fr.faces) for i, fr in enumerate(frames_for(rows))]
    v = video_verdict(strided, MODEL)
    assert v.label != "fake" and v.fake_score == pytest.approx(0.2)
    assert "Person 3 scored higher (0.98)" in v.explanation and "review frames 45–55" in v.explanation
    # the same person seen for 1.2 s decides
    rows = {1: [0.2] * 12, 3: [None] * 6 + [0.98] * 6}
    strided = [FrameResult(i * 5, i * 5 / 25, fr.state, fr.faces) for i, fr in enumerate(frames_for(rows))]
    assert video_verdict(strided, MODEL).label == "fake"
    # alone in the clip, a brief person still decides (nobody was seen longer)
    alone = [FrameResult(i * 5, i * 5 / 25, fr.state, fr.faces) for i, fr in enumerate(frames_for({3: faces3}))]
    assert video_verdict(alone, MODEL).label == "fake"


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


# --- the span rule: a sustained manipulated stretch decides even when it is a minority of the clip ---

BANDED = ModelInfo("m", "0" * 64, threshold=0.6, real_below=0.2, bands=(
    ScoreBand(0.0, 0.2, "low", "l"), ScoreBand(0.2, 0.6, "inconclusive", "i"),
    ScoreBand(0.6, 0.9, "elevated", "e"), ScoreBand(0.9, 1.01, "high", "h"),
))


def demo_like(span=(75, 150), n=225, inside=0.95, outside=0.3):
    """9 s at 25 fps, frames 75-149 (3.0-6.0 s) manipulated: the demo clip's layout."""
    return [inside if span[0] <= i < span[1] else outside for i in range(n)]


def test_minority_span_decides_and_is_named():
    scores = demo_like()
    assert video_verdict(frames_for({1: scores}), BANDED, aggregator="confident").label != "fake"
    v = video_verdict(frames_for({1: scores}), BANDED, aggregator="span")
    assert v.label == "fake" and v.aggregator == "span"
    assert v.fake_score == pytest.approx(0.95)
    assert "frames 75–149" in v.explanation and "3.0–6.0 s" in v.explanation
    assert "A sustained span decided" in v.explanation


def test_span_is_the_default_and_selectable_with_the_others():
    assert DEFAULT_AGGREGATOR == "span" and {"span", "confident", "mean"} <= set(AGGREGATORS)
    from deepyn_gui.core.pipeline import AnalysisSettings

    assert AnalysisSettings().aggregator == DEFAULT_AGGREGATOR
    v = video_verdict(frames_for({1: demo_like()}), BANDED)
    assert v.aggregator == "span" and v.label == "fake"


def test_isolated_high_frames_do_not_make_a_span():
    scores = [0.99 if i % 4 == 0 else 0.3 for i in range(225)]  # 1 frame in 4 high, everywhere
    assert find_span(range(225), [i / 25 for i in range(225)], scores, 0.9) is None
    v = video_verdict(frames_for({1: scores}), BANDED, aggregator="span")
    assert v.label != "fake" and "No sustained span" in v.explanation


def test_a_few_low_frames_do_not_break_a_span():
    scores = demo_like()
    for i in range(80, 150, 10):
        scores[i] = 0.05  # single-frame dropouts inside the manipulated stretch
    sp = find_span(range(225), [i / 25 for i in range(225)], scores, 0.9)
    assert sp is not None and sp.first_frame <= 76 and sp.last_frame >= 148
    assert sp.duration_s == pytest.approx(3.0, abs=0.1)


def test_a_short_run_does_not_decide():
    scores = demo_like(span=(100, 125))  # 1 s: below the 2 s minimum
    v = video_verdict(frames_for({1: scores}), BANDED, aggregator="span")
    assert v.label != "fake"
    assert find_span(range(225), [i / 25 for i in range(225)], scores, 0.9, SpanRule(min_span_s=0.8)) is not None


def test_a_lost_face_splits_a_run():
    idx = list(range(25)) + list(range(100, 125))  # 1 s, a 3 s gap, 1 s: not 2 s sustained
    times = [i / 25 for i in idx]
    assert find_span(idx, times, [0.95] * 50, 0.9) is None
    sp = find_span(idx, times, [0.95] * 50, 0.9, SpanRule(max_gap_s=5.0))
    assert sp is not None and (sp.first_frame, sp.last_frame) == (0, 124)


def test_span_works_at_a_stride():
    idx = list(range(0, 225, 5))
    times = [i / 25 for i in idx]
    scores = [0.95 if 75 <= i < 150 else 0.3 for i in idx]
    sp = find_span(idx, times, scores, 0.9)
    assert sp is not None and (sp.first_frame, sp.last_frame) == (75, 145)
    assert (sp.start_s, sp.stop_s) == pytest.approx((3.0, 6.0))
    coarse = list(range(0, 225, 30))  # 1.2 s between analysed frames: the stride is not a lost face
    sp = find_span(coarse, [i / 25 for i in coarse], [0.95 if 60 <= i < 180 else 0.3 for i in coarse], 0.9)
    assert sp is not None and (sp.first_frame, sp.last_frame) == (60, 150)


def test_span_level_is_the_top_band_never_below_the_threshold():
    assert span_level(BANDED) == pytest.approx(0.9)
    assert span_level(BANDED, SpanRule(level="threshold")) == pytest.approx(0.6)
    low_bands = ModelInfo("m", "0" * 64, threshold=0.7, bands=(ScoreBand(0.0, 0.5, "a", "a"), ScoreBand(0.5, 1.01, "b", "b")))
    assert span_level(low_bands) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        span_level(BANDED, SpanRule(level="median"))


def test_a_model_can_carry_its_span_level_in_its_calibration():
    """A model whose top band starts very high (no span of self-blended frames reaches it) names the
    threshold as its span level; every other model keeps the top band, and an explicit rule still wins."""
    import dataclasses
    import json

    from deepyn_gui.core.errors import ModelError
    from deepyn_gui.core.model.metadata import calibration_json, model_info_from_metadata, parse_calibration

    at_threshold = dataclasses.replace(BANDED, span_level="threshold")
    assert span_level(BANDED) == pytest.approx(0.9) and span_level(at_threshold) == pytest.approx(0.6)
    assert span_level(at_threshold, SpanRule(level="top_band")) == pytest.approx(0.9)
    scores = demo_like(inside=0.8)  # 3 s over the threshold, under the top band
    assert video_verdict(frames_for({1: scores}), BANDED).label != "fake"
    decided = video_verdict(frames_for({1: scores}), at_threshold)
    assert decided.label == "fake" and "sustained span" in decided.explanation
    assert ModelInfo.from_json(at_threshold.to_json()) == at_threshold
    old = BANDED.to_json()
    del old["span_level"]  # exports written before the field existed read as the top band
    assert ModelInfo.from_json(old).span_level == "top_band"
    with pytest.raises(ValueError, match="span level"):
        ModelInfo.from_json({**old, "span_level": "anything"})
    bands = [[b.lo, b.hi, b.name, b.meaning] for b in BANDED.bands]
    text = calibration_json(0.6, bands, 0.2, span_level="threshold")
    assert json.loads(text)["span_level"] == "threshold"
    info = model_info_from_metadata("m.onnx", {"deepyn.calibration": text}, "0" * 64)
    assert info.span_level == "threshold" and info.threshold == pytest.approx(0.6)
    assert model_info_from_metadata("m.onnx", {"deepyn.calibration": calibration_json(0.6, bands)}, "0" * 64).span_level == "top_band"
    with pytest.raises(ModelError, match="span_level"):
        parse_calibration(json.dumps({**json.loads(text), "span_level": "median"}))
    with pytest.raises(ModelError, match="span_level"):
        calibration_json(0.6, bands, span_level="median")


def test_elevated_but_not_high_span_does_not_override():
    """3 s at 0.8 (over the threshold, under the top band): the span rule leaves it to the confident strategy."""
    scores = demo_like(inside=0.8)
    span = video_verdict(frames_for({1: scores}), BANDED, aggregator="span")
    conf = video_verdict(frames_for({1: scores}), BANDED, aggregator="confident")
    assert span.fake_score == pytest.approx(conf.fake_score) and span.label == conf.label


def test_rolling_median_is_centred_in_time():
    m = rolling_median([0, 1, 2, 3, 4], [0, 0, 9, 0, 0], 2.0)
    assert list(m) == [0, 0, 0, 0, 0]
    m = rolling_median([0, 1, 2, 3, 4], [9, 9, 9, 0, 0], 2.0)
    assert list(m) == [9, 9, 9, 0, 0]


def test_known_limits_are_the_cards_first_limits_and_only_beside_a_score(tmp_path):
    """Beside every verdict with a score, the CLI and the viewer print the first sentence of the model
    card's first two limits; for the bundled model the first is that generated talking heads are missed."""
    import dataclasses
    from pathlib import Path

    from deepyn_gui.backends import default_model_path
    from deepyn_gui.core.model.card import weak_spots
    from deepyn_gui.core.verdict import known_limits

    card = Path(default_model_path()).with_suffix(".md").read_text(encoding="utf-8")
    spots = weak_spots(card)
    assert len(spots) == 2
    assert "fully generated talking head" in spots[0] and spots[0].startswith("A low score does not clear")
    assert "real" in spots[1].lower() and "score high" in spots[1]
    assert all("**" not in s and "`" not in s for s in spots)

    mine = tmp_path / "m.md"
    mine.write_text("# m\n\nSummary.\n\n## Training\n- not a limit\n\n## Known limits\n\n"
                    "- **Misses `new__tools`.** More text.\n- Second limit: here.\n- Third.\n")
    model = dataclasses.replace(MODEL, card_path=str(mine))
    v = video_verdict(frames_for({1: [0.9] * 20}), model)

    class Result:  # the two fields known_limits reads
        verdict = v

    Result.model = model
    assert known_limits(Result()) == ["Misses new__tools.", "Second limit: here."]  # type: ignore[arg-type]
    Result.verdict = video_verdict(frames_for({1: [None] * 5}), model)
    assert Result.verdict.label == "no_face" and known_limits(Result()) == []  # type: ignore[arg-type]
    Result.verdict, Result.model = v, MODEL  # no card: nothing is made up
    assert known_limits(Result()) == []  # type: ignore[arg-type]


def test_a_run_shorter_than_the_span_rule_is_named_for_review_but_does_not_decide():
    """1.2 s at the top band is not a sustained span, but the explanation points at it (mid-analysis
    it may be a span still growing); isolated high frames give no such pointer."""
    scores = demo_like(n=225, span=(100, 130))  # 30 frames = 1.2 s
    v = video_verdict(frames_for({1: scores}), BANDED, aggregator="span")
    assert v.label != "fake" and "No sustained span" in v.explanation
    assert "The longest run at that level: frames 10" in v.explanation and "1.2 s); review it." in v.explanation
    flat = video_verdict(frames_for({1: [0.3] * 100}), BANDED, aggregator="span")
    assert "longest run" not in flat.explanation


def test_a_card_that_lists_other_models_is_not_shown_for_this_one(tmp_path):
    """After a model upgrade the card beside the model path describes the new file: a result of the old
    model must not be shown with its limits (nor the report with its figures). A card without any
    SHA-256 (a user's own model) is used as it is."""
    import dataclasses

    from deepyn_gui.core.model.card import card_describes, model_card_text
    from deepyn_gui.core.verdict import known_limits

    mine, other = "a" * 64, "b" * 64
    card = tmp_path / "m.md"
    card.write_text(f"# m\n\n| file | SHA-256 |\n|---|---|\n| m.onnx | `{other}` |\n\n## Known limits\n- Misses X.\n")
    model = dataclasses.replace(MODEL, sha256=mine, card_path=str(card))
    v = video_verdict(frames_for({1: [0.9] * 20}), model)

    class Result:
        verdict = v

    Result.model = model
    assert not card_describes(card.read_text(), mine) and model_card_text(model) == ""
    assert known_limits(Result()) == []  # type: ignore[arg-type]
    Result.model = dataclasses.replace(model, sha256=other)
    assert known_limits(Result()) == ["Misses X."]  # type: ignore[arg-type]
    card.write_text("# m\n\n## Known limits\n- Misses Y.\n")  # no SHA-256 listed: taken as it is
    assert card_describes(card.read_text(), mine) and known_limits(Result()) == ["Misses Y."]  # type: ignore[arg-type]


def test_a_clip_of_small_faces_carries_a_caution_beside_its_score():
    """Faces the model must enlarge (a typical crop under its 224 px input) make real footage score higher;
    the caution names the typical crop size (the median, so a few close-ups do not hide it), and says
    nothing when the faces are large enough or when there is no score at all."""
    import dataclasses

    from deepyn_gui.core.results import CropTransform
    from deepyn_gui.core.verdict import clip_cautions

    def result_with(sides, scores=None):
        frames = frames_for({1: scores or [0.9] * len(sides)})
        frames = [dataclasses.replace(fr, faces=tuple(dataclasses.replace(f, crop=CropTransform(0, 0, side))
                                                      for f in fr.faces))
                  for fr, side in zip(frames, sides)]

        class Result:
            verdict = video_verdict(frames, MODEL)

        Result.frames = frames
        return Result()

    small = clip_cautions(result_with([150] * 15 + [400] * 5))  # a few close-ups: the median is still 150
    assert len(small) == 1 and "covers 150 px" in small[0] and "looks at 224 px" in small[0]
    assert "make real footage score higher" in small[0] and "treat a high score with extra care" in small[0]
    assert clip_cautions(result_with([224] * 10)) == []  # the model's own size: nothing is enlarged
    assert clip_cautions(result_with([400] * 15 + [150] * 5)) == []
    no_score = result_with([150] * 5, scores=["small"] * 5)
    assert no_score.verdict.label not in ("fake", "real", "uncertain") and clip_cautions(no_score) == []
