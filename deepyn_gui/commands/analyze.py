"""``deepyn analyze CLIP``: score every face on every (strided) frame and print the verdict."""

from __future__ import annotations

import argparse
import sys

from .common import add_analysis_options, add_backend_options, add_cache_options, analysis_for, check_clip


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("analyze", help="analyse a clip and print the verdict",
                       description="Analyse a video clip for face manipulation.")
    p.add_argument("clip", help="video file (mp4, mov, avi, mkv, webm); opened read-only")
    add_backend_options(p)
    add_analysis_options(p)
    p.add_argument("--json", dest="json_out", default=None, help="write the full analysis as JSON here")
    p.add_argument("--csv", dest="csv_out", default=None, help="write one row per face as CSV here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_cache_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.evidence import check_output_file
    from ..core.export.data import write_csv, write_json
    from ..core.verdict import not_analysed, verdict_words

    clip = check_clip(args.clip)
    for target in (args.json_out, args.csv_out):
        if target:  # before the run: a long analysis must not end in "cannot write"
            check_output_file(target, clip)
    result = analysis_for(args, clip)
    if args.json_out:
        write_json(result, args.json_out)
    if args.csv_out:
        write_csv(result, args.csv_out)
    v = result.verdict
    n = len(result.frames)
    faces = sum(1 for f in result.frames if f.faces)
    score = "—" if v.fake_score is None else f"{v.fake_score:.3f}"
    print(f"{result.source.path}: {verdict_words(v.label)} (fake score {score}, band {v.band or '—'}, "
          f"aggregator {v.aggregator}); faces on {faces}/{n} analysed frames")
    print(f"  {v.explanation}")
    print(f"  Not analysed: {' '.join(not_analysed(result))}")
    print(f"  model {result.model.name} ({result.model.sha256[:12]}), backend {result.backend.get('name')}")
    for w in result.warnings:
        print(f"deepyn: warning: {w}", file=sys.stderr)
    if not result.complete:
        print(f"deepyn: warning: analysis incomplete: {result.stop_reason}", file=sys.stderr)
        return 3
    return 0
