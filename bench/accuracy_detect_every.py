"""Does running the face detector on every Nth frame change the scores? (the case for ``detect_every``)

For each clip, the pipeline runs once with ``detect_every=1`` (the reference: the detector looks at
every frame) and once per N with the detector every Nth frame (boxes moved on by their velocity in
between, detection forced on shot changes). Reported per N, over all frames of all clips:

* ``face_presence_mismatch``: frames where the reference and the variant disagree on how many faces;
* ``box_iou``: mean/min IoU of each face's box with the reference box (same frame, best match);
* ``abs_delta_frame_score``: mean/p95/max |Δ| of the frame's most suspicious face score;
* ``abs_delta_video_score``: max |Δ| of the clip's verdict score (the number a user reads);
* ``verdict_label_changes``: clips whose verdict label changed;
* ``detector_frames``: share of frames the detector looked at as a whole (what the speed-up comes from);
  with ``--full-every N`` > 1 (``-fullN`` keys) the other detections look only around tracked faces.

Each N runs with the velocity prediction (the pipeline's behaviour) and, for comparison, with boxes
simply kept where they were detected (``carry``). ``reference_noise`` is the model's own frame-to-frame
variation with the detector on every frame (mean |score(t) - score(t-1)|): differences of that size
are what the detector's own jitter already causes.

Clips: the real talking-head clips in ../shared/data/real-faces (skipped when absent) and a generated
720p clip of a face panning fast (3 px/frame). Prints one JSON document.

    python bench/accuracy_detect_every.py [--every 2 3 4 6] [--frames 100] [--clips 8] [--model PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax2, bx2) - max(a[0], b[0])), max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter > 0 else 0.0


def run(clip: Path, backend: Any, every: int, frames: int, predict: bool = True, full: int = 1) -> tuple[Any, int]:
    from deepyn_gui.core import faces, pipeline
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze

    pipeline._BoxCarrier.PREDICT = predict

    calls = {"n": 0}
    real = faces.make_detector

    def counting(*a: Any, **k: Any) -> Any:
        det = real(*a, **k)
        inner = det.detect

        def detect(rgb: Any) -> Any:
            calls["n"] += 1
            return inner(rgb)

        det.detect = detect
        return det

    faces.make_detector = counting
    try:
        res = analyze(str(clip), backend,
                      AnalysisSettings(detect_every=every, full_detect_every=full, max_frames=frames))
    finally:
        faces.make_detector = real
    return res, calls["n"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, nargs="*", default=[2, 3, 4, 6])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", nargs="*", default=["predict", "carry"], choices=["predict", "carry"])
    ap.add_argument("--full-every", type=int, nargs="*", default=[1, 4],
                    help="full_detect_every values: 1 = every detection looks at the whole frame; N > 1 = "
                         "the others look only around tracked faces (the pipeline default is 4)")
    a = ap.parse_args()

    import cv2

    from deepyn_gui.backends import create_backend
    from tests.media import astronaut_clip_frames, write_clip

    cv2.setNumThreads(1)
    backend = create_backend("onnx", model_path=a.model, threads=a.threads, batch_size=8)
    shared = Path(os.environ.get("DEEPYN_SHARED_DATA", ROOT.parent / "shared" / "data")) / "real-faces"
    clips = sorted(shared.glob("*.mp4"))[: a.clips] if shared.is_dir() else []
    out: dict[str, Any] = {"load_avg_before": os.getloadavg(), "model": backend.model_info.name,
                           "trained": backend.model_info.trained, "frames_per_clip": a.frames, "clips": []}
    keys = [(e, m, f) for e in a.every for m in a.modes for f in a.full_every]
    per: dict[tuple[int, str, int], dict[str, list[float]]] = {
        k: {"d": [], "iou": [], "mismatch": [], "video": [], "label": [], "det": [], "n": [], "t": []} for k in keys}
    noise: list[float] = []
    t_ref_total = 0.0
    with tempfile.TemporaryDirectory() as td:
        fast = write_clip(Path(td) / "pan_720p.mp4",
                          astronaut_clip_frames(a.frames, 1280, 720, face_px=160, pan_px_per_frame=3.0), fps=25)
        for clip in [*clips, fast]:
            t0 = time.perf_counter()
            ref, _ = run(clip, backend, 1, a.frames, full=1)
            t_ref = time.perf_counter() - t0
            t_ref_total += t_ref
            out["clips"].append({"clip": clip.name, "frames": len(ref.frames), "ref_verdict": ref.verdict.label,
                                 "ref_score": ref.verdict.fake_score})
            s_ref = [f.max_score for f in ref.frames]
            noise += [abs(x - y) for x, y in itertools.pairwise(s_ref) if x is not None and y is not None]
            for e, mode, full in keys:
                t0 = time.perf_counter()
                var, det_calls = run(clip, backend, e, a.frames, predict=(mode == "predict"), full=full)
                per[(e, mode, full)]["t"].append(time.perf_counter() - t0)
                p = per[(e, mode, full)]
                p["det"].append(det_calls)
                p["n"].append(len(var.frames))
                for fr, fv in zip(ref.frames, var.frames):
                    if len(fr.faces) != len(fv.faces):
                        p["mismatch"].append(1.0)
                        continue
                    p["mismatch"].append(0.0)
                    for face in fv.faces:
                        if fr.faces:
                            p["iou"].append(max(_iou(face.box, g.box) for g in fr.faces))
                    if fr.max_score is not None and fv.max_score is not None:
                        p["d"].append(abs(fr.max_score - fv.max_score))
                rs, vs = ref.verdict.fake_score, var.verdict.fake_score
                if rs is not None and vs is not None:
                    p["video"].append(abs(rs - vs))
                p["label"].append(float(ref.verdict.label != var.verdict.label))
    backend.close()
    res = {}
    for (e, mode, full), p in per.items():
        d = np.array(p["d"]) if p["d"] else np.zeros(1)
        iou = np.array(p["iou"]) if p["iou"] else np.zeros(1)
        res[f"{e}-{mode}" + (f"-full{full}" if full > 1 else "")] = {
            "face_presence_mismatch": round(float(np.mean(p["mismatch"])), 4),
            "box_iou_mean": round(float(iou.mean()), 3), "box_iou_min": round(float(iou.min()), 3),
            "abs_delta_frame_score_mean": round(float(d.mean()), 4),
            "abs_delta_frame_score_p95": round(float(np.percentile(d, 95)), 4),
            "abs_delta_frame_score_max": round(float(d.max()), 4),
            "abs_delta_video_score_max": round(float(max(p["video"] or [0.0])), 4),
            "verdict_label_changes": int(sum(p["label"])),
            "detector_frames": round(sum(p["det"]) / max(1, sum(p["n"])), 3),  # whole-frame passes
            "wall_s": round(sum(p["t"]), 1),
        }
    out["reference_wall_s"] = round(t_ref_total, 1)
    out["reference_noise_mean_abs_frame_to_frame"] = round(float(np.mean(noise)), 4) if noise else None
    out["reference_noise_p95"] = round(float(np.percentile(noise, 95)), 4) if noise else None
    out["by_detect_every"] = res
    out["load_avg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
