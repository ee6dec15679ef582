"""What the accuracy benchmarks that read our own training-side data share: their options, the check that the
data are there, and the JSON they print (``accuracy_real_video``, ``calibration_stability``, ``span_level``,
``accuracy_face_size``)."""

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


#: The real videos of the standard split's held-out people (``train_lite.DEFAULT_VAL_IDS`` and real-faces-2's).
HELD_OUT_REAL_VIDEOS = ("real-faces/dagan__driving.mp4", "real-faces/liveportrait__driving_d12.mp4",
                        "real-faces/pcavs__Pose_Source_620900105.mp4", "real-faces/tpsmm__driving.mp4",
                        "real-faces/videoretalking__face_4.mp4", "real-faces-2/videos/lia__vox_driving3.mov")


#: The ten more real videos that models trained with ``--recipe 2.1-h16-trial`` never saw
#: (``train_lite.EXTRA_VAL_VIDEOS_H16``); only meaningful for such models: every other model trained on them.
EXTRA_HELD_OUT_REAL_VIDEOS_H16 = (
    "real-faces/liveportrait__driving_d0.mp4", "real-faces/liveportrait__driving_d9.mp4",
    "real-faces/aniportrait__pose_ref_video.mp4", "real-faces-2/videos/pcavs__Audio_Source_681100216.mp4",
    "real-faces/liveportrait__driving_d19.mp4", "real-faces/liveportrait__driving_d10.mp4",
    "real-faces-2/videos/pcavs__Audio_Source_00086.mp4", "real-faces-2/videos/lia__vox_obama.mov",
    "real-faces/videoretalking__face_1.mp4", "real-faces-2/videos/vtoonify__529.mp4",
)


def held_out_real_videos(data: str | Path, suite: str, h16: bool = False) -> list[Path] | None:
    """:data:`HELD_OUT_REAL_VIDEOS` (and with ``h16`` the ten of :data:`EXTRA_HELD_OUT_REAL_VIDEOS_H16`) under
    ``data``; None (and a message on stderr) when one is missing."""
    clips = [Path(data) / c for c in HELD_OUT_REAL_VIDEOS + (EXTRA_HELD_OUT_REAL_VIDEOS_H16 if h16 else ())]
    missing = [str(c) for c in clips if not c.exists()]
    if missing:
        print(f"{suite}: skipped, missing {', '.join(missing)}", file=sys.stderr)
        return None
    return clips


def split_pools(args: argparse.Namespace, suite: str, prefix: str) -> dict[str, Any] | None:
    """The training recipe's pools and split (``train_lite.build_pools``: ``real_train``, ``real_val``, ...),
    the h16 split when ``args.h16``; None (with the skip message) when the data are absent. Crops are cached
    under ``args.work`` (default: a new temporary folder); inference uses ``args.threads``."""
    import os
    import tempfile

    needed = pool_sources(args.data, suite)
    if needed is None:
        return None
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(ROOT))
    from deepyn_gui.core.training.train_lite import EXTRA_VAL_VIDEOS_H16, build_pools

    work = args.work or tempfile.mkdtemp(prefix=prefix)
    return build_pools(needed[:2], needed[2], work, needed[3], log=lambda s: None,
                       extra_val_real=EXTRA_VAL_VIDEOS_H16 if getattr(args, "h16", False) else ())


def models_on_split_args(doc: str, per_group_help: str,
                         models_help: str = "exported lite0 models (.onnx)") -> argparse.Namespace:
    """The command line of the benches that score models on the two sides of the training split: models,
    ``--h16``, ``--per-group`` and :func:`add_options`."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("models", nargs="+", help=models_help)
    ap.add_argument("--h16", action="store_true", help="the split of the *-h16-trial recipes (16 real videos held out)")
    ap.add_argument("--per-group", type=int, default=12, help=per_group_help)
    add_options(ap)
    return ap.parse_args()


def models_on_split(doc: str, per_group_help: str, suite: str, prefix: str,
                    models_help: str = "exported lite0 models (.onnx)") -> tuple[argparse.Namespace, float, dict[str, Any] | None]:
    """The start of every bench that scores models on the two sides of the split: its command line
    (:func:`models_on_split_args`), the clock, and the split's pools (None: the data are absent, skip)."""
    import time

    args = models_on_split_args(doc, per_group_help, models_help)
    t0 = time.perf_counter()
    return args, t0, split_pools(args, suite, prefix)


def emit(doc: dict[str, Any], out: str | None) -> None:
    """Print the benchmark's JSON document, and write it to ``out`` too when given."""
    text = json.dumps(doc, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
