"""Helpers shared by CLI sub-commands: backend options, progress bar, clip checks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..core.errors import InputError


def add_backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="onnx", help="inference backend (see `deepyn backends`; default onnx)")
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
    p.add_argument("--aggregator", default="confident", choices=["confident", "mean"], help="video-level aggregator")
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


class ProgressBar:
    """A tqdm bar on stderr fed by pipeline Progress reports (silent when stderr is not a TTY and quiet)."""

    def __init__(self, desc: str, quiet: bool = False):
        from tqdm import tqdm

        self._bar = tqdm(total=0, desc=desc, unit="frame", file=sys.stderr, disable=quiet, dynamic_ncols=True)

    def __call__(self, prog: Any) -> None:
        self._bar.total = prog.total
        self._bar.n = prog.done
        self._bar.set_postfix_str(f"{prog.fps:.1f} fps")
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
