"""Batch triage: many clips through the one engine, several at a time, resumable, summarised by score.

Every clip goes through :func:`deepyn_gui.core.cache.analyse_cached`, so the session cache is the
record of what is finished: re-running a batch after an interruption (or opening a clip in the viewer)
reuses finished analyses and analyses only the rest. The CLI (``deepyn batch``) and the viewer's folder
queue both drive :func:`run_batch`; the summary writers are pure functions of the items.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from .errors import Cancelled, DeepYNError, InputError
from .export.atomic import write_bytes_atomic
from .verdict import clip_cautions, verdict_words

log = logging.getLogger(__name__)

#: What ``deepyn batch`` and File > Open folder... pick up (lower-case suffixes).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".wmv", ".flv", ".3gp"}
)

ItemState = Literal["queued", "running", "done", "cached", "failed", "cancelled"]
SUMMARY_FORMAT = "deepyn.batch/1"


@dataclass(frozen=True)
class BatchItem:
    """One clip of a batch and how far it got."""

    clip: str
    state: ItemState = "queued"
    label: str = ""
    fake_score: float | None = None
    band: str = ""
    sha256: str = ""
    report: str = ""  # report.html, relative to the batch's output folder ("" = none)
    error: str = ""
    seconds: float = 0.0
    frames: int = 0
    faces_error: int = 0
    caution: str = ""  # what about this clip makes its score less reliable (verdict.clip_cautions), "" = nothing

    def to_json(self) -> dict[str, Any]:
        return {
            "clip": self.clip, "state": self.state, "verdict": self.label, "fake_score": self.fake_score,
            "band": self.band, "sha256": self.sha256, "report": self.report, "error": self.error,
            "seconds": round(self.seconds, 3), "frames": self.frames, "faces_error": self.faces_error,
            "caution": self.caution,
        }


def find_clips(inputs: Iterable[str | Path]) -> list[Path]:
    """Video files among ``inputs``: folders searched recursively (hidden entries skipped), sorted, no repeats.

    A file named explicitly must have a video extension too; InputError for a missing path or no clip.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise InputError(f"no such file or folder: {raw}")
        if p.is_dir():
            cands = sorted(
                c for c in p.rglob("*")
                if c.is_file() and c.suffix.lower() in VIDEO_EXTENSIONS
                and not any(part.startswith(".") for part in c.relative_to(p).parts)
            )
        elif p.suffix.lower() in VIDEO_EXTENSIONS:
            cands = [p]
        else:
            raise InputError(f"{raw} is not a video file (extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})")
        for c in cands:
            key = c.resolve()
            if key not in seen:
                seen.add(key)
                found.append(c)
    if not found:
        raise InputError("no video files found in " + ", ".join(str(i) for i in inputs))
    return found


