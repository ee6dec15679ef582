"""``deepyn evaluate``: AUC, accuracy at the model's threshold, mask IoU and a calibration table."""

from __future__ import annotations

import argparse
import json
import sys

from .common import (
    add_analysis_options,
    add_backend_options,
    add_evidence_dir_option,
    backend_from_args,
    guard_output_files,
    model_inputs,
    settings_from_args,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "evaluate",
        help="evaluate a model on labelled clips or crops",
        description="Evaluate a model on real/ and fake/ sub-folders (clips or 224x224 crops, optional masks/), "
        "a labels.csv/labels.json, or unlabelled clips (scores only). Clips run through the analysis pipeline.",
    )
    p.add_argument("--data", required=True, help="folder (real/ + fake/, or labels.csv/json) or a single clip")
    add_backend_options(p)
    add_analysis_options(p)
    p.add_argument("--families", default=None, metavar="MANIFEST.json",
                   help="manifest.json with each fake's method (e.g. deepfakes-dev): adds per-family AUC "
                   "(face swap, lip-sync, generated talking head) and the real items at or above the threshold")
    p.add_argument("--against", default=None, metavar="REPORT.json",
                   help="an earlier report of this command (--json) on the same data: adds the AUC difference "
                   "(this model minus that one), overall and per family, with a paired bootstrap interval")
    p.add_argument("--json", dest="json_out", default=None, help="write the full report as JSON here")
    add_evidence_dir_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.export.atomic import write_bytes_atomic
    from ..core.training.evaluate import (
        add_comparison,
        add_family_metrics,
        discover,
        evaluate,
        format_report,
        read_families,
        read_report,
    )

    # the labelled clips are evidence too: never written over, their folder kept clean
    inputs = [args.data, *model_inputs(args), *([args.against] if args.against else [])]
    guard_output_files(args, [args.json_out], inputs, [args.data])
    items = discover(args.data)
    families = read_families(args.families) if args.families else None
    if args.against:
        read_report(args.against)  # a wrong file is refused before minutes of analysis, not after
    settings = settings_from_args(args)
    backend = backend_from_args(args)
    try:
        def say(msg: str) -> None:
            if not args.quiet:
                print(msg, file=sys.stderr)

        rep = evaluate(items, backend, settings, progress=say)
    finally:
        backend.close()
    if families is not None:
        add_family_metrics(rep, families)
    if args.against:
        add_comparison(rep, args.against, families)
    print(format_report(rep))
    if args.json_out:
        write_bytes_atomic(args.json_out, json.dumps(rep.to_json(), indent=1, default=str).encode())
    return 0
