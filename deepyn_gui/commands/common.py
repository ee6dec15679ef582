"""Helpers shared by CLI sub-commands: backend options, progress output, clip checks."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import InputError


def add_backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="onnx",
                   help="inference backend (see `deepyn backends`; default onnx); servers: "
                        "remote:url=http://host:8080[,url=...],model=NAME[,token_env=VAR]")
    p.add_argument("--model", default=None, help="model file (.onnx, or .xmodel for vart); default: bundled model")
    p.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    p.add_argument("--batch", type=int, default=8, help="crops per inference batch (default 8)")


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stride", type=int, default=1, help="analyse every Nth frame (default 1 = all)")
    p.add_argument("--max-frames", type=int, default=None, help="analyse at most this many frames")
    p.add_argument("--detector", default="auto", help="face detector: auto, res10, haar, yunet (default auto)")
    p.add_argument("--detector-model", default=None, help="model file for the yunet detector")
    p.add_argument("--detect-every", type=int, default=None,
                   help="run the face detector on every Nth analysed frame and move boxes on in between "
                        "(default: the pipeline's, 3; 1 = every frame)")
    p.add_argument("--full-detect-every", type=int, default=None,
                   help="of those detections, every Nth looks at the whole frame, the others only around "
                        "faces already tracked (default: the pipeline's, 4; 1 = always the whole frame)")
    p.add_argument("--stream", type=int, default=None, metavar="N",
                   help="video stream to analyse when the file holds several (0-based; default: the one "
                        "with the most frames / largest picture; the choice is always reported)")
    p.add_argument("--margin", type=float, default=1.3, help="crop margin around the face box (default 1.3)")
    p.add_argument("--min-face", type=int, default=40, help="faces smaller than this (px) are 'too small'")
    from ..core.verdict import AGGREGATORS, DEFAULT_AGGREGATOR

    p.add_argument("--aggregator", default=DEFAULT_AGGREGATOR, choices=list(AGGREGATORS),
                   help=f"video-level aggregator (default {DEFAULT_AGGREGATOR}: a sustained span of high-scoring "
                        "frames decides, even when it is a minority of the clip; confident: the DFDC confident "
                        "strategy; mean: plain mean)")
    p.add_argument("--on-error", default="continue", choices=["continue", "stop"],
                   help="after a backend error: carry on with the next batch, or stop")


def settings_from_args(args: argparse.Namespace) -> Any:
    from ..core.pipeline import AnalysisSettings

    return AnalysisSettings(
        stride=args.stride, max_frames=args.max_frames, detector=args.detector,
        detector_model=args.detector_model, margin=args.margin, min_face_side=args.min_face,
        batch_size=args.batch, aggregator=args.aggregator, on_error=args.on_error,
        **({} if getattr(args, "stream", None) is None else {"video_stream": args.stream}),
        **({} if args.detect_every is None else {"detect_every": args.detect_every}),
        **({} if args.full_detect_every is None else {"full_detect_every": args.full_detect_every}),
    )


def add_cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true",
                   help="analyse now, without reading or writing the saved analyses the viewer also uses")
    p.add_argument("--reanalyse", action="store_true",
                   help="analyse again and replace the saved analysis for this clip, model and settings")


def add_clip_options(p: argparse.ArgumentParser, cache: bool = True) -> None:
    """Backend, model, analysis settings and (with ``cache``) the session-cache switches: what every
    command that analyses clips takes, in one place so the commands cannot drift apart."""
    add_backend_options(p)
    add_analysis_options(p)
    if cache:
        add_cache_options(p)


def add_quiet_option(p: argparse.ArgumentParser, what: str = "progress output") -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=f"no {what}")


def report_warnings(result: Any) -> bool:
    """Print the analysis's warnings (and that it is incomplete) on stderr; True when it is complete."""
    from ..core.output_guard import safe_text

    for w in result.warnings:
        print(f"deepyn: warning: {safe_text(w)}", file=sys.stderr)
    if not result.complete:
        print(f"deepyn: warning: analysis incomplete: {safe_text(result.stop_reason)}", file=sys.stderr)
    return bool(result.complete)


def analysis_for(args: argparse.Namespace, clip: str) -> Any:
    """The analysis of ``clip``: the viewer's saved one when evidence, model and settings match, else run now.

    Uses the same per-evidence cache as the viewer (:mod:`deepyn_gui.core.cache`, keyed by evidence
    SHA-256, model SHA-256 and the result-changing settings), so ``deepyn analyze`` then ``deepyn report``
    runs the model once. ``--no-cache`` neither reads nor writes it; ``--reanalyse`` replaces the entry.
    """
    from ..core.cache import analyse_cached
    from ..core.evidence import sha256_file
    from ..core.pipeline import analyze
    from ..core.video import VideoSource

    settings = settings_from_args(args)
    with VideoSource(clip):  # an unreadable clip fails here, in one line, before anything else is said
        pass
    backend = backend_from_args(args)
    quiet = getattr(args, "quiet", False)
    try:
        if not backend.model_info.trained:
            print("deepyn: warning: the model is UNTRAINED; its scores mean nothing.", file=sys.stderr)
        bar = ProgressBar("analysing", quiet=quiet)
        try:
            if getattr(args, "no_cache", False):
                result, cached = analyze(clip, backend, settings, on_progress=bar), False
            else:
                result, cached = analyse_cached(
                    clip, backend, settings, reanalyse=getattr(args, "reanalyse", False),
                    evidence_sha256=sha256_file(clip), on_progress=bar,
                )
        finally:
            bar.close()
    finally:
        backend.close()
    if cached and not quiet:
        print(f"reused the saved analysis of this clip ({len(result.frames)} frames, same model and settings; "
              "--reanalyse to run it again)", file=sys.stderr)
    return result


