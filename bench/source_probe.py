"""Can a model's features still name the training real video a crop came from? (no deepfakes-dev)

Why: the models score the real videos they trained on near 0 and unseen real video near 0.45
(``real_video_memorisation.py``). Training against a source adversary (``deepyn train --source-adversary W``,
``core/training/adversary.py``) drove the adversary to chance, yet did not move that gap. This tells whether the
information was removed or only hidden from the adversary: a fresh linear probe (multinomial logistic
regression, standardised features, L2 1e-3, Adam 300 steps) is trained on the pooled 1280-d features (the
classifier's input) of the first half of every training real video's evenly spaced crops and tested on the
second half (later frames of the same videos). Chance is 1 / videos. ``imagenet`` stands for the untrained
ImageNet encoder, as a reference.

    python bench/source_probe.py imagenet CKPT.pt [CKPT.pt ...] [--h16] [--per-group 40] [--data ../shared/data]
        [--work DIR]

Checkpoints are lite0 training checkpoints (``last.pt``), loaded with ``weights_only=True``. Only training-side
data is read (``real-faces``, ``real-faces-2``, the YuNet model). Prints one JSON document.
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


def pooled_features(model: Any, crops: np.ndarray) -> Any:
    """The classifier's input (global average of the deepest features) for every crop, in eval mode."""
    import torch
    import torch.nn.functional as F

    from deepyn_gui.core.training.train import to_tensor

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), 32):
            _, deep = model.encode(to_tensor(crops[i:i + 32]))
            out.append(torch.flatten(F.adaptive_avg_pool2d(deep, 1), 1))
    return torch.cat(out)


def probe_accuracy(features: Any, labels: np.ndarray, train: np.ndarray, steps: int = 300) -> float:
    """Test accuracy of a linear probe trained on the ``train`` rows and tested on the others."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = (features - features[train].mean(0)) / (features[train].std(0) + 1e-6)
    y = torch.from_numpy(labels)
    w = torch.zeros(x.shape[1], int(labels.max()) + 1, requires_grad=True)
    b = torch.zeros(int(labels.max()) + 1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(x[train] @ w + b, y[train]) + 1e-3 * (w ** 2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    with torch.no_grad():
        return float(((x[~train] @ w + b).argmax(1) == y[~train]).float().mean())


def main() -> int:
    args, t0, pools = models_on_split(
        __doc__, "crops per training real video (evenly spaced; default 12)", "source_probe", "deepyn-probe-",
        "lite0 training checkpoints (.pt), or 'imagenet' for the untrained encoder")
    if pools is None:
        return 0
    import torch
    from real_video_memorisation import evenly_per_group

    from deepyn_gui.core.model.uynet_lite import LiteUYNet, load_imagenet_weights
    from deepyn_gui.core.training.train import load_checkpoint_state

    torch.set_num_threads(args.threads)
    real: Any = pools["real_train"]
    videos = sorted({g for g, f in zip(real.groups, real.families) if f == "real-video"})
    pick = evenly_per_group(list(real.groups), args.per_group)
    pick = pick[np.isin(np.asarray(real.groups)[pick], videos)]
    labels = np.asarray([videos.index(g) for g in np.asarray(real.groups)[pick]])
    train = np.zeros(len(pick), bool)
    for v in range(len(videos)):  # the first half of each video's crops (in time order) trains the probe
        k = np.flatnonzero(labels == v)
        train[k[: len(k) // 2]] = True
    out: dict[str, Any] = {"suite": "source_probe", "split": "h16" if args.h16 else "standard",
                           "videos": len(videos), "crops": len(pick), "chance": round(1 / len(videos), 4),
                           "probe_test_accuracy": {}}
    for name in args.models:
        if name == "imagenet":
            model = LiteUYNet()
            load_imagenet_weights(model)
        else:
            state = load_checkpoint_state(name)["model"]
            assert isinstance(state, dict)
            model = LiteUYNet.for_state(state)
            model.load_state_dict(state)
        acc = probe_accuracy(pooled_features(model, real.crops[pick]), labels, train)
        out["probe_test_accuracy"][name] = round(acc, 3)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
