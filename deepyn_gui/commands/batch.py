"""``deepyn batch CLIP_OR_FOLDER... --out DIR``: triage many clips, most suspicious first.

Folders are searched recursively for video files. Finished clips are kept in the session cache, so an
interrupted batch run again does only the rest. With a remote pool, one clip per endpoint runs at a time.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import (
    add_clip_options,
    add_evidence_dir_option,
    add_quiet_option,
    backend_from_args,
    settings_from_args,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "batch", help="analyse many clips (folders recursively) and summarise them by score",
        description="Analyse every video file given or found (recursively) in the folders given; write "
                    "summary.csv, summary.json and index.html (most suspicious first) and one report per "
                    "clip under DIR/clips/. Resumable: finished clips come from the session cache.",
    )
    p.add_argument("inputs", nargs="+", metavar="CLIP_OR_FOLDER", help="video files and/or folders")
    p.add_argument("--out", required=True, help="folder to write the summary and reports into (not a folder holding clips)")
    p.add_argument("--parallel", type=int, default=None,
                   help="clips at a time (default: one per remote endpoint, else 1)")
    add_evidence_dir_option(p)
    p.add_argument("--no-reports", action="store_true", help="only the summary, no per-clip report folders")
    add_clip_options(p, cache=False)
    add_quiet_option(p, "progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import datetime as _dt

    from tqdm import tqdm

    from ..core.batch import check_batch_output, default_parallel, find_clips, run_batch, write_summary
    from ..core.errors import InputError

    if args.parallel is not None and args.parallel < 1:
        raise InputError(f"--parallel must be at least 1, got {args.parallel}")
    clips = find_clips(args.inputs)
    out = check_batch_output(args.out, clips, args.inputs, allow_evidence_dir=args.allow_evidence_dir)
    settings = settings_from_args(args)
    backend = backend_from_args(args)
    parallel = args.parallel or default_parallel(backend)
    bar = tqdm(total=len(clips), desc="batch", unit="clip", file=sys.stderr, disable=args.quiet, dynamic_ncols=True)
    counts: dict[str, int] = {}

    def on_item(_index: int, item: Any) -> None:
        if item.state in ("done", "cached", "failed"):
            counts[item.state] = counts.get(item.state, 0) + 1
            bar.update(1)
            bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if item.state == "failed":
            tqdm.write(f"deepyn: {item.clip}: {item.error}", file=sys.stderr)

    try:
        if not backend.model_info.trained:
            print("deepyn: warning: the model is UNTRAINED; its scores mean nothing.", file=sys.stderr)
        run_ = run_batch(clips, backend, settings, out_dir=out, parallel=parallel,
                         reports=not args.no_reports, on_item=on_item)
        meta = {
            "model": backend.model_info.to_json(), "backend": backend.describe(), "settings": settings.to_json(),
            "parallel": parallel,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    finally:
        bar.close()
        backend.close()
    items = run_.snapshot()
    for p in write_summary(items, out, meta):
        print(f"wrote {p}")
    states = {s: sum(1 for i in items if i.state == s) for s in ("done", "cached", "failed", "cancelled")}
    print(f"{len(items)} clips: {states['done']} analysed, {states['cached']} from the cache, "
          f"{states['failed']} failed, {states['cancelled']} not finished")
    if run_.interrupted:
        print("deepyn: interrupted; run the same command again to finish the rest", file=sys.stderr)
        return 130
    return 0 if states["failed"] == 0 and states["cancelled"] == 0 else 3
