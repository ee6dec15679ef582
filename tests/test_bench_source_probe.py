"""The linear probe of bench/source_probe.py (the model card's reading of the source adversary rests on it)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "source_probe.py"


def test_probe_names_separable_sources_and_not_random_ones() -> None:
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("source_probe", BENCH)
    assert spec and spec.loader
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 20)
    train = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], 4)
    centres = rng.normal(0, 3, (4, 16))
    separable = torch.from_numpy((centres[labels] + rng.normal(0, 1, (80, 16))).astype(np.float32))
    assert probe.probe_accuracy(separable, labels, train) == 1.0
    noise = torch.from_numpy(rng.normal(0, 1, (80, 16)).astype(np.float32))
    assert probe.probe_accuracy(noise, labels, train) < 0.6  # chance is 0.25
