"""Throughput of ``deepyn batch`` through the remote backend: one local ``deepyn serve`` vs a pool of two.

Prints JSON (and writes it to bench/results/remote_pool.json with --save). Each configuration starts from
an empty cache, runs the same synthetic clips (the astronaut portrait), and reports clips/s and crops/s
of the whole batch (decode, detect, network and inference). Run with the serve+remote extras installed:

    PYTHONPATH=.:tests python3 bench/bench_remote_pool.py --clips 8 --frames 24 --save
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--server-threads", type=int, default=1)
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()
    from media import astronaut_clip_frames, write_clip
    from serving_support import start_servers

    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.batch import default_parallel, find_clips, run_batch
    from deepyn_gui.core.cache import AnalysisCache
    from deepyn_gui.core.pipeline import AnalysisSettings

    tmp = Path(tempfile.mkdtemp(prefix="deepyn-bench-pool-"))
    (tmp / "clips").mkdir()
    for i in range(args.clips):
        write_clip(tmp / "clips" / f"c{i:02d}.mp4", astronaut_clip_frames(args.frames, face_px=60 + 5 * i))
    clips = find_clips([tmp / "clips"])
    servers = start_servers(2, threads=args.server_threads)
    runs = []
    try:
        for n in (1, 2, 1, 2):  # interleaved, so drifting load on a shared machine hits both alike
            urls = ",".join(f"url={s.url}" for s in servers[:n])
            backend = create_backend(f"remote:{urls}", batch_size=8)
            cache = AnalysisCache(tmp / f"cache-{len(runs)}")
            t0 = time.perf_counter()
            run = run_batch(clips, backend, AnalysisSettings(batch_size=8), cache=cache,
                            parallel=default_parallel(backend), reports=False)
            wall = time.perf_counter() - t0
            timing = backend.timing.to_json()  # type: ignore[attr-defined]
            backend.close()
            items = run.snapshot()
            assert all(i.state == "done" for i in items), [i.error for i in items]
            runs.append({
                "endpoints": n, "parallel_clips": default_parallel(backend), "wall_s": round(wall, 3),
                "clips_per_s": round(len(items) / wall, 3), "crops_per_s": round(timing["crops"] / wall, 2),
                "server_infer_s": timing["server_infer_s"], "network_s": timing["network_s"],
                "requests": timing["requests"],
            })
    finally:
        for s in servers:
            s.stop()
    out = {
        "bench": "remote_pool", "clips": len(clips), "frames_per_clip": args.frames,
        "server_threads": args.server_threads, "cpus": os.cpu_count(), "machine": platform.machine(),
        "loadavg_1m": round(os.getloadavg()[0], 2), "runs": runs,
    }
    print(json.dumps(out, indent=1))
    if args.save:
        (ROOT / "bench" / "results" / "remote_pool.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
