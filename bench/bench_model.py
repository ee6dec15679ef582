"""Model speed: ONNX Runtime ms per 224x224 crop for U-YNet widths and for given model files.

Prints one JSON document. Used to pick the default model's width (the whole pipeline must stay at or
above real time on the 2-core machine) and to time the fp32 and int8 files for the model card.
The machine is shared, so the load average is printed with the numbers.

    python bench/bench_model.py [--widths 4 8 12 16] [--models a.onnx b.onnx] [--threads 1 2] [--runs 30]
    python bench/bench_model.py --pair FP32.onnx INT8.onnx --crops DIR   # int8 vs fp32 agreement

``--crops DIR`` takes the PNG crops in DIR/real and DIR/fake (e.g. ``deepyn train --make-val-set DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def time_model(path: Path, threads: int, runs: int) -> float:
    """Median ms per crop at batch 1 (what a one-face clip sends per frame)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    for _ in range(3):
        sess.run(None, {"image": x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {"image": x})
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1000.0)


def pair(fp32: str, int8: str, crops_dir: str | None) -> int:
    """Score agreement and speed of an int8 model against its fp32 source on the same crops."""
    from deepyn_gui.core.training.data import load_image_folder
    from deepyn_gui.core.training.quantize import agreement, run_session

    if crops_dir is None:
        raise SystemExit("--pair needs --crops DIR")
    d = Path(crops_dir)
    crops = np.concatenate([load_image_folder(d / sub) for sub in ("real", "fake") if (d / sub).is_dir()])
    out = {"load_avg_before": os.getloadavg(), "n_crops": len(crops)}
    out.update(agreement(run_session(fp32, crops, 1), run_session(int8, crops, 1)))
    out["load_avg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="*", default=[])
    ap.add_argument("--models", nargs="*", default=[])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--pair", nargs=2, metavar=("FP32", "INT8"), default=None)
    ap.add_argument("--crops", default=None, help="folder with real/ and fake/ PNG crops (for --pair)")
    args = ap.parse_args()
    if args.pair:
        return pair(args.pair[0], args.pair[1], args.crops)
    out: dict = {"load_avg_before": os.getloadavg(), "cpu_count": os.cpu_count(), "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[tuple[str, Path]] = [(m, Path(m)) for m in args.models]
        if args.widths:
            from deepyn_gui.core.model.export import export_untrained

            for w in args.widths:
                p = Path(tmp) / f"w{w}.onnx"
                export_untrained(w, p, threads=1)
                targets.append((f"untrained width {w}", p))
        for label, path in targets:
            for th in args.threads:
                ms = time_model(path, th, args.runs)
                out["results"].append({"model": label, "threads": th, "ms_per_crop": round(ms, 2)})
                print(f"{label:40s} threads {th}: {ms:7.1f} ms/crop", file=sys.stderr)
    out["load_avg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
