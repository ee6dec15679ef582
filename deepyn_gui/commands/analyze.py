"""``deepyn analyze CLIP``: score every face on every (strided) frame and print the verdict."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.output_guard import safe_name, safe_text
from ..core.verdict import clip_cautions, known_limits, not_analysed, verdict_words
from .common import (
    add_clip_options,
    add_evidence_dir_option,
    add_quiet_option,
    analysis_for,
    check_clip,
    guard_output_files,
    model_inputs,
    report_warnings,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("analyze", help="analyse a clip and print the verdict",
                       description="Analyse a video clip for face manipulation.")
    p.add_argument("clip", help="video file (mp4, mov, avi, mkv, webm); opened read-only")
    add_clip_options(p)
    p.add_argument("--json", dest="json_out", default=None, help="write the full analysis as JSON here")
    p.add_argument("--csv", dest="csv_out", default=None, help="write one row per face as CSV here")
    add_evidence_dir_option(p)
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.export.data import write_csv, write_json

    clip = check_clip(args.clip)
    # before the run: a long analysis must not end in "cannot write", nor ever write over an input
    guard_output_files(args, [args.json_out, args.csv_out], [clip, *model_inputs(args)], [clip])
    result = analysis_for(args, clip)
    if args.json_out:
        write_json(result, args.json_out)
    if args.csv_out:
        write_csv(result, args.csv_out)
    print_verdict(result)
    return 0 if report_warnings(result) else 3


def verdict_line(result: Any) -> str:
    """The verdict line: it STARTS with the verdict and ends with the file name, control characters
    escaped (a name holding a newline and a fake verdict once forged the first line of the output)."""
    v = result.verdict
    n = len(result.frames)
    faces = sum(1 for f in result.frames if f.faces)
    score = "—" if v.fake_score is None else f"{v.fake_score:.3f}"
    state = "" if result.complete else "; INCOMPLETE"
    return (f"{verdict_words(v.label)} (fake score {score}, band {v.band or '—'}, aggregator {v.aggregator}); "
            f"faces on {faces}/{n} analysed frames{state}: {safe_name(result.source.path)}")


def print_verdict(result: Any) -> None:
    """Verdict line, explanation, what was not analysed, model, then every warning: the verdict text
    never hides a problem."""
    print(verdict_line(result))
    print(f"  {safe_text(result.verdict.explanation)}")
    for caution in clip_cautions(result):
        print(f"  Caution for this clip: {safe_text(caution)}")
    print(f"  Not analysed: {safe_text(' '.join(not_analysed(result)))}")
    limits = known_limits(result)
    if limits:
        print(f"  Known limits of this model (its card): {safe_text(' '.join(limits))}")
    print(f"  model {safe_text(result.model.name)} ({result.model.sha256[:12]}), "
          f"backend {safe_text(result.backend.get('name'))}")
    if not result.complete:
        print(f"  incomplete: {safe_text(result.stop_reason)}")
    for w in result.warnings:
        print(f"  warning: {safe_text(w)}")