def check_batch_output(out_dir: str | Path, clips: Sequence[Path], inputs: Iterable[str | Path] = (),
                       allow_evidence_dir: bool = False) -> Path:
    """The batch's output folder, checked by the project's output guard against every clip and created:
    never a clip or a link to one, never the folder that holds a clip or below it (never beside the
    evidence), never inside a folder the batch searches (``inputs``)."""
    from .errors import ExportError
    from .output_guard import check_output_dir

    out = Path(out_dir).expanduser()
    resolved = out.resolve()
    for folder in (Path(i).expanduser().resolve() for i in inputs):
        if folder.is_dir() and (resolved == folder or folder in resolved.parents):
            raise ExportError(f"Refusing to write the batch inside {folder}, a folder it reads clips from; "
                              "choose an --out folder outside it.")
    out = check_output_dir(out, inputs=list(clips), evidence=list(clips), allow_evidence_dir=allow_evidence_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the batch folder {out}: {exc.strerror or exc}.") from exc
    return out


def report_folder_name(index: int, clip: Path, sha256: str) -> str:
    """``003-name-1a2b3c4d``: unique per clip and stable across re-runs (the SHA-256 is content)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in clip.stem)[:60] or "clip"
    return f"{safe}-{sha256[:8]}" if sha256 else f"{index:03d}-{safe}"


def sort_by_score(items: Sequence[BatchItem]) -> list[BatchItem]:
    """Most suspicious first; clips without a score (no face, error, not run) after, in input order."""
    scored = sorted((i for i in items if i.fake_score is not None), key=lambda i: -(i.fake_score or 0.0))
    return scored + [i for i in items if i.fake_score is None]


SUMMARY_COLUMNS = ("rank", "clip", "verdict", "fake_score", "band", "state", "frames", "faces_error",
                   "sha256", "report", "error", "caution")


def summary_csv_bytes(items: Sequence[BatchItem]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for rank, i in enumerate(sort_by_score(items), 1):
        w.writerow([rank, i.clip, i.label, "" if i.fake_score is None else f"{i.fake_score:.6f}", i.band,
                    i.state, i.frames, i.faces_error, i.sha256, i.report, i.error, i.caution])
    return buf.getvalue().encode("utf-8")


def summary_json_bytes(items: Sequence[BatchItem], meta: dict[str, Any]) -> bytes:
    doc = {"format": SUMMARY_FORMAT, **meta, "clips": [i.to_json() for i in sort_by_score(items)]}
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def summary_html_bytes(items: Sequence[BatchItem], meta: dict[str, Any]) -> bytes:
    """A self-contained index, most suspicious first, linking each clip's report; every value escaped."""
    e = html.escape
    rows = []
    for rank, i in enumerate(sort_by_score(items), 1):
        score = "—" if i.fake_score is None else f"{i.fake_score:.3f}"
        link = (f'<a href="{e(quote(i.report))}">report</a>' if i.report else "")
        rows.append(
            f"<tr class=\"{e(i.label or i.state)}\"><td>{rank}</td><td>{e(i.clip)}</td><td>{e(verdict_words(i.label)) if i.label else '—'}</td>"
            f"<td class=num>{score}</td><td>{e(i.band)}</td><td>{e(i.state)}</td><td>{link}</td>"
            f"<td>{e(i.error)}</td><td>{e(i.caution)}</td></tr>"
        )
    model = meta.get("model", {})
    head = (
        f"<p>Model {e(str(model.get('name', '')))} ({e(str(model.get('sha256', ''))[:12])}), backend "
        f"{e(str(meta.get('backend', {}).get('name', '')))}; {len(items)} clips; written "
        f"{e(str(meta.get('created_utc', '')))}.</p>"
    )
    doc = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>DeepYN batch triage</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}td.num{text-align:right}"
        "tr.fake td{background:#fde0dc}tr.uncertain td{background:#fff4d6}tr.error td,tr.failed td{color:#a00}"
        "</style></head><body><h1>DeepYN batch triage</h1>" + head +
        "<table><tr><th>#</th><th>Clip</th><th>Verdict</th><th>Fake score</th><th>Band</th><th>State</th>"
        "<th>Report</th><th>Problem</th><th>Caution for this clip</th></tr>\n" + "\n".join(rows) + "\n</table>"
        "<p>Scores are the model's; see each report for frames, persons and provenance.</p></body></html>\n"
    )
    return doc.encode("utf-8")


def write_summary(items: Sequence[BatchItem], out_dir: Path, meta: dict[str, Any]) -> list[Path]:
    """summary.csv, summary.json and index.html in ``out_dir``, each written atomically."""
    return [
        write_bytes_atomic(out_dir / "summary.csv", summary_csv_bytes(items)),
        write_bytes_atomic(out_dir / "summary.json", summary_json_bytes(items, meta)),
        write_bytes_atomic(out_dir / "index.html", summary_html_bytes(items, meta)),
    ]


@dataclass
class BatchRun:
    """The live state of a batch: items in input order, updated as clips finish (thread-safe reads)."""

    items: list[BatchItem]
    interrupted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    meta: dict[str, Any] = field(default_factory=dict)

    def set(self, index: int, item: BatchItem) -> None:
        with self.lock:
            self.items[index] = item

    def snapshot(self) -> list[BatchItem]:
        with self.lock:
            return list(self.items)


