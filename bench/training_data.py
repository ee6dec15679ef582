"""What the accuracy benchmarks that read our own training-side data share: their options, the check that the
data are there, and the JSON they print (``accuracy_real_video``, ``calibration_stability``, ``span_level``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def add_options(ap: argparse.ArgumentParser, work: bool = True) -> None:
    """``--data`` (default ``../shared/data``), ``--work`` (crop-pool cache), ``--threads``, ``--out``."""
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    if work:
        ap.add_argument("--work", default=None, help="crop-pool cache folder (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the JSON here")


def pool_sources(data: str | Path, suite: str) -> list[Path] | None:
    """[real-faces, real-faces-2, fakes-train, the YuNet model] under ``data``; None (and a message on
    stderr) when one is missing, so a clone without ``../shared`` skips cleanly."""
    root = Path(data)
    needed = [root / "real-faces", root / "real-faces-2", root / "fakes-train", root / "detectors" / "yunet_n_320_320.onnx"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        print(f"{suite}: skipped, missing {', '.join(missing)}", file=sys.stderr)
        return None
    return needed


def emit(doc: dict[str, Any], out: str | None) -> None:
    """Print the benchmark's JSON document, and write it to ``out`` too when given."""
    text = json.dumps(doc, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
