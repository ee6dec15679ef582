#!/usr/bin/env python3
"""Build the Vitis AI calibration set from real clips, with DeepYN's own decode -> detect -> crop.

The int8 fix points are chosen from what the quantiser sees during calibration, so it must see the
crops the app will send to the card: the same decoder (PyAV), the same face detector and tracker,
the same crop geometry (``crop_transform_for_box`` + ``extract_crop``, margin 1.3, 224 x 224, RGB).

Runs on the host, in DeepYN's own environment (not in the Vitis AI docker):

    python packaging/vitis-ai/build_calibration_set.py CLIP [CLIP ...] --out work/calib

Writes ``crops/*.png`` (to look at), ``calib.npy`` (uint8 [N,224,224,3] RGB, what ``quantize.py``
reads with ``allow_pickle=False``) and ``manifest.json`` (source SHA-256, frame, box, crop of every
entry, and the settings). The clips are only read.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _ensure_repo_on_path() -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build_calibration_set.py",
        description="Write face crops made by DeepYN's pipeline from real clips, for Vitis AI calibration.",
    )
    p.add_argument("clips", nargs="+", help="video files with real faces (read-only)")
    p.add_argument("--out", required=True, help="output folder (created; must be empty or new)")
    p.add_argument("--per-clip", type=int, default=64, help="at most this many crops per clip (default 64)")
    p.add_argument("--stride", type=int, default=5, help="look at every Nth frame (default 5)")
    p.add_argument("--margin", type=float, default=1.3, help="crop margin, as in the app (default 1.3)")
    p.add_argument("--min-face", type=int, default=40, help="skip faces smaller than this, as the app does")
    p.add_argument("--detector", default="auto", help="face detector: auto, res10, haar, yunet (default auto)")
    p.add_argument("--detector-model", default=None, help="YuNet .onnx file for --detector yunet")
    p.add_argument("--no-png", action="store_true", help="write only calib.npy and the manifest")
    return p


def build_calibration_set(
    clips: Sequence[str | Path],
    out: str | Path,
    per_clip: int = 64,
    stride: int = 5,
    margin: float = 1.3,
    min_face: int = 40,
    detector: str = "auto",
    detector_model: str | None = None,
    write_png: bool = True,
) -> dict[str, Any]:
    """Detect, track and crop faces in each clip; write the set; return the manifest."""
    _ensure_repo_on_path()
    import cv2

    from deepyn_gui.core.errors import InputError
    from deepyn_gui.core.evidence import sha256_file
    from deepyn_gui.core.export.atomic import write_bytes_atomic
    from deepyn_gui.core.faces import (
        FaceTracker,
        crop_transform_for_box,
        extract_crop,
        is_too_small,
        make_detector,
    )
    from deepyn_gui.core.video import VideoSource

    if per_clip < 1 or stride < 1:
        raise InputError("--per-clip and --stride must be at least 1")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"output folder {out} is not empty; choose a new one")
    crops_dir = out / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    det = make_detector(detector, model_path=detector_model, threads=1)
    crops: list[np.ndarray] = []
    entries: list[dict[str, Any]] = []
    for clip in clips:
        clip = Path(clip)
        tracker = FaceTracker()
        taken = 0
        with VideoSource(clip) as src:
            for frame in src.frames(step=stride):
                for track, d in tracker.update(det.detect(frame.rgb)):
                    if is_too_small(d.box, min_face):
                        continue
                    t = crop_transform_for_box(d.box, margin=margin)
                    crop = extract_crop(frame.rgb, t)
                    name = f"{clip.stem}_f{frame.index:06d}_t{track}.png"
                    if write_png:
                        ok, buf = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                        if not ok:
                            raise RuntimeError(f"PNG encoding failed for {name}")
                        write_bytes_atomic(crops_dir / name, buf.tobytes())
                    crops.append(crop)
                    entries.append({
                        "index": len(crops) - 1, "png": f"crops/{name}" if write_png else None,
                        "clip": clip.name, "frame": frame.index, "pts_s": round(frame.pts_s, 6), "track": track,
                        "box": [round(float(v), 2) for v in d.box], "crop": t.to_list(),
                    })
                    taken += 1
                    if taken >= per_clip:
                        break
                if taken >= per_clip:
                    break
        entries_for_clip = sum(1 for e in entries if e["clip"] == clip.name)
        print(f"{clip.name}: {entries_for_clip} crops", file=sys.stderr)
    if not crops:
        raise InputError("no face large enough was found in the clips: nothing to calibrate with")
    arr = np.stack(crops).astype(np.uint8)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    write_bytes_atomic(out / "calib.npy", buf.getvalue())
    manifest = {
        "format": "deepyn.calibration-set/1",
        "count": int(arr.shape[0]),
        "shape": list(arr.shape),
        "layout": "uint8 NHWC RGB, 224x224, made by deepyn_gui.core.faces (crop_transform_for_box + extract_crop)",
        "settings": {"per_clip": per_clip, "stride": stride, "margin": margin, "min_face": min_face,
                     "detector": getattr(det, "describe", lambda: {"name": detector})()},
        "sources": [{"clip": Path(c).name, "sha256": sha256_file(c)} for c in clips],
        "entries": entries,
    }
    write_bytes_atomic(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _ensure_repo_on_path()
    from deepyn_gui.core.errors import DeepYNError

    try:
        m = build_calibration_set(
            args.clips, args.out, per_clip=args.per_clip, stride=args.stride, margin=args.margin,
            min_face=args.min_face, detector=args.detector, detector_model=args.detector_model,
            write_png=not args.no_png,
        )
    except DeepYNError as exc:
        print(f"build_calibration_set: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {m['count']} crops to {args.out} (calib.npy, manifest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