def default_parallel(backend: Any) -> int:
    """Clips at a time: one per pool endpoint for a remote backend, else one (local cores are busy)."""
    endpoints = getattr(backend, "endpoints", None)
    return max(1, len(endpoints)) if isinstance(endpoints, list) else 1


def run_batch(
    clips: Sequence[Path],
    backend: Any,
    settings: Any,
    out_dir: Path | None = None,
    cache: Any = None,
    parallel: int = 1,
    reports: bool = True,
    cancel: threading.Event | None = None,
    on_item: Callable[[int, BatchItem], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> BatchRun:
    """Analyse ``clips`` (``parallel`` at a time) through the session cache; write each clip's report
    under ``out_dir/clips/`` when ``reports``. Returns when all are finished or ``cancel`` is set
    (then unfinished clips are ``cancelled``); ``on_item`` hears every state change."""
    from .cache import AnalysisCache, analyse_cached, has_errors

    cache = cache or AnalysisCache()
    cancel = cancel or threading.Event()
    run = BatchRun([BatchItem(str(c)) for c in clips])

    def report_for(index: int, clip: Path, result: Any, cached: bool) -> str:
        if out_dir is None or not reports:
            return ""
        from .export.report import write_report

        name = report_folder_name(index, clip, result.source.sha256)
        folder = out_dir / "clips" / name
        rel = f"clips/{name}/report.html"
        if cached and (folder / "report.html").is_file():
            return rel  # written by an earlier run of this batch from the same cached analysis
        # not cancellable: the analysis is finished (and cached) by now, so its report is written too
        write_report(result, clip, folder, frames="none")
        return rel

    def one(index: int) -> None:
        clip = Path(clips[index])
        if cancel.is_set():
            return
        item = replace(run.items[index], state="running")
        run.set(index, item)
        if on_item:
            on_item(index, item)
        t0 = time.perf_counter()
        try:
            result, cached = analyse_cached(str(clip), backend, settings, cache=cache, cancel=cancel,
                                            on_progress=on_progress)
            v = result.verdict
            n_err = sum(1 for fr in result.frames for f in fr.faces if f.state == "error")
            failed = not result.complete or has_errors(result)
            report = report_for(index, clip, result, cached)
            item = BatchItem(
                clip=str(clip), state="failed" if failed else ("cached" if cached else "done"),
                label=v.label, fake_score=v.fake_score, band=v.band or "", sha256=result.source.sha256,
                report=report, error=result.stop_reason or (f"{n_err} faces could not be scored" if n_err else ""),
                seconds=time.perf_counter() - t0, frames=len(result.frames), faces_error=n_err,
                caution=" ".join(clip_cautions(result)),
            )
        except Cancelled:
            item = replace(run.items[index], state="cancelled")
        except DeepYNError as exc:
            item = replace(run.items[index], state="failed", error=str(exc), seconds=time.perf_counter() - t0)
        except Exception as exc:
            log.exception("batch: %s failed", clip)
            item = replace(run.items[index], state="failed", error=f"{type(exc).__name__}: {exc}")
        run.set(index, item)
        if on_item:
            on_item(index, item)

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="deepyn-batch") as pool:
        pending: set[Future[None]] = set()
        queue = list(range(len(clips)))
        try:
            while queue or pending:
                while queue and len(pending) < max(1, parallel) and not cancel.is_set():
                    pending.add(pool.submit(one, queue.pop(0)))
                if not pending:
                    break
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
        except KeyboardInterrupt:
            run.interrupted = True
            cancel.set()  # Ctrl+C: running analyses stop between batches; finished ones stay cached
            wait(pending)
        except BaseException:
            cancel.set()
            wait(pending)
            raise
        finally:
            for i, it in enumerate(run.items):
                if it.state in ("queued", "running"):
                    run.set(i, replace(it, state="cancelled"))
    return run
