"""Does a model recognise the real videos it trained on rather than real video in general? (no deepfakes-dev)

Why: on the 16 unseen real videos of the h16 split, 2.1's recipe flagged 7 and 2.5's 9, and 40-45 % of their
frames scored at or above the threshold, against about 10 % of unseen photo crops. The real pool holds about
300 photo files but only about 30 training videos. If the models learnt *those* videos (people, rooms, light,
encoding) instead of what a real face looks like, their training videos' frames score low and unseen videos'
frames high, while photos, with ten times as many sources, generalise. This scores, with each model given,
the same evenly spaced crops (at most ``--per-group`` per clip or photo file) of the training side and of the
held-out side of its split, photos and video frames apart, untouched (no nuisances, as inference sees them):
mean score, share at or above the model's threshold, and the share of clips or files whose median crop
is at or above it. Only training-side data is read (``real-faces``, ``real-faces-2``, the YuNet model).

    python bench/real_video_memorisation.py MODEL.onnx [MODEL.onnx ...] [--h16] [--per-group 12]
        [--data ../shared/data] [--work DIR]

``--h16`` is the split of the ``*-h16-trial`` recipes (16 real videos held out); only for their models, since
every other model trained on ten of those videos. Prints one JSON document.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from training_data import emit, models_on_split


def evenly_per_group(groups: list[str], per_group: int) -> np.ndarray:
    """Indices of at most ``per_group`` evenly spaced crops of every group, in group order."""
    g = np.asarray(groups)
    out = []
    for name in sorted(set(groups)):
        idx = np.flatnonzero(g == name)
        out.append(idx[np.unique(np.linspace(0, len(idx) - 1, min(per_group, len(idx))).round().astype(int))])
    return np.concatenate(out) if out else np.zeros(0, int)


def summary(scores: np.ndarray, groups: np.ndarray, threshold: float) -> dict[str, Any]:
    """Mean score, crops and groups (median crop) at or above ``threshold``."""
    if len(scores) == 0:
        return {"crops": 0}
    medians = [float(np.median(scores[groups == g])) for g in np.unique(groups)]
    return {"groups": len(medians), "crops": len(scores), "mean_score": round(float(scores.mean()), 3),
            "crops_at_or_above_threshold": round(float((scores >= threshold).mean()), 3),
            "groups_at_or_above_threshold": round(float(np.mean(np.asarray(medians) >= threshold)), 3)}


def main() -> int:
    args, t0, pools = models_on_split(__doc__, "crops per clip or photo file (evenly spaced)",
                                      "real_video_memorisation", "deepyn-memo-")
    if pools is None:
        return 0
    from accuracy_real_video import scorer

    from deepyn_gui.core.model.metadata import read_model_info
    out: dict[str, Any] = {"suite": "real_video_memorisation", "split": "h16" if args.h16 else "standard",
                           "per_group": args.per_group, "models": {}}
    for model in args.models:
        threshold = float(read_model_info(model).threshold)
        score = scorer(model, args.threads)
        row: dict[str, Any] = {"threshold": round(threshold, 3)}
        for side in ("real_train", "real_val"):
            pool: Any = pools[side]
            pick = evenly_per_group(list(pool.groups), args.per_group)
            crops = pool.crops[pick]
            groups = np.asarray(pool.groups)[pick]
            families = np.asarray(pool.families)[pick]
            s = score(crops)
            for fam in ("real-video", "real-photo"):
                sel = families == fam
                row[f"{'seen' if side == 'real_train' else 'unseen'} {fam}"] = summary(s[sel], groups[sel], threshold)
        out["models"][model] = row
    out["seconds"] = round(time.perf_counter() - t0, 1)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
