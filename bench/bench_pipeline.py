"""Pipeline benchmark: decode, detect, infer and end-to-end speed on a generated single-face clip.

Prints one JSON document (and a short table on stderr). Every ratio is measured in this one run on
this machine: pipeline efficiency = end-to-end fps / fps of the slowest stage measured alone.

    python bench/bench_pipeline.py [--size 1280x720] [--frames 150] [--threads 2] [--model PATH]

The full suite (every stage, both resolutions, int8, torch, width 64, GUI, memory) is bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_clip(path: Path, w: int, h: int, n: int, fps: int) -> None:
    """A talking-head sized face (h/4.5 px wide): the default 40 px face was too small for res10 at
    720p, so this benchmark used to time a clip with no face at all (see bench/run_all.py)."""
    from tests.media import astronaut_clip_frames, write_clip

    write_clip(path, astronaut_clip_frames(n, w, h, face_px=round(h / 4.5), pan_px_per_frame=2.0), fps=fps)


def bench(size: str, frames: int, threads: int, model: str | None, backend_name: str, fps: int) -> dict:
    import cv2

    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.faces import crop_transform_for_box, extract_crop, make_detector
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze
    from deepyn_gui.core.video import VideoSource

    cv2.setNumThreads(1)
    w, h = (int(v) for v in size.lower().split("x"))
    out: dict = {"clip": {"width": w, "height": h, "frames": frames, "fps": fps}, "threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "bench.mp4"
        make_clip(clip, w, h, frames, fps)

        t0 = time.perf_counter()
        decoded = []
        with VideoSource(str(clip)) as src:
            for f in src.frames():
                decoded.append(f.rgb)
        decode_fps = len(decoded) / (time.perf_counter() - t0)

        det = make_detector("auto", threads=1)
        sample = decoded[: min(60, len(decoded))]
        det.detect(sample[0])
        t0 = time.perf_counter()
        dets = [det.detect(f) for f in sample]
        detect_fps = len(sample) / (time.perf_counter() - t0)
        crops = [extract_crop(f, crop_transform_for_box(d[0].box)) for f, d in zip(sample, dets) if d]
        faces_per_frame = sum(len(d) for d in dets) / len(sample)

        backend = create_backend(backend_name, model_path=model, threads=threads, batch_size=8)
        import numpy as np

        batch = np.stack((crops * 8)[:32]) if crops else np.zeros((32, 224, 224, 3), np.uint8)
        backend.infer(batch[:8])
        t0 = time.perf_counter()
        reps = 0
        while time.perf_counter() - t0 < 4.0:
            backend.infer(batch)
            reps += 1
        crops_per_s = reps * len(batch) / (time.perf_counter() - t0)

        settings = AnalysisSettings(batch_size=8)
        t0 = time.perf_counter()
        result = analyze(str(clip), backend, settings)
        e2e_fps = len(result.frames) / (time.perf_counter() - t0)
        backend.close()

    infer_fps = crops_per_s / max(faces_per_frame, 1e-9)
    stages = {"decode": decode_fps, "detect": detect_fps, "infer": infer_fps}
    slowest = min(stages, key=stages.get)  # type: ignore[arg-type]
    out.update({
        "model": result.model.name,
        "model_trained": result.model.trained,
        "backend": result.backend,
        "decode_fps": round(decode_fps, 1),
        "detect_fps": round(detect_fps, 1),
        "infer_crops_per_s": round(crops_per_s, 1),
        "faces_per_frame": round(faces_per_frame, 2),
        "end_to_end_fps": round(e2e_fps, 1),
        "real_time_factor": round(e2e_fps / fps, 2),
        "slowest_stage": slowest,
        "pipeline_efficiency": round(e2e_fps / stages[slowest], 2),
        "frames_with_face": sum(1 for f in result.frames if f.faces),
        "frames_analysed": len(result.frames),
        "cpu_count": os.cpu_count(),
    })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None)
    ap.add_argument("--backend", default="onnx")
    a = ap.parse_args()
    res = bench(a.size, a.frames, a.threads, a.model, a.backend, a.fps)
    for k in ("decode_fps", "detect_fps", "infer_crops_per_s", "end_to_end_fps", "real_time_factor",
              "pipeline_efficiency"):
        print(f"{k:<22} {res[k]}", file=sys.stderr)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
