"""Does a smaller face make the score less reliable, both ways? (no deepfakes-dev)

Why: the viewer, the terminal and the report add a caution when a clip's typical face crop is smaller than
the model's 224 px input (``verdict.clip_cautions``). This measures the claim behind it by shrinking real and
manipulated footage and nothing else: the 6 real videos of the standard split's held-out people and the demo
clip (its frames 75-149 self-blended, the rest clean) are scaled down so that the typical face crop covers
about 224, 160 and 112 px of the frame (never scaled up), re-encoded (mp4v), and analysed (every 5th frame for
the real videos, every frame for the demo). For each size: the share of real face-frames at or above the
model's threshold (false alarms), the share of the demo's manipulated face-frames at or above it
(detections), and how many clips get a verdict at or above the threshold. Only training-side data and the
generated demo clip are read.

    python bench/accuracy_face_size.py [--model PATH] [--data ../shared/data] [--threads 2] [--out F.json]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from training_data import add_options, emit, held_out_real_videos

#: Typical face-crop sizes (px of the frame) the clips are shrunk to; "as filmed" keeps the original.
TARGET_SIDES = (224, 160, 112)


def shrink(src: Path, dst: Path, factor: float) -> Path:
    """``src`` scaled by ``factor`` (< 1), every frame, same frame rate, written with OpenCV's mp4v."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            size = (max(2, round(w * factor / 2) * 2), max(2, round(h * factor / 2) * 2))
            if writer is None:
                writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return dst


def face_scores(result: Any) -> tuple[list[int], list[float], list[float]]:
    """(frame index, crop side, fake score) of every scored face."""
    rows = [(fr.index, float(f.crop.side), float(f.fake_score)) for fr in result.frames for f in fr.faces
            if f.state == "ok" and f.fake_score is not None and f.crop is not None]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "uynet_default.onnx"))
    add_options(ap, work=False)
    args = ap.parse_args()
    reals = held_out_real_videos(args.data, "accuracy_face_size")
    if reals is None:
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.demo import write_demo
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze

    t0 = time.perf_counter()
    backend = create_backend("onnx", model_path=args.model, threads=args.threads)
    info = backend.model_info
    thr = float(info.threshold)
    sizes: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="deepyn-facesize-") as tmp:
            demo = write_demo(Path(tmp) / "deepyn-demo.mp4", threads=args.threads).clip
            clips = [(c, 5, False) for c in reals] + [(Path(demo), 1, True)]
            native: dict[Path, float] = {}
            for target in ("as filmed", *TARGET_SIDES):
                real_s: list[float] = []
                fake_s: list[float] = []
                clean_s: list[float] = []
                sides: list[float] = []
                flagged_real = analysed_real = 0
                per_clip: dict[str, Any] = {}
                demo_verdict = None
                for clip, stride, is_demo in clips:
                    path = clip
                    if target != "as filmed":
                        factor = float(target) / native[clip]
                        if factor >= 1.0:
                            continue  # never enlarge: this clip's faces are already that small
                        path = shrink(clip, Path(tmp) / f"{clip.stem}-{target}.mp4", factor)
                    res = analyze(str(path), backend, AnalysisSettings(stride=stride))
                    idx, side, score = face_scores(res)
                    if target == "as filmed":
                        native[clip] = float(np.median(side)) if side else 0.0
                    sides += side
                    per_clip[clip.name] = {
                        "median_crop_side_px": round(float(np.median(side)), 1) if side else None,
                        "frames_at_or_above_threshold": round(float(np.mean(np.asarray(score) >= thr)), 3) if score else None,
                        "verdict_score": None if res.verdict.fake_score is None else round(res.verdict.fake_score, 3)}
                    if is_demo:
                        demo_verdict = {"label": res.verdict.label, "score": res.verdict.fake_score}
                        fake_s += [s for i, s in zip(idx, score) if 75 <= i <= 149]
                        clean_s += [s for i, s in zip(idx, score) if not 75 <= i <= 149]
                    else:
                        real_s += score
                        analysed_real += 1
                        flagged_real += int(res.verdict.fake_score is not None and res.verdict.fake_score >= thr)

                def share(v: list[float]) -> float | None:
                    return round(float(np.mean(np.asarray(v) >= thr)), 3) if v else None

                sizes[str(target)] = {
                    "median_crop_side_px": round(float(np.median(sides)), 1) if sides else None,
                    "real_face_frames": len(real_s), "real_frames_at_or_above_threshold": share(real_s),
                    "real_videos_flagged": flagged_real, "real_videos_analysed": analysed_real,
                    "demo_manipulated_frames_at_or_above_threshold": share(fake_s),
                    "demo_clean_frames_at_or_above_threshold": share(clean_s),
                    "demo_verdict": demo_verdict,
                    "per_clip": per_clip,
                }
    finally:
        backend.close()
    out = {"suite": "accuracy_face_size", "model": info.name, "model_sha256": info.sha256, "threshold": round(thr, 4),
           "real_videos": [c.name for c in reals], "native_crop_side_px": {c.name: round(v, 1) for c, v in native.items()},
           "sizes": sizes, "seconds": round(time.perf_counter() - t0, 1)}
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
