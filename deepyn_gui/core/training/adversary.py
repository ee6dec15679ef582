"""Source-adversarial training: make the encoder forget which training real video a crop came from.

Measured in sessions 12-13 (model card, *Calibration*): every model scores the ~30 real videos it trained on
about 0.02 and unseen real video about 0.45, and halving the number of training videos makes that worse.
The models learn *which* videos are real. Domain-adversarial training (Ganin & Lempitsky, ICML 2015)
attacks that directly: a small head on the classifier's input (the pooled 1280-d features) learns to name
the training real video of each crop and of its self-blend, and a gradient-reversal layer between them
makes the encoder remove exactly that information. Photos and generated faces are not named (ignored).

Training-only: the adversary is never part of an exported model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: target of a sample the adversary does not name (a photo, a generated face)
IGNORED = -100


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``-weight`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: float) -> Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.weight * grad, None


def reverse_gradient(x: Tensor, weight: float) -> Tensor:
    """``x`` unchanged, but what flows back through it is scaled by ``-weight``."""
    out: Tensor = _ReverseGrad.apply(x, weight)  # type: ignore[no-untyped-call]
    return out


def reversal_weight(progress: float, max_weight: float) -> float:
    """DANN's ramp, 0 at the start to ``max_weight``: early on the adversary's gradients are noise."""
    return max_weight * (2.0 / (1.0 + math.exp(-10.0 * min(1.0, max(0.0, progress)))) - 1.0)


class SourceAdversary(nn.Module):
    """Names the training real video of a pooled feature vector (behind a gradient reversal)."""

    def __init__(self, n_sources: int, features: int = 1280, hidden: int = 256) -> None:
        super().__init__()
        if n_sources < 2:
            raise ValueError("a source adversary needs at least two training real videos")
        self.n_sources = n_sources
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, n_sources))

    def loss(self, pooled: Tensor, targets: Tensor, weight: float) -> tuple[Tensor, float, int]:
        """(cross-entropy over the named samples, their accuracy, how many were named)."""
        named = targets != IGNORED
        n = int(named.sum())
        if n == 0:
            return pooled.sum() * 0.0, float("nan"), 0
        logits = self.net(reverse_gradient(pooled[named], weight))
        acc = float((logits.argmax(dim=1) == targets[named]).float().mean())
        return F.cross_entropy(logits, targets[named]), acc, n


def video_sources(groups: Sequence[str], families: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(the training real videos, sorted; per pool crop its video's index or :data:`IGNORED` for a photo)."""
    videos = sorted({g for g, f in zip(groups, families) if f == "real-video"})
    index = {g: i for i, g in enumerate(videos)}
    return videos, np.asarray([index.get(g, IGNORED) if f == "real-video" else IGNORED
                               for g, f in zip(groups, families)], np.int64)


class PooledFeatures:
    """Captures the classifier's input (the pooled features, before dropout) on every forward pass.

    A forward hook on the model's dropout keeps the exported model's code unchanged; the captured tensor
    stays in the autograd graph, so the adversary's reversed gradient reaches the encoder."""

    def __init__(self, model: nn.Module) -> None:
        self.value: Tensor | None = None
        dropout = model.get_submodule("dropout")
        self._handle = dropout.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        self.value = inputs[0]

    def take(self) -> Tensor:
        if self.value is None:
            raise RuntimeError("no forward pass since the last take()")
        value, self.value = self.value, None
        return value

    def remove(self) -> None:
        self._handle.remove()
