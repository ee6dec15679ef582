"""From per-frame scores to a verdict a journalist can read.

Aggregators are named so exports can say which one produced a number. The video is as fake as its
fakest person (track). States that mean "nothing was evaluated" (no face, faces too small, backend
error) are outcomes of their own and never carry a number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .results import AnalysisResult, FrameResult, ModelInfo, ScoreBand, TrackVerdict, Verdict, VerdictLabel

Aggregator = Callable[[Sequence[float]], float]

#: The words every shell (CLI, viewer, report) shows for a verdict label: one vocabulary, kept here so
#: the CLI cannot say FAKE where the report says LIKELY MANIPULATED. JSON/CSV keep the machine-readable
#: ``label`` ("fake", "real", ...); these are for people.
VERDICT_WORDS: dict[str, str] = {
    "fake": "LIKELY MANIPULATED",
    "uncertain": "UNCERTAIN",
    "real": "NO SIGN OF MANIPULATION FOUND",
    "no_face": "NO FACE FOUND",
    "too_small": "FACES TOO SMALL TO JUDGE",
    "error": "ANALYSIS ERROR",
}


def verdict_words(label: str) -> str:
    """The headline words for a verdict label (an unknown label is shown as itself, upper-cased)."""
    return VERDICT_WORDS.get(label, label.replace("_", " ").upper())


def not_analysed(result: AnalysisResult) -> list[str]:
    """What this analysis did NOT look at, in sentences a reader can act on.

    Every report, the CLI and the viewer print these, so nobody reads a verdict as covering the
    soundtrack, the background, or frames the stride skipped.
    """
    stride = int(result.settings.get("stride", 1) or 1)
    notes = not_analysed_plan(1)
    total = int(result.source.frames or 0)
    done = len(result.frames)
    if stride > 1:
        notes.append(f"Frames skipped by --stride {stride}: 1 frame in {stride} was analysed "
                     f"({done} of {total} frames).")
    elif total and done < total:
        notes.append(f"Frames after the first {done} of {total} were not analysed (stopped early or limited by "
                     "--max-frames).")
    return notes


def not_analysed_plan(stride: int) -> list[str]:
    """What an analysis with this stride will not look at, known before it runs (the viewer shows it
    while the scores stream in; :func:`not_analysed` gives the final account)."""
    notes = ["The audio track (if the file has one): the model looks only at the pictures.",
             ("Anything outside the detected faces (background, body, hands, on-screen text): the model "
              "looks only at face crops.")]
    if stride > 1:
        notes.append(f"Frames skipped by the stride {stride}: 1 frame in {stride} is analysed.")
    return notes


def model_limits(model: ModelInfo, n: int = 2) -> list[str]:
    """The first ``n`` limits of ``model``'s card, one sentence each ([] without a card that describes it)."""
    from .model.card import model_card_text, weak_spots

    return weak_spots(model_card_text(model), n)


def known_limits(result: AnalysisResult, n: int = 2) -> list[str]:
    """The first limits of the model's card, one sentence each, for a verdict that carries a score.

    Why beside every verdict, not only in the report: a journalist who reads "no sign of manipulation"
    in the viewer or the terminal must also read that this model misses most fully generated talking
    heads. A verdict without a score (no face, too small, error) or a model without a card gives [].
    """
    if result.verdict.label not in ("fake", "real", "uncertain"):
        return []
    return model_limits(result.model, n)


def clip_cautions(result: AnalysisResult) -> list[str]:
    """What about *this clip* makes its score less reliable, in sentences a reader can act on.

    Why: the model's own limits (:func:`known_limits`) are the same for every clip, but a journalist
    needs to know when the clip in front of them is the kind the model gets wrong. Today that is one
    measured case: faces smaller than the model's input, which it enlarges. Shrinking our held-out real
    videos' faces to 160 and 112 px raised every one's share of frames at or above the bundled model's
    threshold (``bench/accuracy_face_size.py``; model card, *Calibration*); the demo's manipulated frames
    stayed detected, so the caution is about false alarms only. Only beside a verdict with a score.
    """
    return frame_cautions(result.frames, result.verdict.label)


