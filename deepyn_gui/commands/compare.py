"""``deepyn compare CLIP --backends A,B``: the same crops through two backends, timed like for like.

A backend is named as in ``deepyn backends``, optionally with settings after colons:
``onnx``, ``onnx:threads=1``, ``onnx-int8:model=m_int8.onnx``, ``vart:model=YNET.xmodel:threads=4``,
``onnx:label=cpu-fp32``. A backend that cannot run here is printed with the reason and left out
(never given numbers); with at least one left the run goes on and exits 3 (incomplete comparison).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError
from .common import (
    add_analysis_options,
    add_evidence_dir_option,
    add_quiet_option,
    check_clip,
    guard_output_files,
    model_inputs,
    settings_from_args,
)

if TYPE_CHECKING:
    from ..backends import BackendRequest

_KEYS = ("model", "threads", "batch", "label")
_REMOTE_KEYS = ("url", "timeout", "token_env", "token_file", "ca", "insecure")


def parse_backend_spec(text: str, threads: int = 2) -> BackendRequest:
    """``name[:key=value]...`` with keys model, threads, batch, label (and the remote keys for remote;
    ``,`` also separates options, so URLs stay whole); InputError when malformed. ``threads``: the
    default (--threads) for a backend that names none."""
    from ..backends import BackendRequest
    from ..backends import parse_backend_spec as split_spec

    name, raw = split_spec(text)
    allowed = _KEYS + (_REMOTE_KEYS if name == "remote" else ())
    for key in raw:
        if key not in allowed:
            raise InputError(f"bad backend option {key!r} in {text!r}: use {name}:key=value with key in {', '.join(allowed)}")
    opts = {k: v[-1] for k, v in raw.items()}

    def _int(key: str) -> int | None:
        if key not in opts:
            return None
        try:
            v = int(opts[key])
        except ValueError:
            raise InputError(f"{key} must be a whole number in {text!r}") from None
        if v < 1:
            raise InputError(f"{key} must be at least 1 in {text!r}")
        return v

    extra = tuple((k, tuple(v)) for k, v in raw.items() if k in _REMOTE_KEYS)
    return BackendRequest(name, opts.get("model"), _int("threads") or threads, opts.get("label", ""),
                          _int("batch"), extra)


def parse_backends(text: str, threads: int = 2) -> list[BackendRequest]:
    from ..backends import split_backend_list

    reqs = [parse_backend_spec(t, threads) for t in split_backend_list(text)]
    if len(reqs) < 2:
        raise InputError("--backends needs at least two backends separated by a comma, e.g. onnx,onnx-int8")
    return reqs


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compare",
        help="run two backends on the identical crops and compare speed and agreement",
        description="Run the same decoded frames and face crops through two backends and compare "
        "throughput, batch latency, end-to-end fps (shared decode/detect time charged equally) and "
        "agreement (score difference, mask IoU, verdicts).",
    )
    p.add_argument("clip", help="video file; opened read-only")
    p.add_argument("--backends", required=True,
                   help="comma-separated backends, e.g. onnx,onnx-int8 or onnx:threads=1,onnx:threads=2 or "
                        "onnx,vart:model=YNET.xmodel or onnx,remote:url=http://host:8080,model=uynet "
                        "(keys: model, threads, batch, label; remote also url, timeout, token_env, token_file, "
                        "ca, insecure)")
    p.add_argument("--threads", type=int, default=2, help="default inference threads (default 2)")
    p.add_argument("--batch", type=int, default=8, help="crops per batch, the same for every backend (default 8)")
    add_analysis_options(p)
    p.add_argument("--json", dest="json_out", default=None, help="write the comparison as JSON here")
    p.add_argument("--csv", dest="csv_out", default=None, help="write one row per face (both scores) as CSV here")
    p.add_argument("--png", dest="png_out", default=None, help="write a chart (score curves + speed bars) here")
    add_evidence_dir_option(p)
    add_quiet_option(p, "progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..backends import set_up_backends
    from ..core.compare import (
        compare,
        format_summary,
        write_comparison_csv,
        write_comparison_json,
        write_comparison_png,
    )
    from ..core.errors import BackendError
    from .common import ProgressBar

    clip = check_clip(args.clip)
    settings = settings_from_args(args)
    reqs = parse_backends(args.backends, args.threads)
    guard_output_files(args, [args.json_out, args.csv_out, args.png_out],
                       [clip, *model_inputs(args), *(r.model_path for r in reqs)], [clip])
    setups = set_up_backends(reqs, batch_size=args.batch)
    backends = [s.backend for s in setups if s.backend is not None]
    labels = [s.label for s in setups if s.backend is not None]
    unavailable = [(s.label, s.reason) for s in setups if s.backend is None]
    for label, reason in unavailable:
        print(f"deepyn: backend {label} unavailable: {reason}", file=sys.stderr)
    if not backends:
        raise BackendError("no backend of the comparison can run here (reasons above)")
    try:
        if any(not b.model_info.trained for b in backends):
            print("deepyn: warning: a model is UNTRAINED; its scores mean nothing (timings still do).", file=sys.stderr)
        bar = ProgressBar("comparing", quiet=args.quiet)

        def on_batch(batch: Any) -> None:
            bar(_Prog(batch.done, batch.total, batch.done / batch.elapsed_s if batch.elapsed_s > 0 else 0.0))

        try:
            result = compare(clip, backends, labels, settings, unavailable=unavailable, on_batch=on_batch)
        finally:
            bar.close()
    finally:
        for b in backends:
            b.close()
    if args.json_out:
        write_comparison_json(result, args.json_out)
    if args.csv_out:
        write_comparison_csv(result, args.csv_out)
    if args.png_out:
        write_comparison_png(result, args.png_out)
    print(format_summary(result))
    if not result.complete:
        print(f"deepyn: warning: comparison incomplete: {result.stop_reason}", file=sys.stderr)
        return 3
    if unavailable:
        print("deepyn: warning: comparison incomplete: some backends were unavailable (see above)", file=sys.stderr)
        return 3
    return 0


@dataclass(frozen=True)
class _Prog:
    done: int
    total: int
    fps: float
