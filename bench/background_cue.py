"""Is the background around the face a cue a model has memorised? (no deepfakes-dev)

Why: ``bench/real_video_memorisation.py`` found that the models score the ~30 real videos they trained on
near 0 and unseen real video near their threshold. A crop keeps a wide margin of room, wall or green screen
around the face. This swaps backgrounds between the two sides of a model's split, on the same evenly spaced
video crops (at most ``--per-group`` per clip): seen faces in front of unseen videos' backgrounds and unseen
faces in front of seen ones. The head is the landmark face hull scaled 1.5x and feathered
(``augment.head_region``); crops without landmarks are left out; donors are drawn at random (seed 0).
The swap itself leaves a feathered seam around the head, so each face is also put in front of another
clip's background from its own side: the difference between the two swaps is the background's own effect.

    python bench/background_cue.py MODEL.onnx [MODEL.onnx ...] [--h16] [--per-group 12]
        [--data ../shared/data] [--work DIR]

Only training-side data is read (``real-faces``, ``real-faces-2``, the YuNet model). Prints one JSON document.
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

from real_video_memorisation import evenly_per_group
from training_data import emit, models_on_split


def video_side(pool: Any, per_group: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Crops, groups and head masks of ``pool``'s real-video crops that have landmarks."""
    from deepyn_gui.core.training.augment import head_region

    pick = evenly_per_group(list(pool.groups), per_group)
    pick = pick[np.asarray(pool.families)[pick] == "real-video"]
    keep, heads = [], []
    for i in pick:
        h = head_region(pool.landmarks[i], pool.crops.shape[1])
        if h is not None:
            keep.append(i)
            heads.append(h)
    idx = np.asarray(keep, int)
    return pool.crops[idx], np.asarray(pool.groups)[idx], heads


def main() -> int:
    args, t0, pools = models_on_split(__doc__, "crops per clip (evenly spaced)", "background_cue", "deepyn-bgcue-")
    if pools is None:
        return 0
    from accuracy_real_video import scorer
    from real_video_memorisation import summary

    from deepyn_gui.core.model.metadata import read_model_info
    from deepyn_gui.core.training.augment import swap_background

    seen, seen_groups, seen_heads = video_side(pools["real_train"], args.per_group)
    unseen, unseen_groups, unseen_heads = video_side(pools["real_val"], args.per_group)
    rng = np.random.default_rng(0)
    seen_on_unseen = np.stack([swap_background(c, h, unseen[int(rng.integers(len(unseen)))])
                               for c, h in zip(seen, seen_heads)])
    unseen_on_seen = np.stack([swap_background(c, h, seen[int(rng.integers(len(seen)))])
                               for c, h in zip(unseen, unseen_heads)])
    def same_side(crops: np.ndarray, groups: np.ndarray, heads: list[np.ndarray]) -> np.ndarray:
        """Each crop's head over the background of a crop of another clip on its own side: the swap's
        own effect (a feathered seam around the head), with no change of side."""
        out = []
        for c, g, h in zip(crops, groups, heads):
            others = np.flatnonzero(groups != g)
            out.append(swap_background(c, h, crops[int(rng.choice(others))]))
        return np.stack(out)

    seen_on_seen = same_side(seen, seen_groups, seen_heads)
    unseen_on_unseen = same_side(unseen, unseen_groups, unseen_heads)
    out: dict[str, Any] = {"suite": "background_cue", "split": "h16" if args.h16 else "standard",
                           "per_group": args.per_group, "models": {}}
    for model in args.models:
        threshold = float(read_model_info(model).threshold)
        score = scorer(model, args.threads)
        out["models"][model] = {
            "threshold": round(threshold, 3),
            "seen faces, own background": summary(score(seen), seen_groups, threshold),
            "seen faces, another seen video's background": summary(score(seen_on_seen), seen_groups, threshold),
            "seen faces, unseen videos' background": summary(score(seen_on_unseen), seen_groups, threshold),
            "unseen faces, own background": summary(score(unseen), unseen_groups, threshold),
            "unseen faces, another unseen video's background": summary(score(unseen_on_unseen), unseen_groups,
                                                                       threshold),
            "unseen faces, seen videos' background": summary(score(unseen_on_seen), unseen_groups, threshold),
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