def frame_cautions(frames: Iterable[FrameResult], label: str) -> list[str]:
    """:func:`clip_cautions` from the frames scored so far and the (provisional) verdict's label, so the
    viewer can show the caution while the scores stream in."""
    if label not in ("fake", "real", "uncertain"):
        return []
    crops = [f.crop for fr in frames for f in fr.faces if f.state == "ok" and f.crop is not None]
    if not crops:
        return []
    side = float(np.median([c.side for c in crops]))
    size = int(crops[0].size)
    if side >= size:
        return []
    return [(f"The faces in this clip are small: the model enlarges them (a typical face crop covers {side:.0f} px "
             f"of the frame; the model looks at {size} px). Small, enlarged faces make real footage score higher "
             "(measured for the bundled model: see its card), so treat a high score with extra care.")]


def mean_aggregator(scores: Sequence[float]) -> float:
    """Plain mean of all frame scores."""
    return float(np.mean(scores))


def confident_aggregator(scores: Sequence[float]) -> float:
    """The DFDC winner's "confident strategy" (Seferbekov, 2020).

    If more than 11 frames and more than n/2.5 frames score above 0.8, average those; else if more
    than 90 % of frames score below 0.2, average those; else average everything. Confident frames
    dominate because a manipulation is usually visible only part of the time.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    high = s[s > 0.8]
    if n > 11 and len(high) > n / 2.5:
        return float(high.mean())
    low = s[s < 0.2]
    if len(low) > 0.9 * n:
        return float(low.mean())
    return float(s.mean())


@dataclass(frozen=True)
class SpanRule:
    """What counts as a *sustained* manipulated span (the ``span`` aggregator).

    A forensic user cares about a manipulated stretch even when it is a minority of the clip, but
    a few stray high frames must not decide. Scores are first smoothed by a rolling median over
    ``smooth_s`` seconds (so an isolated frame or two cannot open or break a run); a run is a stretch
    of consecutive scored frames, no gap over ``max_gap_s`` (face lost), whose smoothed score is at
    or above a level, and it must last at least ``min_span_s`` seconds. The level is the start of
    the model's top score band (``"top_band"``: calibrated on held-out real faces so that few score
    there), the decision threshold itself (``"threshold"``), or, by default (``"model"``), whichever
    of the two the model's calibration names (``ModelInfo.span_level``, top band unless it says
    otherwise). The stricter top band is the usual choice because a span overrules the whole-clip
    figure: it needs strong evidence; a model whose top band starts so high that even its
    self-blended demo frames rarely reach it carries "threshold" instead (model card, *Verdict*).
    Measured on our held-out clips and on deepfakes-dev, 1-3 s and either level gave the same
    verdicts for models 2.0 and 2.1 (model card, *Verdict*).
    """

    min_span_s: float = 2.0
    smooth_s: float = 1.0
    max_gap_s: float = 1.0
    level: str = "model"


#: The rule the ``span`` aggregator uses (chosen on our own held-out clips; see the model card).
SPAN_RULE = SpanRule()


#: How the span levels read in reports and ``deepyn models info``.
SPAN_LEVEL_NAMES: dict[str, str] = {
    "top_band": "the start of the top score band",
    "threshold": "the decision threshold; this model's top band starts too high for a span to reach it",
}


def span_level(model: ModelInfo, rule: SpanRule = SPAN_RULE) -> float:
    """The smoothed score a sustained span must hold: the top band's lower edge (never below the threshold),
    or the threshold itself, as the rule or (by default) the model's calibration says."""
    level = model.span_level if rule.level == "model" else rule.level
    if level == "threshold":
        return float(model.threshold)
    if level != "top_band":
        raise ValueError(f"unknown span level {level!r}; use 'model', 'top_band' or 'threshold'")
    top = max(model.bands or DEFAULT_BANDS, key=lambda b: b.lo)
    return max(float(top.lo), float(model.threshold))


@dataclass(frozen=True)
class Span:
    """A sustained run of frames at or above the threshold, as the explanation reports it."""

    first_frame: int
    last_frame: int
    start_s: float
    stop_s: float
    frames: int  # scored frames in the run
    level: float  # mean of the smoothed scores in the run (each is >= threshold, so this is too)

    @property
    def duration_s(self) -> float:
        return self.stop_s - self.start_s


