"""How do unseen real faces score: photos against video frames, as filmed and degraded? (no deepfakes-dev)

Why: the model's threshold is calibrated on the held-out split's real crops against their self-blends,
and most of those crops are photos (a photo gives one crop, a video at most six). Users analyse video.
This measures, on the same held-out people (the standard split of ``deepyn train --arch lite0``: 40
frames per real video, the 4 default generators held out), the share of real crops at or above the
model's own threshold and top band, separately for photos and for video frames, and again after a
talking-head-style degradation (the face rendered at 160 px / JPEG quality 50, or 112 px / quality 30,
then scaled back to 224 px), next to the held-out generators' crops; and the real crops' mean score with
and without a black edge band (a face near the frame's edge is padded with black; see
``augment.match_border``). Only training-side data is read:
``../shared/data/real-faces``, ``real-faces-2``, ``fakes-train`` and the YuNet model; the script exits
with a message when they are absent.

    python bench/accuracy_real_video.py [--model PATH] [--data ../shared/data] [--work DIR] [--out F.json]

The crop pool is cached in ``--work`` (default: a temporary folder; building it takes ~5 minutes).
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from training_data import add_options, emit, pool_sources

DEGRADATIONS: dict[str, tuple[int, int] | None] = {"as filmed": None, "160px q50": (160, 50), "112px q30": (112, 30)}


def degrade(crop: np.ndarray, size: int, quality: int) -> np.ndarray:
    """The face at ``size`` px, JPEG-compressed at ``quality``, back to the crop's size (RGB uint8)."""
    import cv2

    from deepyn_gui.core.training.augment import jpeg

    h, w = crop.shape[:2]
    small = jpeg(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), quality)
    return np.ascontiguousarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def scorer(model: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])

    def scores(crops: np.ndarray) -> np.ndarray:
        x = crops.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        return np.concatenate([sess.run(["fake_score"], {"image": x[i:i + 32]})[0].reshape(-1)
                               for i in range(0, len(x), 32)])

    return scores


def share(values: np.ndarray, level: float) -> float:
    return round(float((values >= level).mean()), 3) if len(values) else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "uynet_default.onnx"))
    add_options(ap)
    args = ap.parse_args()
    needed = pool_sources(args.data, "accuracy_real_video")
    if needed is None:
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from deepyn_gui.core.model.metadata import read_model_info
    from deepyn_gui.core.training.augment import black_border, with_border
    from deepyn_gui.core.training.train_lite import Pool, build_pools

    info = read_model_info(args.model)
    top = max(b.lo for b in info.bands)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pools = build_pools([needed[0], needed[1]], needed[2], args.work or tmp, needed[3], log=lambda s: None)
    real, gen = pools["real_val"], pools["fake_val"]
    assert isinstance(real, Pool) and isinstance(gen, Pool)
    families = np.asarray(real.families)
    score = scorer(args.model, args.threads)
    out: dict[str, Any] = {
        "suite": "accuracy_real_video", "model": info.name, "model_sha256": info.sha256,
        "threshold": info.threshold, "top_band_from": top,
        "held_out": {str(f): {"crops": int((families == f).sum()),
                              "groups": len(set(np.asarray(real.groups)[families == f]))}
                     for f in sorted(set(families))} | {"generated": {"crops": len(gen), "groups": len(set(gen.groups))}},
        "figures": {},
    }
    for name, how in DEGRADATIONS.items():
        def tf(c: np.ndarray, how: tuple[int, int] | None = how) -> np.ndarray:
            return c if how is None else degrade(c, *how)

        sr = score(np.stack([tf(c) for c in real.crops]))
        sg = score(np.stack([tf(c) for c in gen.crops]))
        rows = {str(f): sr[families == f] for f in sorted(set(families))} | {"generated": sg}
        out["figures"][name] = {k: {"mean": round(float(v.mean()), 3), "at_or_above_threshold": share(v, info.threshold),
                                    "at_or_above_top_band": share(v, top)} for k, v in rows.items()}
        banded = np.array([any(d >= 4 for d in black_border(c)) for c in real.crops])
        out["figures"][name]["real crops by black edge band"] = {
            f"{f}, {'with' if b else 'without'} band": {"crops": int(((families == f) & (banded == b)).sum()),
                                                         "mean": round(float(sr[(families == f) & (banded == b)].mean()), 3)}
            for f in sorted(set(families)) for b in (True, False) if ((families == f) & (banded == b)).any()}
        if how is None:  # the intervention: the same band-less crops, given the band of a random banded one
            rng = np.random.default_rng(0)
            donors = [black_border(c) for c in real.crops[banded]]
            plain = np.flatnonzero(~banded)
            moved = score(np.stack([with_border(real.crops[i], donors[int(rng.integers(len(donors)))]) for i in plain]))
            out["figures"][name]["band-less real crops given a real crop's band"] = {
                str(f): {"crops": int((families[plain] == f).sum()),
                         "mean before": round(float(sr[plain][families[plain] == f].mean()), 3),
                         "mean after": round(float(moved[families[plain] == f].mean()), 3)}
                for f in sorted(set(families[plain]))}
        videos = families == "real-video"
        groups = np.asarray(real.groups)
        out["figures"][name]["per real video"] = {
            str(g): {"crops": int((groups == g).sum()), "mean": round(float(sr[groups == g].mean()), 3),
                     "at_or_above_threshold": share(sr[groups == g], info.threshold)}
            for g in sorted(set(groups[videos]))}
    out["note"] = ("generated = the crops of the standard split's held-out generators; a model whose later "
                   "runs trained on every generator (2.1: runs E-H) has seen them, so they show its scale only")
    out["seconds"] = round(time.perf_counter() - t0, 1)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
