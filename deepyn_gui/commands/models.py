"""``deepyn models``: import an original U-YNet checkpoint, show a model's card, inspect an xmodel."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("models", help="import, describe and inspect models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")

    imp = msub.add_parser("import", help="convert an original DeepYNet .pth checkpoint to ONNX")
    imp.add_argument("checkpoint", help="PyTorch state_dict (.pth); loaded with weights_only=True")
    imp.add_argument("--out", required=True, help="ONNX file to write")
    imp.add_argument("--name", default=None, help="model name stored in the ONNX metadata")
    imp.set_defaults(func=run_import)

    info = msub.add_parser("info", help="show a model's metadata and model card")
    info.add_argument("model", nargs="?", default=None, help="ONNX model (default: the bundled model)")
    info.set_defaults(func=run_info)

    insp = msub.add_parser("inspect", help="list subgraphs, devices and tensors of a Vitis AI .xmodel")
    insp.add_argument("xmodel")
    insp.set_defaults(func=run_inspect)
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])


def run_import(args: argparse.Namespace) -> int:
    from ..core.model.export import import_checkpoint
    from ..core.output_guard import check_output_file, safe_name

    check_output_file(args.out, inputs=[args.checkpoint])  # the checkpoint is never replaced by its ONNX
    out = import_checkpoint(args.checkpoint, args.out, name=args.name)
    print(f"wrote {safe_name(out)}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..backends import default_model_path
    from ..core.errors import ModelError
    from ..core.model.metadata import read_model_info
    from ..core.verdict import SPAN_LEVEL_NAMES, span_level

    path = Path(args.model) if args.model else default_model_path()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    mi = read_model_info(str(path))
    print(f"model      {mi.name} {mi.version}")
    print(f"file       {path}")
    print(f"sha256     {mi.sha256}")
    print(f"trained    {'yes' if mi.trained else 'NO - untrained placeholder, scores mean nothing'}")
    print(f"threshold  {mi.threshold:.3f} (real below {mi.real_below:.3f})")
    print(f"span level {span_level(mi):.3f} ({SPAN_LEVEL_NAMES.get(mi.span_level, mi.span_level)})")
    for b in mi.bands:
        print(f"band       [{b.lo:.2f}, {min(b.hi, 1.0):.2f}) {b.name}: {b.meaning}")
    if mi.card_path and Path(mi.card_path).is_file():
        print()
        print(Path(mi.card_path).read_text(encoding="utf-8"))
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from ..backends.vart import inspect_xmodel

    print(inspect_xmodel(args.xmodel))
    return 0
