"""Why does a smaller face raise false alarms: fewer pixels, the codec, or the detector's framing? (no deepfakes-dev)

Why: ``bench/accuracy_face_size.py`` found that shrinking the 6 held-out real videos so the typical face crop is
about 112 px raises the share of real face-frames at or above the threshold (model 2.1: 38 % -> 54 %). Shrinking
changes three things at once: the face has fewer pixels (the crop is enlarged to the model's 224 px input), the
smaller video is re-encoded (codec artefacts at low resolution, then enlarged), and the detector sees a smaller
face (its box, hence the crop's framing, may differ). This separates them on the same frames, every 5th frame of
each held-out real video, shrunk by the factor that brings its median crop to the target side:

- ``as filmed``: the crop from the original frame with the original box (the baseline);
- ``framing``: original pixels, but the box the detector found in the shrunk video (scaled back up);
- ``pixels``: the original box, with the crop shrunk to the small size (INTER_AREA) and enlarged again as
  inference does (INTER_LINEAR): fewer pixels, no codec, same framing;
- ``pixels + codec``: the original box scaled down onto the re-encoded (mp4v) shrunk video: what inference sees,
  but with the original framing;
- ``all`` (what a user gets): the shrunk video's own detections and pixels.

Reported per arm: the share of face-frames at or above the model's threshold and the mean score, on the frames
found in both the original and the shrunk video. Only training-side data is read.

    python bench/face_size_causes.py [--model PATH] [--data ../shared/data] [--threads 2] [--out F.json]

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

from accuracy_face_size import shrink
from training_data import add_options, emit, held_out_real_videos

#: Target typical crop sides (px of the frame), as in accuracy_face_size.
TARGET_SIDES = (160, 112)
ARMS = ("as filmed", "framing", "pixels", "pixels + codec", "all")


def first_faces(result: Any) -> dict[int, Any]:
    """Frame index -> CropTransform of that frame's first scored face."""
    out: dict[int, Any] = {}
    for fr in result.frames:
        for f in fr.faces:
            if f.state == "ok" and f.crop is not None:
                out[fr.index] = f.crop
                break
    return out


def frames_at(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """RGB frames of ``path`` at the wanted indices, decoded by the app's own reader."""
    from deepyn_gui.core.video import VideoSource

    out: dict[int, np.ndarray] = {}
    with VideoSource(str(path)) as src:
        for vf in src.frames():
            if vf.index in wanted:
                out[vf.index] = vf.rgb
            if len(out) == len(wanted):
                break
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "uynet_default.onnx"))
    add_options(ap, work=False)
    args = ap.parse_args()
    reals = held_out_real_videos(args.data, "face_size_causes")
    if reals is None:
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import cv2

    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.faces.crops import extract_crop
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze
    from deepyn_gui.core.results import CropTransform

    t0 = time.perf_counter()
    backend = create_backend("onnx", model_path=args.model, threads=args.threads)
    info = backend.model_info
    thr = float(info.threshold)

    def score(crops: list[np.ndarray]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(crops), 16):
            _mask, fake = backend.infer(np.stack(crops[i:i + 16]))
            out += [float(s) for s in fake]
        return out

    targets: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="deepyn-facesize-causes-") as tmp:
            base: dict[Path, tuple[dict[int, Any], float]] = {}
            for clip in reals:
                res = analyze(str(clip), backend, AnalysisSettings(stride=5))
                faces = first_faces(res)
                base[clip] = (faces, float(np.median([c.side for c in faces.values()])) if faces else 0.0)
            for target in TARGET_SIDES:
                arms: dict[str, list[float]] = {a: [] for a in ARMS}
                per_clip: dict[str, Any] = {}
                for clip in reals:
                    faces, side = base[clip]
                    if not faces or side <= 0 or target / side >= 1.0:
                        continue  # never enlarge: this clip's faces are already that small
                    f = target / side
                    small_path = shrink(clip, Path(tmp) / f"{clip.stem}-{target}.mp4", f)
                    small_res = analyze(str(small_path), backend, AnalysisSettings(stride=5))
                    small_faces = first_faces(small_res)
                    common = sorted(set(faces) & set(small_faces))
                    if not common:
                        continue
                    orig = frames_at(clip, set(common))
                    small = frames_at(small_path, set(common))
                    common = [i for i in common if i in orig and i in small]
                    # the shrunk frame's exact factor (sizes are rounded to even pixels)
                    fx = small[common[0]].shape[1] / orig[common[0]].shape[1]
                    crops: dict[str, list[np.ndarray]] = {a: [] for a in ARMS}
                    for i in common:
                        a, d = faces[i], small_faces[i]
                        crops["as filmed"].append(extract_crop(orig[i], a))
                        crops["framing"].append(extract_crop(orig[i], CropTransform(d.x0 / fx, d.y0 / fx, d.side / fx)))
                        low = max(8, round(a.side * fx))
                        shrunk = cv2.resize(crops["as filmed"][-1], (low, low), interpolation=cv2.INTER_AREA)
                        crops["pixels"].append(cv2.resize(shrunk, (a.size, a.size), interpolation=cv2.INTER_LINEAR))
                        crops["pixels + codec"].append(
                            extract_crop(small[i], CropTransform(a.x0 * fx, a.y0 * fx, a.side * fx)))
                        crops["all"].append(extract_crop(small[i], d))
                    clip_scores = {arm: score(c) for arm, c in crops.items()}
                    for arm, s in clip_scores.items():
                        arms[arm] += s
                    per_clip[clip.name] = {
                        "factor": round(fx, 3), "face_frames": len(common),
                        "at_or_above_threshold": {arm: round(float(np.mean(np.asarray(s) >= thr)), 3)
                                                  for arm, s in clip_scores.items()},
                        "box_side_ratio_median": round(float(np.median(
                            [small_faces[i].side / fx / faces[i].side for i in common])), 3),
                    }
                targets[str(target)] = {
                    "face_frames": len(arms["as filmed"]),
                    "at_or_above_threshold": {a: round(float(np.mean(np.asarray(s) >= thr)), 3) if s else None
                                              for a, s in arms.items()},
                    "mean_score": {a: round(float(np.mean(s)), 3) if s else None for a, s in arms.items()},
                    "per_clip": per_clip,
                }
    finally:
        backend.close()
    out = {"suite": "face_size_causes", "model": info.name, "model_sha256": info.sha256, "threshold": round(thr, 4),
           "real_videos": [c.name for c in reals], "arms": list(ARMS), "targets": targets,
           "seconds": round(time.perf_counter() - t0, 1)}
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
