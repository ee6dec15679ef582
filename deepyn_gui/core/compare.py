"""Side-by-side comparison of inference backends on the *identical* crops, measured like for like.

One decode → detect → track → crop pass (the analysis pipeline's own :class:`DetectStage`, with its
detect-every schedule, and its face/frame result builders) feeds every backend the same read-only uint8 crop batch
(e.g. ONNX CPU fp32 and the VCK5000, or fp32 and int8 when no card is present). The original
U-YNet comparison timed the GPUs with file loading at batch 1 and the card without preprocessing;
here the shared work (decode, detection, cropping, stacking) is measured once and charged equally
to every backend, and each backend's own time is its ``infer`` call (its own pre/post-processing
included, e.g. the int8 quantisation of the VART backend):

* batch latency p50/p95 — wall time of one ``infer`` call,
* throughput            — crops / total ``infer`` time,
* end-to-end fps        — frames / (shared decode+detect+crop time + this backend's ``infer`` time),
  i.e. the serial cost of a frame; ``fps_pipelined`` is the bound when the stages overlap
  (frames / max(shared, infer)).

Backends run one after the other on each batch (alternating which goes first), never at the same
time, so two CPU backends do not compete for the same cores while being timed. A first, untimed
warm-up call per backend keeps one-off session set-up out of the figures.

Agreement (each backend against the first, the reference): mean/max/p95 |Δ fake_score| over faces
both scored, mask IoU at 0.5 (pooled over pixels of all paired faces), per-face decision agreement at
each model's threshold, and whether the video verdicts (``core.verdict.video_verdict``) agree.
Results export as JSON (``deepyn.compare/1``), CSV (one row per face) and a PNG chart drawn with
OpenCV. Qt-free: the CLI and the GUI's comparison view consume the same generator.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .detect_stage import DetectStage, PreparedFrame, face_result, frame_result
from .errors import BackendError, Cancelled, DeepYNError, InputError
from .inference import InferenceBackend, check_backend_output
from .pipeline import AnalysisSettings, app_info, planned_frames
from .results import FaceResult, FrameResult, SourceInfo, Verdict
from .verdict import video_verdict

SCHEMA = "deepyn.compare/1"
MASK_THRESHOLD = 0.5


# ---------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------


def _percentile_ms(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q) * 1000.0) if values else None


@dataclass
class BackendStats:
    """Timing figures of one backend, accumulated batch by batch."""

    label: str
    frames: int = 0
    crops: int = 0
    batches: int = 0
    infer_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    error_batches: int = 0
    last_error: str = ""
    #: For a backend that reports it (remote): time the server spent inferring, and the rest of each
    #: call (network, serialisation, server queue). None for local backends, or when a server did not say.
    server_infer_s: float | None = None
    network_s: float | None = None

    def add_split(self, server_s: float | None, network_s: float | None) -> None:
        if server_s is None or network_s is None:
            return
        self.server_infer_s = (self.server_infer_s or 0.0) + server_s
        self.network_s = (self.network_s or 0.0) + network_s

    def add(self, crops: int, latency_s: float, error: str | None) -> None:
        self.batches += 1
        self.infer_s += latency_s
        self.latencies_s.append(latency_s)
        if error is None:
            self.crops += crops
        else:
            self.error_batches += 1
            self.last_error = error

    @property
    def crops_per_s(self) -> float | None:
        return self.crops / self.infer_s if self.infer_s > 0 and self.crops else None

    def summary(self, shared_s: float) -> dict[str, Any]:
        """Plain-number summary; ``shared_s`` is the decode+detect+crop time both backends share."""
        serial = shared_s + self.infer_s
        pipelined = max(shared_s, self.infer_s)
        return {
            "label": self.label,
            "frames": self.frames,
            "crops": self.crops,
            "batches": self.batches,
            "error_batches": self.error_batches,
            "last_error": self.last_error,
            "infer_s": round(self.infer_s, 6),
            "shared_s": round(shared_s, 6),
            "crops_per_s": _round(self.crops_per_s, 3),
            "latency_p50_ms": _round(_percentile_ms(self.latencies_s, 50), 3),
            "latency_p95_ms": _round(_percentile_ms(self.latencies_s, 95), 3),
            "fps_e2e": _round(self.frames / serial if serial > 0 and self.frames else None, 3),
            "fps_pipelined": _round(self.frames / pipelined if pipelined > 0 and self.frames else None, 3),
            "server_infer_s": _round(self.server_infer_s, 6),
            "network_s": _round(self.network_s, 6),
        }


def _remote_split(backend: Any) -> float | None:
    """Cumulative server-side inference seconds of a backend that reports them (``timing``), else None."""
    timing = getattr(backend, "timing", None)
    if timing is None or not hasattr(timing, "to_json"):
        return None
    figures = timing.to_json()
    if figures.get("network_s") is None or figures.get("server_infer_s") is None:
        return None  # a server that did not say how long it took: no split, never a guess
    return float(figures["server_infer_s"])


def _round(v: float | None, nd: int) -> float | None:
    return None if v is None else round(float(v), nd)


@dataclass
class Agreement:
    """How much one backend agrees with the reference backend, over faces both scored."""

    faces: int = 0
    sum_abs: float = 0.0
    max_abs: float = 0.0
    abs_diffs: list[float] = field(default_factory=list)
    intersection: int = 0
    union: int = 0
    decisions_agree: int = 0
    only_one_scored: int = 0

    def add_face(
        self, score_ref: float, score: float, mask_ref: np.ndarray, mask: np.ndarray, thr_ref: float, thr: float
    ) -> None:
        d = abs(float(score) - float(score_ref))
        self.faces += 1
        self.sum_abs += d
        self.max_abs = max(self.max_abs, d)
        self.abs_diffs.append(d)
        a = mask_ref >= MASK_THRESHOLD
        b = mask >= MASK_THRESHOLD
        self.intersection += int(np.count_nonzero(a & b))
        self.union += int(np.count_nonzero(a | b))
        self.decisions_agree += int((score_ref >= thr_ref) == (score >= thr))

    def summary(self) -> dict[str, Any]:
        n = self.faces
        return {
            "faces_compared": n,
            "faces_scored_by_one_only": self.only_one_scored,
            "mean_abs_score_diff": _round(self.sum_abs / n if n else None, 6),
            "max_abs_score_diff": _round(self.max_abs if n else None, 6),
            "p95_abs_score_diff": _round(float(np.percentile(self.abs_diffs, 95)) if n else None, 6),
            # None when neither mask marks any pixel at 0.5: IoU is undefined, not perfect.
            "mask_iou": _round(self.intersection / self.union if self.union else None, 6),
            "mask_pixels_union": self.union,
            "decision_agreement": _round(self.decisions_agree / n if n else None, 6),
        }


# ---------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendOutcome:
    """What one backend made of one batch."""

    frames: tuple[FrameResult, ...]
    latency_s: float | None  # None when the batch had no crops
    error: str | None = None


@dataclass(frozen=True)
class CompareBatch:
    """One batch, as every backend saw it: yielded live to the CLI bar and the GUI charts.

    ``outcomes[i]`` belongs to ``labels[i]``; ``preview_rgb`` is the last frame of the batch (for
    display); ``summary`` is the running figures so far (same shape as the final JSON's).
    """

    labels: tuple[str, ...]
    frame_indices: tuple[int, ...]
    crops: int
    shared_s: float
    outcomes: tuple[BackendOutcome, ...]
    preview_index: int
    preview_rgb: np.ndarray | None
    done: int
    total: int
    elapsed_s: float
    summary: dict[str, Any]


@dataclass
class ComparisonResult:
    """A finished (or stopped) comparison, with provenance; serialises to ``deepyn.compare/1``."""

    source: SourceInfo
    labels: list[str]
    backends: list[dict[str, Any]]
    models: list[dict[str, Any]]
    settings: dict[str, Any]
    summary: dict[str, Any]
    frames: list[list[FrameResult]]
    verdicts: list[Verdict]
    unavailable: list[dict[str, str]] = field(default_factory=list)
    complete: bool = True
    stop_reason: str = ""
    app: dict[str, Any] = field(default_factory=dict)
    created_utc: str = ""

    def to_json(self) -> dict[str, Any]:
        verdicts = [v.to_json() for v in self.verdicts]
        summary = dict(self.summary)
        if len(self.verdicts) >= 2:
            ref = self.verdicts[0]
            summary["verdict_agreement"] = {
                label: {
                    "agree": v.label == ref.label,
                    "reference": ref.label,
                    "label": v.label,
                    "reference_score": _round(ref.fake_score, 6),
                    "score": _round(v.fake_score, 6),
                }
                for label, v in zip(self.labels[1:], self.verdicts[1:])
            }
        return {
            "schema": SCHEMA,
            "app": self.app,
            "created_utc": self.created_utc,
            "complete": self.complete,
            "stop_reason": self.stop_reason,
            "source": self.source.to_json(),
            "settings": self.settings,
            "like_for_like": (
                "shared decode+detect+crop time is measured once and charged to every backend; "
                "backends run one after the other on identical read-only crop batches"
            ),
            "backends": [
                {"label": lab, "backend": b, "model": m, "verdict": v}
                for lab, b, m, v in zip(self.labels, self.backends, self.models, verdicts)
            ],
            "unavailable": self.unavailable,
            "summary": summary,
        }


class Comparison:
    """Runs the comparison as a generator of :class:`CompareBatch`; ``result()`` afterwards.

    ``backends`` are ready instances (the first is the reference for agreement); ``labels`` name
    them in charts and exports. ``unavailable`` lists (label, reason) pairs the caller could not
    build: they are carried into the result and shown greyed out, never given numbers.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        backends: Sequence[InferenceBackend],
        labels: Sequence[str] | None = None,
        settings: AnalysisSettings | None = None,
        cancel: threading.Event | None = None,
        unavailable: Sequence[tuple[str, str]] = (),
        warmup: bool = True,
    ) -> None:
        if not backends:
            raise BackendError("a comparison needs at least one available backend")
        self.path = str(path)
        self.backends = list(backends)
        self.labels = unique_labels(list(labels) if labels else [b.name for b in self.backends])
        if len(self.labels) != len(self.backends):
            raise ValueError("one label per backend")
        self.settings = settings or AnalysisSettings()
        self.cancel = cancel or threading.Event()
        self.unavailable = [{"label": a, "reason": b} for a, b in unavailable]
        self.warmup = warmup
        self.stats = [BackendStats(lab) for lab in self.labels]
        self.agreement = [Agreement() for _ in self.labels[1:]]
        self.frames: list[list[FrameResult]] = [[] for _ in self.backends]
        self.shared_s = 0.0
        self.decode_s = 0.0
        self.detect_s = 0.0
        self.complete = True
        self.stop_reason = ""
        self._source: SourceInfo | None = None
        self._batch_no = 0
        self._warmed = False

    # -- live figures ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        frames = len(self.frames[0])
        return {
            "frames": frames,
            "shared": {
                "decode_s": round(self.decode_s, 6),
                "detect_crop_s": round(self.detect_s, 6),
                "total_s": round(self.shared_s, 6),
            },
            "backends": [s.summary(self.shared_s) for s in self.stats],
            "agreement": {
                lab: a.summary() for lab, a in zip(self.labels[1:], self.agreement)
            } if len(self.labels) > 1 else {},
            "reference": self.labels[0],
        }

    # -- the generator -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[CompareBatch]:
        """Decode and run the pipeline's own detect stage (its detect-every schedule included) once,
        then every backend on the same crop batches."""
        from .pipeline import source_info
        from .video import VideoSource

        s = self.settings
        stage = DetectStage(s)
        t_start = time.perf_counter()
        self._source = source_info(self.path, "", s.video_stream)
        with VideoSource(self.path, stream=s.video_stream) as src:
            total = planned_frames(src.info.frames, s)
            stop = None if s.max_frames is None else s.start_frame + s.max_frames * s.stride
            it = src.frames(start=s.start_frame, stop=stop, step=s.stride)
            pending: list[PreparedFrame] = []
            n_crops = 0
            last_rgb: np.ndarray | None = None
            last_index = -1
            batch_shared = 0.0
            done = 0
            while True:
                if self.cancel.is_set():
                    raise Cancelled("comparison cancelled")
                t0 = time.perf_counter()
                frame = next(it, None)
                dt = time.perf_counter() - t0
                self.decode_s += dt
                batch_shared += dt
                if frame is not None:
                    t0 = time.perf_counter()
                    prepared = stage.prepare(frame)
                    pending.append(prepared)
                    n_crops += prepared.pending
                    last_rgb, last_index = frame.rgb, frame.index
                    dt = time.perf_counter() - t0
                    self.detect_s += dt
                    batch_shared += dt
                if pending and (frame is None or n_crops >= s.batch_size):
                    batch = self._run_batch(pending, batch_shared)
                    done += len(pending)
                    yield CompareBatch(
                        labels=tuple(self.labels),
                        frame_indices=tuple(f.index for f in pending),
                        crops=n_crops,
                        shared_s=batch_shared,
                        outcomes=batch,
                        preview_index=last_index,
                        preview_rgb=last_rgb,
                        done=done,
                        total=max(total, done),
                        elapsed_s=time.perf_counter() - t_start,
                        summary=self.summary(),
                    )
                    pending, n_crops, batch_shared = [], 0, 0.0
                    if self.stop_reason:
                        self.complete = False
                        return
                if frame is None:
                    break
            if src.decode_errors:
                self.complete = False
                self.stop_reason = f"the video could not be decoded to the end: {src.decode_errors[0]}"

    def _run_batch(self, pending: list[PreparedFrame], shared_s: float) -> tuple[BackendOutcome, ...]:
        self.shared_s += shared_s
        slots = [(fi, k) for fi, fr in enumerate(pending) for k, f in enumerate(fr.faces) if f[3] is not None]
        crops = np.stack([pending[fi].faces[k][3] for fi, k in slots]) if slots else None  # type: ignore[misc]
        if crops is not None:
            crops.setflags(write=False)  # every backend must see exactly these pixels
            if self.warmup and not self._warmed:
                for b in self.backends:
                    with contextlib.suppress(Exception):  # the timed call below reports any error
                        b.infer(crops)
                self._warmed = True
        n = len(self.backends)
        order = list(range(n)) if self._batch_no % 2 == 0 else list(reversed(range(n)))
        self._batch_no += 1
        raw: list[tuple[np.ndarray | None, np.ndarray | None, float | None, str | None]] = [
            (None, None, None, None)
        ] * n
        for i in order:
            if crops is None:
                raw[i] = (None, None, None, None)
                continue
            t0 = time.perf_counter()
            error: str | None = None
            mask = score = None
            before = _remote_split(self.backends[i])
            try:
                mask, score = self.backends[i].infer(crops)
                mask = np.asarray(mask, dtype=np.float32)
                score = np.asarray(score, dtype=np.float32)
                check_backend_output(mask, score, len(slots))
            except DeepYNError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - any backend failure is a visible error state
                error = f"{type(exc).__name__}: {exc}"
            latency = time.perf_counter() - t0
            self.stats[i].add(len(slots), latency, error)
            after = _remote_split(self.backends[i])
            if before is not None and after is not None and error is None:
                server_s = after - before
                self.stats[i].add_split(server_s, max(0.0, latency - server_s))
            raw[i] = (None if error else mask, None if error else score, latency, error)
        outcomes: list[BackendOutcome] = []
        for i, (m, sc, lat, err) in enumerate(raw):
            results = self._frame_results(pending, slots, m, sc, err)
            self.frames[i].extend(results)
            self.stats[i].frames += len(results)
            outcomes.append(BackendOutcome(tuple(results), lat, err))
        self._agree(slots, raw)
        if self.settings.on_error == "stop":
            failed = [(self.labels[i], r[3]) for i, r in enumerate(raw) if r[3]]
            if failed:
                self.stop_reason = f"stopped after a backend error (on_error=stop): {failed[0][0]}: {failed[0][1]}"
        return tuple(outcomes)

    def _agree(self, slots: list[tuple[int, int]], raw: list[Any]) -> None:
        if len(self.backends) < 2 or not slots:
            return
        ref_mask, ref_score, _, ref_err = raw[0]
        thr_ref = self.backends[0].model_info.threshold
        for j, (mask, score, _, err) in enumerate(raw[1:], start=1):
            ag = self.agreement[j - 1]
            if ref_err or err:
                if bool(ref_err) != bool(err):
                    ag.only_one_scored += len(slots)
                continue
            thr = self.backends[j].model_info.threshold
            for k in range(len(slots)):
                ag.add_face(float(ref_score[k]), float(score[k]), ref_mask[k], mask[k], thr_ref, thr)

    @staticmethod
    def _frame_results(
        pending: list[PreparedFrame],
        slots: list[tuple[int, int]],
        mask: np.ndarray | None,
        score: np.ndarray | None,
        error: str | None,
    ) -> list[FrameResult]:
        """One backend's frame results, built by the pipeline's own face/frame result builders."""
        slot_of = {key: k for k, key in enumerate(slots)}
        out: list[FrameResult] = []
        for fi, fr in enumerate(pending):
            faces: list[FaceResult] = []
            for k, face in enumerate(fr.faces):
                j = slot_of.get((fi, k))
                if j is None:
                    faces.append(face_result(face))
                elif error is not None or mask is None or score is None:
                    faces.append(face_result(face, error=error or "no output"))
                else:
                    faces.append(face_result(face, float(score[j]), mask[j]))
            out.append(frame_result(fr.index, fr.pts_s, faces, fr.error))
        return out

    # -- the end -------------------------------------------------------------------------------
    def result(self, sha256: str = "") -> ComparisonResult:
        """The comparison so far as a result (call after iterating; partial if stopped)."""
        if self._source is None:
            raise InputError("the comparison has not started")
        src = SourceInfo(**{**self._source.to_json(), "sha256": sha256})
        verdicts = [
            video_verdict(frames, b.model_info, self.settings.aggregator) for frames, b in zip(self.frames, self.backends)
        ]
        return ComparisonResult(
            source=src,
            labels=list(self.labels),
            backends=[b.describe() for b in self.backends],
            models=[b.model_info.to_json() for b in self.backends],
            settings=self.settings.to_json(),
            summary=self.summary(),
            frames=[list(f) for f in self.frames],
            verdicts=verdicts,
            unavailable=list(self.unavailable),
            complete=self.complete,
            stop_reason=self.stop_reason,
            app=app_info(),
            created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )


