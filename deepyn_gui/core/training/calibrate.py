"""Decision threshold and score bands chosen from validation scores, and the metrics used to report them.

Pure numpy (scikit-learn is not a dependency): AUC is the Mann-Whitney rank statistic with ties
counted as one half, which is exactly the area under the ROC curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..results import ScoreBand


def auc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """ROC AUC for "label 1 scores higher" (rank-based Mann-Whitney U; ties count 1/2).

    Returns NaN when one class is absent (the AUC is undefined, not 0.5).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError("scores and labels must have the same length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks for ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold t (predict fake when score >= t) maximising TPR - FPR (= balanced accuracy).

    Candidates are midpoints between consecutive distinct scores; among equal optima the one
    nearest 0.5 is taken, so a perfectly separated set does not get an extreme threshold.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    u = np.unique(s)
    cands = np.concatenate([[0.0], (u[:-1] + u[1:]) / 2.0, [min(1.0, u[-1] + 1e-6)]]) if len(u) else np.array([0.5])
    best_j, best_t = -np.inf, 0.5
    for t in cands:
        pred = s >= t
        tpr = pred[y].mean() if y.any() else 0.0
        fpr = pred[~y].mean() if (~y).any() else 0.0
        j = tpr - fpr
        if j > best_j + 1e-12 or (abs(j - best_j) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best_j, best_t = j, float(t)
    return float(np.clip(best_t, 0.0, 1.0))


@dataclass(frozen=True)
class CalibrationResult:
    threshold: float
    real_below: float
    high_from: float
    bands: tuple[ScoreBand, ...]
    table: list[dict[str, float | str | int]]


def _band_table(scores: np.ndarray, labels: np.ndarray, bands: Sequence[ScoreBand]) -> list[dict[str, float | str | int]]:
    rows: list[dict[str, float | str | int]] = []
    for k, b in enumerate(bands):
        last = k == len(bands) - 1
        inside = (scores >= b.lo) & ((scores <= b.hi) if last else (scores < b.hi))
        n = int(inside.sum())
        rows.append(
            {
                "band": b.name,
                "lo": round(b.lo, 4),
                "hi": round(b.hi, 4),
                "n": n,
                "n_fake": int(labels[inside].sum()),
                "fake_rate": float(labels[inside].mean()) if n else float("nan"),
            }
        )
    return rows


def calibration_table(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, bands: Sequence[ScoreBand]
) -> list[dict[str, float | str | int]]:
    """Per band: count, fakes and the observed fake rate (label 1 = fake)."""
    return _band_table(np.asarray(scores, np.float64), np.asarray(labels).astype(np.int64), bands)


def calibrate(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, tail: float = 0.05) -> CalibrationResult:
    """Threshold (Youden) plus bands from validation data (label 1 = fake).

    ``real_below`` = the ``tail`` quantile of fake scores (only that share of validation fakes scored
    lower), capped at the threshold; ``high_from`` = the 1 - ``tail`` quantile of real scores (only that
    share of real faces scored higher), at least the threshold. Bands: low [0, real_below),
    inconclusive [real_below, threshold), elevated [threshold, high_from), high [high_from, 1].
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if not ((y == 1).any() and (y == 0).any()):
        raise ValueError("calibration needs both real and fake validation scores")
    t = youden_threshold(s, y)
    r = float(min(np.quantile(s[y == 1], tail), t))
    h = float(max(np.quantile(s[y == 0], 1.0 - tail), t))
    pct = round(100 * tail)
    spec = [
        (0.0, r, "low", f"Few signs of manipulation: fewer than {pct}% of the validation fakes scored this low."),
        (
            r,
            t,
            "inconclusive",
            "Below the decision threshold, but some validation fakes scored here: most likely genuine, not certain.",
        ),
        (
            t,
            h,
            "elevated",
            "At or above the decision threshold: signs of manipulation; check the mask and other frames.",
        ),
        (h, 1.0, "high", f"Strong signs of manipulation: fewer than {pct}% of real validation faces scored this high."),
    ]
    bands = tuple(ScoreBand(float(lo), float(hi), n, m) for lo, hi, n, m in spec if hi - lo > 1e-9)
    return CalibrationResult(t, r, h, bands, _band_table(s, y, bands))