def rolling_median(
    times: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, window_s: float,
) -> np.ndarray:
    """Median of the scores within +-window_s/2 of each frame (times sorted ascending)."""
    t = np.asarray(times, np.float64)
    s = np.asarray(scores, np.float64)
    lo = np.searchsorted(t, t - window_s / 2, side="left")
    hi = np.searchsorted(t, t + window_s / 2, side="right")
    return np.array([np.median(s[a:b]) for a, b in zip(lo, hi)], np.float64)


def find_span(
    indices: Sequence[int], times: Sequence[float], scores: Sequence[float], threshold: float,
    rule: SpanRule = SPAN_RULE,
) -> Span | None:
    """The longest sustained run at or above ``threshold`` lasting ``rule.min_span_s``, or None.

    A run's duration counts its last frame as lasting one typical frame step, so 75 frames at 25 fps
    last 3.0 s whatever the stride.
    """
    if not scores:
        return None
    order = np.argsort(np.asarray(times, np.float64), kind="stable")
    t = np.asarray(times, np.float64)[order]
    s = np.asarray(scores, np.float64)[order]
    idx = np.asarray(indices, np.int64)[order]
    best: Span | None = None
    # a lost face splits the timeline; the analysis stride's own step never does
    gap = max(rule.max_gap_s, 1.5 * float(np.median(np.diff(t)))) if len(t) > 1 else rule.max_gap_s
    cuts = np.flatnonzero(np.diff(t) > gap) + 1
    for seg in np.split(np.arange(len(t)), cuts):
        ts, ss = t[seg], s[seg]
        step = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
        smooth = rolling_median(ts, ss, rule.smooth_s)
        above = smooth >= threshold
        k = 0
        while k < len(seg):
            if not above[k]:
                k += 1
                continue
            j = k
            while j + 1 < len(seg) and above[j + 1]:
                j += 1
            start, stop = float(ts[k]), float(ts[j]) + step
            if stop - start >= rule.min_span_s - 1e-9 and (best is None or stop - start > best.duration_s):
                best = Span(int(idx[seg[k]]), int(idx[seg[j]]), start, stop, j - k + 1,
                            float(smooth[k : j + 1].mean()))
            k = j + 1
    return best


AGGREGATORS: dict[str, tuple[Aggregator, str]] = {
    # "span" = the confident strategy, except that a sustained span at or above the threshold decides
    # on its own (handled in track_verdict, which knows the frames' times and the model's threshold)
    "span": (confident_aggregator, ("span rule (a sustained run of high-scoring frames decides; "
                                    "otherwise the DFDC confident strategy)")),
    "confident": (confident_aggregator, "DFDC confident strategy (confident frames dominate)"),
    "mean": (mean_aggregator, "mean of all scored frames"),
}

#: The aggregator every shell uses unless told otherwise.
DEFAULT_AGGREGATOR = "span"

DEFAULT_BANDS: tuple[ScoreBand, ...] = (
    ScoreBand(0.0, 0.2, "low", "little sign of manipulation in the faces the model saw"),
    ScoreBand(0.2, 0.5, "inconclusive (low)", "weak signs; not enough to call it manipulated"),
    ScoreBand(0.5, 0.8, "elevated", "signs of manipulation; check the flagged frames and the mask"),
    ScoreBand(0.8, 1.01, "high", "strong signs of face manipulation on many frames"),
)


def band_for(score: float, bands: Sequence[ScoreBand]) -> ScoreBand:
    """The band a score falls in (the last band catches 1.0)."""
    for b in bands or DEFAULT_BANDS:
        if b.contains(score):
            return b
    return (bands or DEFAULT_BANDS)[-1]


def label_for(score: float, model: ModelInfo) -> VerdictLabel:
    """fake at or above the model's threshold, real below ``real_below``, uncertain between."""
    if score >= model.threshold:
        return "fake"
    if score < min(model.real_below, model.threshold):
        return "real"
    return "uncertain"


@dataclass
class _TrackStats:
    scores: list[float]
    times: list[float] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    seen: int = 0
    too_small: int = 0
    errors: int = 0
    last_error: str = ""


#: A person must be scored over at least this much of the clip (seconds) to decide the video verdict alone.
MIN_DECISIVE_TRACK_S = 1.0