def unique_labels(labels: Sequence[str]) -> list[str]:
    """Make labels distinct (``onnx``, ``onnx#2``) so charts and exports can tell them apart."""
    out: list[str] = []
    for lab in labels:
        name, k = lab, 2
        while name in out:
            name = f"{lab}#{k}"
            k += 1
        out.append(name)
    return out


def compare(
    path: str | os.PathLike[str],
    backends: Sequence[InferenceBackend],
    labels: Sequence[str] | None = None,
    settings: AnalysisSettings | None = None,
    cancel: threading.Event | None = None,
    unavailable: Sequence[tuple[str, str]] = (),
    on_batch: Any = None,
) -> ComparisonResult:
    """Run a whole comparison (the CLI's path); the SHA-256 of the evidence is taken alongside."""
    from .evidence import sha256_file

    digest: dict[str, str] = {}
    hasher = threading.Thread(target=lambda: digest.__setitem__("sha", sha256_file(path)), daemon=True,
                              name="deepyn-sha256")
    hasher.start()
    run = Comparison(path, backends, labels, settings, cancel, unavailable)
    try:
        for batch in run:
            if on_batch is not None:
                on_batch(batch)
    except BackendError as exc:
        run.complete, run.stop_reason = False, str(exc)
    hasher.join()
    return run.result(digest.get("sha", ""))


from .compare_export import (
    SERIES_COLORS,
    comparison_chart,
    comparison_csv_bytes,
    comparison_json_bytes,
    comparison_png,
    format_summary,
    write_comparison_csv,
    write_comparison_json,
    write_comparison_png,
)

__all__ = [
    "SCHEMA",
    "SERIES_COLORS",
    "Agreement",
    "BackendOutcome",
    "BackendStats",
    "CompareBatch",
    "Comparison",
    "ComparisonResult",
    "compare",
    "comparison_chart",
    "comparison_csv_bytes",
    "comparison_json_bytes",
    "comparison_png",
    "format_summary",
    "unique_labels",
    "write_comparison_csv",
    "write_comparison_json",
    "write_comparison_png",
]
