"""The weighting maths of bench/calibration_stability.py (the figures in the model card rest on it)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench" / "calibration_stability.py"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("calibration_stability", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("calibration_stability", mod)
    spec.loader.exec_module(mod)
    return mod


def test_photos_and_video_frames_weigh_half_each() -> None:
    cs = _bench()
    fam = np.array(["real-photo"] * 2 + ["real-video"] * 8)
    w = cs.balanced_weights(fam)
    assert np.isclose(w[fam == "real-photo"].sum(), 0.5) and np.isclose(w[fam == "real-video"].sum(), 0.5)
    only_video = cs.balanced_weights(np.array(["real-video"] * 4))
    assert np.allclose(only_video, 0.25)


def test_weighted_youden_follows_the_weights() -> None:
    """Two photos (reals 0.1, self-blends 0.5) and eight video frames (reals 0.6, self-blends 0.9). Weighting
    every crop alike, the eight frames decide: the cut goes above their reals (0.9). Weighting photos and
    frames half each, a cut at 0.5 (all self-blends caught, the frames' reals flagged) is worth as much,
    and the lower of equal optima is kept."""
    cs = _bench()
    reals = np.array([0.1, 0.1] + [0.6] * 8)
    fakes = np.array([0.5, 0.5] + [0.9] * 8)
    fam = np.array(["real-photo"] * 2 + ["real-video"] * 8)
    assert cs.weighted_youden(reals, fakes, np.full(10, 0.1)) == 0.9
    assert cs.weighted_youden(reals, fakes, cs.balanced_weights(fam)) == 0.5


def test_weighted_quantile() -> None:
    cs = _bench()
    v = np.arange(10, dtype=float)
    assert cs.weighted_quantile(v, np.ones(10), 0.9) == 8.0
    w = np.r_[np.full(9, 0.01), 0.91]  # the last value carries most of the weight
    assert cs.weighted_quantile(v, w, 0.5) == 9.0


def test_group_bootstrap_resamples_whole_groups() -> None:
    """A resample draws people or clips, never single crops of them: group "a" (3 crops) always comes
    with a multiple of 3 crops and "c" (2 crops) with a multiple of 2."""
    calstab = _bench()
    groups = np.array(["a", "a", "a", "b", "c", "c"])
    whole = calstab.group_bootstrap(
        groups, lambda i: float((groups[i] == "a").sum() % 3 == 0 and (groups[i] == "c").sum() % 2 == 0), 200, seed=1)
    assert whole == [1.0] * 200
    sizes = calstab.group_bootstrap(groups, lambda i: len(i), 200, seed=1)
    assert len(set(sizes)) > 3 and all(3 <= n <= 9 for n in sizes)  # really resampled, three groups each time
    assert calstab.interval([0.0] * 10 + [1.0] * 90) == [0.0, 1.0]