def backend_from_args(args: argparse.Namespace) -> Any:
    from ..backends import create_backend

    return create_backend(args.backend, model_path=args.model, threads=args.threads, batch_size=args.batch)


#: Every option of every command that names something the command writes; each goes through the
#: output guard (tests/test_output_guard.py walks this table and fails on an option missing from it).
OUTPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "analyze": ("--json", "--csv"),
    "compare": ("--json", "--csv", "--png"),
    "evaluate": ("--json",),
    "models import": ("--out",),
    "train": ("--out", "--int8", "--make-val-set", "--work-dir"),
    "report": ("--out",),
    "export-frames": ("--out",),
    "demo": ("--out",),
    "batch": ("--out",),
}


def add_evidence_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-evidence-dir", action="store_true",
                   help="allow writing outputs into the evidence file's own folder or below it (refused by default)")


def guard_output_files(args: argparse.Namespace, targets: list[str | None], inputs: list[str | None],
                       evidence: list[str | None], overwrite: bool = True) -> None:
    """Every file-output option of a command, checked by the one output guard before any work starts.

    ``inputs`` are files an output may never be (clip, model, checkpoint); ``evidence`` whose folder
    is off limits unless --allow-evidence-dir. Two options naming the same file are refused too.
    """
    from ..core.output_guard import OutputRefused, check_output_file, safe_name

    allow = bool(getattr(args, "allow_evidence_dir", False))
    given = [t for t in targets if t]
    for t in given:
        check_output_file(t, inputs=inputs, evidence=evidence, allow_evidence_dir=allow, overwrite=overwrite)
    resolved = [Path(t).expanduser().resolve() for t in given]
    if len(set(resolved)) != len(resolved):
        dup = next(r for r in resolved if resolved.count(r) > 1)
        raise OutputRefused(f"Two outputs name the same file ({safe_name(dup)}); give each its own name.")


def model_inputs(args: argparse.Namespace) -> list[str | None]:
    """The model files a command reads (never to be written over)."""
    return [getattr(args, "model", None), getattr(args, "detector_model", None)]


def check_clip(path: str) -> str:
    """Fail early, in one line, for paths that cannot be a clip."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {path}")
    if p.is_dir():
        raise InputError(f"{path} is a folder, not a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"cannot read {path} (permission denied)")
    return str(p)


#: Seconds between progress lines when stderr is not a terminal (a log file, CI, a pipe).
LOG_INTERVAL_S = 5.0


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """Progress of a pipeline run on stderr, fed by its Progress reports.

    On a terminal: a tqdm bar. Otherwise (a log, a pipe, CI): one plain line every ``LOG_INTERVAL_S``
    seconds and one at the end, not hundreds of bar redraws. Nothing with ``quiet``. Nothing is printed
    before the first report, which the pipeline sends only once the clip has opened: an unreadable file
    gives its one-line error and nothing else.
    """

    def __init__(self, desc: str, quiet: bool = False, stream: Any = None, interval_s: float = LOG_INTERVAL_S):
        self._desc = desc
        self._quiet = quiet
        self._stream = stream if stream is not None else sys.stderr
        self._tty = _is_tty(self._stream)
        self._interval = interval_s
        self._bar: Any = None
        self._last_line = -1.0e9
        self._last_done = -1
        self.lines = 0  # plain lines written (non-terminal mode)

    def __call__(self, prog: Any) -> None:
        if self._quiet:
            return
        if self._tty:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=prog.total, desc=self._desc, unit="frame", file=self._stream,
                                 dynamic_ncols=True)
            self._bar.total = prog.total
            self._bar.n = prog.done
            if prog.fps is not None:
                self._bar.set_postfix_str(f"{prog.fps:.1f} fps")
            self._bar.refresh()
            return
        now = time.monotonic()
        final = bool(prog.total) and prog.done >= prog.total
        if prog.done == self._last_done or (not final and now - self._last_line < self._interval):
            return
        self._line(prog.done, prog.total, prog.fps)
        self._last_line = now

    def _line(self, done: int, total: int, fps: float | None) -> None:
        pct = f" ({100 * done // total}%)" if total else ""
        rate = "" if fps is None else f", {fps:.1f} fps"
        print(f"{self._desc}: {done}/{total or '?'} frames{pct}{rate}", file=self._stream, flush=True)
        self._last_done = done
        self.lines += 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class StepPrinter:
    """Progress of export steps ("frames 3/12"): redrawn in place on a terminal, a line every few seconds
    (and at each step's end) otherwise, nothing when quiet."""

    def __init__(self, quiet: bool = False, stream: Any = None, interval_s: float = LOG_INTERVAL_S):
        self._quiet = quiet
        self._stream = stream if stream is not None else sys.stderr
        self._tty = _is_tty(self._stream)
        self._interval = interval_s
        self._last: dict[str, int] = {}
        self._last_line = -1.0e9

    def __call__(self, what: str, done: int, total: int) -> None:
        if self._quiet:
            return
        pct = int(100 * done / total) if total else 100
        if self._last.get(what) == pct:
            return
        self._last[what] = pct
        final = done >= total
        if self._tty:
            print(f"  {what}: {done}/{total}", end="\n" if final else "\r", file=self._stream, flush=True)
            return
        if total <= 1:
            return  # one-shot steps (data, report, pdf) say nothing in a log; the "wrote" lines follow
        now = time.monotonic()
        if final or now - self._last_line >= self._interval:
            print(f"  {what}: {done}/{total}", file=self._stream, flush=True)
            self._last_line = now