def _seen_seconds(times: Sequence[float]) -> float:
    """How long a person was scored: first to last scored frame, plus one typical step for the last."""
    if not times:
        return 0.0
    t = np.sort(np.asarray(times, np.float64))
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    return float(t[-1] - t[0]) + step


def _collect(frames: Iterable[FrameResult]) -> tuple[dict[int, _TrackStats], int, int, int, str]:
    tracks: dict[int, _TrackStats] = defaultdict(lambda: _TrackStats([]))
    n_frames = n_no_face = n_error_frames = 0
    last_error = ""
    for fr in frames:
        n_frames += 1
        if fr.state == "no_face":
            n_no_face += 1
        if fr.state == "error" and not fr.faces:
            n_error_frames += 1
            last_error = fr.error or last_error
        for face in fr.faces:
            st = tracks[face.track]
            st.seen += 1
            if face.state == "ok" and face.fake_score is not None:
                st.scores.append(face.fake_score)
                st.times.append(float(fr.pts_s))
                st.indices.append(fr.index)
            elif face.state == "too_small":
                st.too_small += 1
            elif face.state == "error":
                st.errors += 1
                st.last_error = face.error or st.last_error
    return tracks, n_frames, n_no_face, n_error_frames, last_error


def failure_sentence(error: str) -> str:
    """A recorded failure as the sentence a user reads; the text already names its stage.

    Stages write "backend error: ...", "face detection failed: ..."; a bare or empty text says only
    that the analysis failed, rather than blaming a stage it may not have been.
    """
    error = error.strip()
    if not error:
        return "Analysis failed (no reason was recorded)."
    lowered = error.lower()
    if not lowered.startswith(("backend error", "face detection failed", "decode", "analysis failed")):
        error = f"analysis failed: {error}"
    return error[0].upper() + error[1:]


def _untrained_note(model: ModelInfo) -> str:
    return " The model is UNTRAINED: this number means nothing." if not model.trained else ""


def track_verdict(track: int, st: _TrackStats, model: ModelInfo, aggregator: str) -> TrackVerdict:
    """Verdict for one person."""
    agg, agg_text = AGGREGATORS[aggregator]
    if not st.scores:
        if st.errors:
            return TrackVerdict(track, "error", None, "", failure_sentence(st.last_error), 0, st.seen)
        return TrackVerdict(
            track, "too_small", None, "",
            f"Face too small to judge on all {st.seen} frames (needs a larger face).", 0, st.seen,
        )
    score = agg(st.scores)
    span_text = ""
    if aggregator == "span":
        level = span_level(model)
        span = find_span(st.indices, st.times, st.scores, level)
        if span is not None:
            score = max(score, span.level)
            span_text = (
                f" A sustained span decided: frames {span.first_frame}–{span.last_frame} "
                f"({span.start_s:.1f}–{span.stop_s:.1f} s, {span.duration_s:.1f} s; {span.frames} scored frames) "
                f"held a score of at least {level:.3f} (median over {SPAN_RULE.smooth_s:g} s)."
            )
        else:
            span_text = (f" No sustained span ({SPAN_RULE.min_span_s:g} s or more holding a score of at "
                         f"least {level:.3f}).")
            # a shorter run still deserves a look (and mid-analysis it may be a span still growing)
            short = find_span(st.indices, st.times, st.scores, level, replace(SPAN_RULE, min_span_s=0.0))
            if short is not None:
                span_text += (f" The longest run at that level: frames {short.first_frame}–{short.last_frame} "
                              f"({short.start_s:.1f}–{short.stop_s:.1f} s, {short.duration_s:.1f} s); review it.")
    band = band_for(score, model.bands)
    label = label_for(score, model)
    extra = []
    if st.too_small:
        extra.append(f"{st.too_small} frames too small")
    if st.errors:
        extra.append(f"{st.errors} frames failed")
    tail = f" ({', '.join(extra)})" if extra else ""
    text = (
        f"Person {track}: {score:.2f} — {band.name}: {band.meaning.rstrip('.')}.{span_text} "
        f"{len(st.scores)} of {st.seen} frames scored{tail}; {agg_text}.{_untrained_note(model)}"
    )
    return TrackVerdict(track, label, score, band.name, text, len(st.scores), st.seen)


