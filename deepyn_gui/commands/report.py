"""``deepyn report`` and ``deepyn export-frames``: the forensic exports from the command line.

Both reuse a cached analysis when one matches the evidence, model and settings (see
:mod:`deepyn_gui.core.cache`), else analyse first. The PNGs, video and report are made by the same core
functions the viewer calls, so they are byte-identical to the viewer's. Qt is imported only inside
:func:`run_report` and only for ``--pdf`` (Qt prints the HTML to PDF); this module never imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..core.output_guard import safe_name
from .common import (
    StepPrinter,
    add_clip_options,
    add_evidence_dir_option,
    add_quiet_option,
    analysis_for,
    check_clip,
    model_inputs,
    report_warnings,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report", help="write a forensic report (HTML/PDF) with data, annotated frames and video",
        description="Analyse a clip (or reuse a cached analysis) and write a forensic report package: "
                    "report.html (+ report.pdf), analysis.json/.csv, verdict.csv, annotated frames, SHA256SUMS.",
    )
    p.add_argument("clip", help="video file; opened read-only, never modified")
    p.add_argument("--out", required=True, help="folder to write into (created if missing)")
    p.add_argument("--pdf", action="store_true", help="also print the report to PDF (needs PySide6)")
    p.add_argument("--frames", default="key",
                   help="annotated frames to export: key (default: each person's --top-frames most suspicious "
                        "frames plus the first and last frame of each flagged span), flagged, all, none, "
                        "or e.g. 10,20-30")
    p.add_argument("--top-frames", type=int, default=3, metavar="N",
                   help="most suspicious frames per person shown in the report and exported by --frames key "
                        "(default 3)")
    p.add_argument("--video", action="store_true", help="also write annotated.mp4 (H.264, same frames and rate)")
    p.add_argument("--frame-hashes", action="store_true",
                   help="also write frame_hashes.tsv (SHA-256 of every decoded frame)")
    p.add_argument("--analyst", default="", help="analyst name printed in the report")
    p.add_argument("--notes", default="", help="notes printed in the report")
    _add_common(p)
    p.set_defaults(func=run_report)

    f = sub.add_parser(
        "export-frames", help="export chosen frames as annotated (and/or raw) PNGs",
        description="Export frames as PNG with the mask overlay, boxes, scores and a caption strip.",
    )
    f.add_argument("clip", help="video file; opened read-only, never modified")
    f.add_argument("--frames", required=True, help="frames to export, e.g. 10,20-30; or key / flagged / all")
    f.add_argument("--out", required=True, help="folder to write into (created if missing)")
    f.add_argument("--raw", action="store_true", help="also write each frame unannotated (frame_N_raw.png)")
    f.add_argument("--raw-only", action="store_true", help="write only unannotated frames (no analysis needed)")
    _add_common(f)
    f.set_defaults(func=run_export_frames)


def _add_common(p: argparse.ArgumentParser) -> None:
    add_clip_options(p)
    add_evidence_dir_option(p)
    add_quiet_option(p)


def _analysis(args: argparse.Namespace, clip: str) -> Any:
    """The analysis for this clip (the viewer's saved one when evidence, model and settings match)."""
    result = analysis_for(args, clip)
    report_warnings(result)
    return result


def run_report(args: argparse.Namespace) -> int:
    from ..core.export.frames import parse_frame_spec
    from ..core.export.report import write_report
    from ..core.output_guard import check_output_dir

    clip = check_clip(args.clip)
    if args.top_frames < 1:
        from ..core.errors import InputError

        raise InputError(f"--top-frames must be at least 1 (got {args.top_frames})")
    # checked, not created: the package appears at --out only when it is complete (see write_report)
    out = check_output_dir(args.out, inputs=model_inputs(args), evidence=[clip],
                           allow_evidence_dir=args.allow_evidence_dir, must_be_empty=True)
    if args.frames not in ("flagged", "key", "all", "none"):
        # a malformed spec fails now, not after a long analysis (ranges are checked later, per clip)
        parse_frame_spec(",".join(p.split("-")[0] for p in args.frames.split(",")), 1 << 62)
    result = _analysis(args, clip)
    pdf_writer = None
    if args.pdf:
        # Qt only here, only when asked: printing HTML to PDF is Qt's job; headless is fine.
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from ..qt.export_actions import html_to_pdf

        pdf_writer = html_to_pdf
    files = write_report(
        result, clip, out, analyst=args.analyst, notes=args.notes, frames=args.frames, video=args.video,
        frame_hashes=args.frame_hashes, pdf_writer=pdf_writer, allow_evidence_dir=args.allow_evidence_dir,
        top_frames=args.top_frames,
        on_progress=StepPrinter(args.quiet),
    )
    print(f"wrote {safe_name(files.html or out / 'report.html')}")
    for p in [files.pdf, files.json, files.csv, files.verdict_csv, files.model_card, files.frames_csv, files.video,
              files.frame_hashes, files.manifest]:
        if p:
            print(f"wrote {safe_name(p)}")
    if files.frames:
        print(f"wrote {len(files.frames)} annotated frames under {safe_name(out / 'frames')}")
    for problem in files.problems:
        print(f"deepyn: warning: {problem}", file=sys.stderr)
    return 0 if result.complete and not files.problems else 3


def run_export_frames(args: argparse.Namespace) -> int:
    from ..core.output_guard import check_output_dir

    clip = check_clip(args.clip)
    out = check_output_dir(args.out, inputs=model_inputs(args), evidence=[clip],
                           allow_evidence_dir=args.allow_evidence_dir)
    existed = out.exists()
    try:
        return _export_frames(args, clip, out)
    except BaseException:
        if not existed and out.is_dir():  # a failed command leaves no folder it made behind
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise


def _export_frames(args: argparse.Namespace, clip: str, out: Path) -> int:
    from ..core.evidence import sha256_file
    from ..core.export.frames import export_frames, export_raw_frames, parse_frame_spec, select_frames
    from ..core.video import VideoSource

    bar = StepPrinter(args.quiet)
    if args.raw_only:
        if args.frames in ("flagged", "key"):
            from ..core.errors import InputError

            raise InputError("--raw-only cannot pick flagged frames (they need an analysis); give frame numbers")
        with VideoSource(clip) as src:
            n = src.info.frames
        wanted = list(range(n)) if args.frames == "all" else parse_frame_spec(args.frames, n)
        written = export_raw_frames(clip, wanted, out, expected_sha256=sha256_file(clip),
                                    allow_evidence_dir=args.allow_evidence_dir,
                                    on_progress=lambda d, t: bar("frames", d, t))
    else:
        result = _analysis(args, clip)
        wanted = select_frames(result, args.frames)
        written = export_frames(result, clip, wanted, out, raw=args.raw, allow_evidence_dir=args.allow_evidence_dir,
                                on_progress=lambda d, t: bar("frames", d, t))
    for p in written:
        print(f"wrote {safe_name(p)}")
    if not written:
        print("deepyn: no frames matched; nothing written", file=sys.stderr)
    return 0