def video_verdict(
    frames: Iterable[FrameResult],
    model: ModelInfo,
    aggregator: str = DEFAULT_AGGREGATOR,
    min_track_frames: int = 3,
    min_track_s: float = MIN_DECISIVE_TRACK_S,
) -> Verdict:
    """The video verdict: the fakest person decides.

    A person scored on fewer than ``min_track_frames`` frames, or for less than ``min_track_s`` seconds
    of the clip (a passing face in a crowd, a false detection), counts only when nobody was seen longer:
    half a second of a small background face must not decide a whole clip. Such a person's score is
    still reported, with the frames to review. The duration rule makes the standard the same at every
    ``--stride`` (a frame count alone meant 0.1 s at stride 1 and 0.5 s at stride 5).
    """
    if aggregator not in AGGREGATORS:
        raise ValueError(f"unknown aggregator {aggregator!r}; choose from {', '.join(AGGREGATORS)}")
    tracks, n_frames, n_no_face, n_error_frames, last_error = _collect(frames)
    per_track = tuple(track_verdict(t, st, model, aggregator) for t, st in sorted(tracks.items()))
    scored = [tv for tv in per_track if tv.fake_score is not None]
    if not scored:
        if n_frames == 0:
            return Verdict("no_face", None, aggregator, "", "No frame was analysed.", model.threshold, per_track)
        if any(tv.label == "error" for tv in per_track) or n_error_frames:
            msg = next((tv.explanation for tv in per_track if tv.label == "error"), failure_sentence(last_error))
            return Verdict("error", None, aggregator, "", msg, model.threshold, per_track)
        if per_track:
            return Verdict(
                "too_small", None, aggregator, "",
                "Faces were found but all were too small to judge.", model.threshold, per_track,
            )
        return Verdict(
            "no_face", None, aggregator, "",
            f"No face found in {n_frames} analysed frames.", model.threshold, per_track,
        )
    seen_s = {t: _seen_seconds(st.times) for t, st in tracks.items()}

    def decisive(tv: TrackVerdict) -> bool:
        return tv.frames_scored >= min_track_frames and seen_s[tv.track] >= min_track_s - 1e-9

    long_enough = [tv for tv in scored if decisive(tv)] or scored
    worst = max(long_enough, key=lambda tv: tv.fake_score or 0.0)
    assert worst.fake_score is not None
    if len(scored) == 1:
        who = "the only person"
    elif len(long_enough) == 1:
        who = (f"person {worst.track}, the only one scored on at least {min_track_frames} frames "
               f"over {min_track_s:g} s or more")
    else:
        who = f"the most suspicious of {len(long_enough)} people"
    text = f"Decided by {who}. {worst.explanation}"
    brief = [tv for tv in scored if tv not in long_enough and (tv.fake_score or 0.0) > (worst.fake_score or 0.0)]
    for tv in brief:
        st = tracks[tv.track]
        text += (f" Person {tv.track} scored higher ({tv.fake_score:.2f}) but was seen too briefly to decide "
                 f"({tv.frames_scored} scored frames, {seen_s[tv.track]:.1f} s): review frames "
                 f"{min(st.indices)}–{max(st.indices)}.")
    if n_no_face:
        text += f" No face on {n_no_face} of {n_frames} analysed frames."
    return Verdict(worst.label, worst.fake_score, aggregator, worst.band, text, model.threshold, per_track)


#: Raise when the verdict's logic changes in a way its parameters below do not show.
VERDICT_RULES_VERSION = 1


def verdict_rules_id() -> str:
    """A short fingerprint of the rules that turn frame scores into a verdict (span rule, brief-person rule,
    fallback bands). The session cache stores it: an entry made under other rules gets its verdict derived
    again from its frames instead of showing the old one."""
    import hashlib
    import json
    from dataclasses import asdict

    rules = {"version": VERDICT_RULES_VERSION, "span": asdict(SPAN_RULE), "min_track_s": MIN_DECISIVE_TRACK_S,
             "default_aggregator": DEFAULT_AGGREGATOR, "bands": [[b.lo, b.hi, b.name] for b in DEFAULT_BANDS]}
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:16]
