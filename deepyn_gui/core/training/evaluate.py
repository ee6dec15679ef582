"""Evaluate a model on labelled clips or crops: AUC, accuracy at the model's threshold, mask IoU, calibration.

Clips go through the real analysis pipeline (:func:`deepyn_gui.core.pipeline.analyze`), so the figures
describe what a user gets; crops (PNG/JPG, already 224x224 face crops) go straight to the backend.
Layouts accepted for ``data``:

* a folder with ``real/`` and ``fake/`` sub-folders of clips or crops (and optionally ``masks/`` with
  ``<stem>.png`` ground-truth masks for fake crops, white = manipulated);
* a folder with ``labels.csv`` (columns ``path,label``) or ``labels.json`` (``{"path": label}``), with
  labels ``real``/``fake`` or ``0``/``1`` (1 = fake) and paths relative to the folder;
* a single clip, or a folder of unlabelled clips: scores only (no AUC), e.g. the original sample clip.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..inference import InferenceBackend
from ..results import ModelInfo, ScoreBand
from .calibrate import auc, calibration_table
from .data import IMAGE_EXTS, VIDEO_EXTS

LABELS = {"real": 0, "0": 0, "fake": 1, "1": 1}


@dataclass
class Item:
    path: Path
    label: int | None  # 1 = fake, 0 = real, None = unknown
    mask: Path | None = None

    @property
    def is_clip(self) -> bool:
        return self.path.suffix.lower() in VIDEO_EXTS


@dataclass
class ItemResult:
    path: str
    label: int | None
    score: float | None  # video-level (clips) or crop score
    frame_scores: list[float] = field(default_factory=list)
    iou: float | None = None
    mask_area: float | None = None
    faces_on: int = 0
    frames: int = 0


@dataclass
class EvalReport:
    model: str
    model_sha256: str
    backend: str
    threshold: float
    items: list[ItemResult]
    metrics: dict[str, float | int | None]
    table: list[dict[str, Any]]
    against: dict[str, Any] = field(default_factory=dict)  # paired comparison with an earlier report

    def to_json(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "backend": self.backend,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "calibration_table": self.table,
            "items": [vars(i) for i in self.items],
        }
        if self.against:
            out["against"] = self.against
        return out

    def scores_by_name(self) -> dict[str, tuple[int, float]]:
        """:func:`item_key` -> (label, score), labelled and scored items only."""
        return {item_key(r.path): (int(r.label), float(r.score)) for r in self.items
                if r.label is not None and r.score is not None}


def item_key(path: str | Path) -> str:
    """How two reports name the same item: its folder and file name (``fake/x.mp4``), so reports made on
    different machines match, and a real and a fake crop that share a file name stay apart."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def _label(text: str) -> int:
    key = str(text).strip().lower()
    if key not in LABELS:
        raise InputError(f"Unknown label {text!r}: use real/fake or 0/1 (1 = fake).")
    return LABELS[key]


def _media(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS + IMAGE_EXTS)


def discover(data: str | Path) -> list[Item]:
    """Labelled (or unlabelled) items from one of the layouts described in the module docstring."""
    d = Path(data)
    if d.is_file():
        if d.suffix.lower() not in VIDEO_EXTS + IMAGE_EXTS:
            raise InputError(f"{d} is not a clip or an image.")
        return [Item(d, None)]
    if not d.is_dir():
        raise InputError(f"No such file or folder: {d}")
    items: list[Item] = []
    if (d / "labels.csv").is_file():
        with open(d / "labels.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                items.append(Item(d / row["path"], _label(row["label"])))
    elif (d / "labels.json").is_file():
        data_ = json.loads((d / "labels.json").read_text(encoding="utf-8"))
        pairs = data_.items() if isinstance(data_, dict) else ((r["path"], r["label"]) for r in data_)
        items = [Item(d / str(p), _label(str(lab))) for p, lab in pairs]
    elif (d / "real").is_dir() or (d / "fake").is_dir():
        masks = d / "masks"
        for sub, lab in (("real", 0), ("fake", 1)):
            if (d / sub).is_dir():
                for p in _media(d / sub):
                    m = masks / f"{p.stem}.png"
                    items.append(Item(p, lab, m if m.is_file() else None))
    else:
        items = [Item(p, None) for p in _media(d)]
    if not items:
        raise InputError(f"Nothing to evaluate in {d} (expected real/ and fake/, labels.csv/json, or clips).")
    missing = [str(i.path) for i in items if not i.path.is_file()]
    if missing:
        raise InputError(f"{len(missing)} labelled files are missing, e.g. {missing[0]}")
    return items


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path} is not a readable image.")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (224, 224):
        rgb = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)
    return rgb


def _read_mask(path: Path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError(f"{path} is not a readable mask image.")
    if m.shape != (224, 224):
        m = cv2.resize(m, (224, 224), interpolation=cv2.INTER_NEAREST)
    return m > 127


def _iou(pred: np.ndarray, truth: np.ndarray) -> float | None:
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else None


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


#: Largest (real x fake) pair count for which a bootstrap interval is computed (item-level sets are far
#: smaller; beyond this the pairwise comparison would need too much memory for a figure nobody asked for).
MAX_CI_PAIRS = 250_000


def _resampled_aucs(
    negatives: Sequence[np.ndarray], positives: Sequence[np.ndarray], reps: int, seed: int
) -> np.ndarray:
    """AUCs [models, reps] on stratified bootstrap resamples, the SAME resamples for every model (its
    scores of the same items in the same order), so differences between models are paired."""
    n_neg, n_pos = len(negatives[0]), len(positives[0])
    rng = np.random.default_rng(seed)
    out = np.empty((len(negatives), reps))
    chunk = max(1, 20_000_000 // (n_neg * n_pos))
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        ni = rng.integers(0, n_neg, (n, n_neg))
        pi = rng.integers(0, n_pos, (n, n_pos))
        for m, (neg, pos) in enumerate(zip(negatives, positives)):
            nb = neg[ni][:, None, :]
            pb = pos[pi][:, :, None]
            out[m, start : start + n] = (pb > nb).mean(axis=(1, 2)) + 0.5 * (pb == nb).mean(axis=(1, 2))
    return out


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def auc_interval(
    negatives: Sequence[float], positives: Sequence[float], reps: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """A stratified percentile-bootstrap interval for the AUC of ``positives`` over ``negatives``.

    Why: on 47 clips one fake more or less moves the AUC by several hundredths, so an AUC without its
    interval invites reading noise as progress. Reals and fakes are resampled separately (each keeps its
    count); the seed is fixed, so the same scores always give the same interval. None when a class has
    fewer than 2 items, or the sets are too large (:data:`MAX_CI_PAIRS`). Items must be independent:
    frames of one clip are not, so no frame-level interval is given.
    """
    neg = np.asarray(negatives, np.float64)
    pos = np.asarray(positives, np.float64)
    if len(neg) < 2 or len(pos) < 2 or len(neg) * len(pos) > MAX_CI_PAIRS:
        return None
    return _percentiles(_resampled_aucs([neg], [pos], reps, seed)[0], level)


def paired_auc_difference(
    mine: dict[str, tuple[int, float]], other: dict[str, tuple[int, float]], names: Sequence[str] | None = None,
    reps: int = 2000, level: float = 0.95, seed: int = 0,
) -> dict[str, float | int] | None:
    """AUC(mine) - AUC(other) on the items both scored, with a paired bootstrap interval.

    ``mine``/``other``: :func:`item_key` -> (label, score). Why paired: two models on the same 47 clips share
    most of their luck (the same hard clips), so the interval of their difference is much narrower than
    the two AUC intervals suggest; an interval that excludes 0 means the change is more than noise.
    None when fewer than 2 shared items of a class (or too many pairs, :data:`MAX_CI_PAIRS`).
    """
    shared = sorted(set(mine) & set(other) if names is None else set(names) & set(mine) & set(other))
    shared = [n for n in shared if mine[n][0] == other[n][0]]  # a label that changed is not the same item
    neg = [n for n in shared if mine[n][0] == 0]
    pos = [n for n in shared if mine[n][0] == 1]
    if len(neg) < 2 or len(pos) < 2 or len(neg) * len(pos) > MAX_CI_PAIRS:
        return None
    a_neg, a_pos = np.array([mine[n][1] for n in neg]), np.array([mine[n][1] for n in pos])
    b_neg, b_pos = np.array([other[n][1] for n in neg]), np.array([other[n][1] for n in pos])
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    delta = auc(np.r_[a_neg, a_pos], y) - auc(np.r_[b_neg, b_pos], y)
    boot = _resampled_aucs([a_neg, b_neg], [a_pos, b_pos], reps, seed)
    lo, hi = _percentiles(boot[0] - boot[1], level)
    return {"n_real": len(neg), "n_fake": len(pos), "delta_auc": float(delta), "ci95_lo": lo, "ci95_hi": hi}


def _add_interval(out: dict[str, Any], key: str, negatives: Sequence[float], positives: Sequence[float]) -> None:
    ci = auc_interval(negatives, positives)
    if ci is not None:
        out[f"{key}_ci95_lo"], out[f"{key}_ci95_hi"] = ci


def _binary_metrics(scores: Sequence[float], labels: Sequence[int], threshold: float, prefix: str) -> dict[str, Any]:
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, np.int64)
    out: dict[str, Any] = {f"{prefix}_n": len(s), f"{prefix}_n_fake": int(y.sum())}
    if not len(s):
        return out
    pred = s >= threshold
    out[f"{prefix}_auc"] = auc(s, y) if (y == 1).any() and (y == 0).any() else None
    if prefix != "frame":  # frames of one clip are not independent samples
        _add_interval(out, f"{prefix}_auc", s[y == 0].tolist(), s[y == 1].tolist())
    out[f"{prefix}_acc"] = float((pred == (y == 1)).mean())
    out[f"{prefix}_tpr"] = float(pred[y == 1].mean()) if (y == 1).any() else None
    out[f"{prefix}_fpr"] = float(pred[y == 0].mean()) if (y == 0).any() else None
    return out


def evaluate(
    items: Sequence[Item],
    backend: InferenceBackend,
    settings: Any = None,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Score every item with ``backend`` (clips through the pipeline) and compute the report."""
    info: ModelInfo = backend.model_info
    t = float(info.threshold)
    results: list[ItemResult] = []
    crops = [i for i in items if not i.is_clip]
    clips = [i for i in items if i.is_clip]
    bs = max(1, int(getattr(backend, "batch_size", 8)))
    for k in range(0, len(crops), bs):
        chunk = crops[k : k + bs]
        batch = np.stack([_read_rgb(i.path) for i in chunk])
        mask_prob, scores = backend.infer(batch)
        for i, m, s in zip(chunk, mask_prob, scores):
            pred = m > 0.5
            r = ItemResult(str(i.path), i.label, float(s), [float(s)], mask_area=float(pred.mean()), faces_on=1, frames=1)
            if i.mask is not None:
                r.iou = _iou(pred, _read_mask(i.mask))
            results.append(r)
        if progress:
            progress(f"crops {min(k + bs, len(crops))}/{len(crops)}")
    if clips:
        from ..pipeline import analyze

        for n, i in enumerate(clips):
            res = analyze(str(i.path), backend, settings)
            fs = [f.fake_score for fr in res.frames for f in fr.faces if f.state == "ok" and f.fake_score is not None]
            results.append(
                ItemResult(
                    str(i.path),
                    i.label,
                    res.verdict.fake_score,
                    [float(v) for v in fs],
                    faces_on=sum(1 for fr in res.frames if fr.faces),
                    frames=len(res.frames),
                )
            )
            if progress:
                progress(f"clips {n + 1}/{len(clips)}: {i.path.name} score {res.verdict.fake_score}")
    labelled = [r for r in results if r.label is not None and r.score is not None]
    metrics: dict[str, Any] = {}
    level = "video" if clips and not crops else ("crop" if crops and not clips else "item")
    metrics.update(_binary_metrics([r.score for r in labelled], [r.label for r in labelled], t, level))  # type: ignore[misc]
    fr_s = [s for r in labelled for s in r.frame_scores]
    fr_y = [int(r.label or 0) for r in labelled for _ in r.frame_scores]  # labelled: never None
    if clips:
        metrics.update(_binary_metrics(fr_s, fr_y, t, "frame"))
    ious = _finite([r.iou for r in results if r.label == 1])
    metrics["mask_iou_mean"] = float(np.mean(ious)) if ious else None
    metrics["mask_iou_n"] = len(ious)
    areas = _finite([r.mask_area for r in results if r.label == 0])
    metrics["mask_area_real_mean"] = float(np.mean(areas)) if areas else None
    unl = _finite([r.score for r in results if r.label is None])
    if unl:
        metrics["unlabelled_n"] = len(unl)
        metrics["unlabelled_mean_score"] = float(np.mean(unl))
    bands: Sequence[ScoreBand] = info.bands
    table = calibration_table(fr_s, fr_y, bands) if fr_s and bands else []
    return EvalReport(info.name, info.sha256, getattr(backend, "name", "?"), t, results, metrics, table)


def family_of(method: str) -> str:
    """Manipulation family from a manifest's ``method`` text (the validation set's manifest.json wording)."""
    m = method.lower()
    if "face swap" in m:
        return "face swap"
    if "lip-sync" in m or "lip sync" in m:
        return "lip-sync"
    if "talking head" in m:
        return "generated talking head"
    return m or "unknown"


def read_families(manifest: str | Path) -> dict[str, str]:
    """File name -> family for the fakes of a ``manifest.json`` (``files``: [{path, label, method}])."""
    try:
        data = json.loads(Path(manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"The families manifest {manifest} could not be read ({exc}).") from exc
    files = data.get("files", []) if isinstance(data, dict) else data
    return {Path(str(f["path"])).name: family_of(str(f.get("method", ""))) for f in files
            if str(f.get("label", "")).lower() == "fake"}


def add_family_metrics(rep: EvalReport, families: dict[str, str]) -> None:
    """Per-family AUC (that family's fakes against every real item), and real items at/above the threshold.

    Why: a pooled AUC hides a family the model cannot see (fully generated talking heads); each family
    is reported on its own, with the same real items as the negatives.
    """
    lab = [r for r in rep.items if r.label is not None and r.score is not None]
    reals = [float(r.score) for r in lab if r.label == 0]  # type: ignore[arg-type]
    rep.metrics["real_n"] = len(reals)
    rep.metrics["real_at_or_above_threshold"] = sum(1 for v in reals if v >= rep.threshold)
    groups: dict[str, list[float]] = {}
    for r in lab:
        if r.label == 1:
            groups.setdefault(families.get(Path(r.path).name, "unknown"), []).append(float(r.score))  # type: ignore[arg-type]
    for fam, fakes in sorted(groups.items()):
        y = [0] * len(reals) + [1] * len(fakes)
        rep.metrics[f"family[{fam}]_n"] = len(fakes)
        rep.metrics[f"family[{fam}]_auc"] = auc(reals + fakes, y) if reals else None
        _add_interval(rep.metrics, f"family[{fam}]_auc", reals, fakes)
        rep.metrics[f"family[{fam}]_called_fake"] = sum(1 for v in fakes if v >= rep.threshold)


def read_report(path: str | Path) -> tuple[str, str, dict[str, tuple[int, float]]]:
    """(model name, model SHA-256, :func:`item_key` -> (label, score)) of a report written by ``--json``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = data["items"]
        scores = {item_key(str(i["path"])): (int(i["label"]), float(i["score"])) for i in items
                  if i.get("label") is not None and i.get("score") is not None}
        return str(data.get("model", "?")), str(data.get("model_sha256", "")), scores
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a report written by `deepyn evaluate --json` ({exc}).") from exc


def add_comparison(rep: EvalReport, other: str | Path, families: dict[str, str] | None = None) -> None:
    """``rep.against``: AUC of this report minus the ``other`` report's, with paired intervals, overall
    and per family (items matched by file name; only items both scored count)."""
    name, sha, theirs = read_report(other)
    mine = rep.scores_by_name()
    rows: dict[str, Any] = {}
    overall = paired_auc_difference(mine, theirs)
    if overall is not None:
        rows["all"] = overall
    reals = [n for n, (lab, _) in mine.items() if lab == 0]
    fams = families or {}
    for fam in sorted(set(fams.values())):
        names = reals + [n for n, (lab, _) in mine.items() if lab == 1 and fams.get(Path(n).name) == fam]
        d = paired_auc_difference(mine, theirs, names)
        if d is not None:
            rows[fam] = d
    if not rows:
        raise InputError(f"{other} shares too few scored real and fake items with this evaluation to compare.")
    rep.against = {"report": str(other), "model": name, "model_sha256": sha, "delta": rows}


def format_report(rep: EvalReport) -> str:
    """Human-readable summary for the terminal."""
    lines = [f"model {rep.model} ({rep.model_sha256[:12]}), backend {rep.backend}, threshold {rep.threshold:.4f}"]
    for k, v in rep.metrics.items():
        if v is None or (k.endswith("_n") and v == 0 and k != "mask_iou_n") or k.endswith(("_ci95_lo", "_ci95_hi")):
            continue  # undefined here (e.g. no labelled clips): say nothing rather than a fake number
        line = f"  {k:24s} {v:.4f}" if isinstance(v, float) else f"  {k:24s} {v}"
        lo, hi = rep.metrics.get(f"{k}_ci95_lo"), rep.metrics.get(f"{k}_ci95_hi")
        if isinstance(lo, float) and isinstance(hi, float):
            line += f"  (95% bootstrap interval {lo:.2f}-{hi:.2f})"
        lines.append(line)
    if rep.table:
        lines.append("  calibration (per frame/crop): band [lo, hi)  n  fakes  observed fake rate")
        for row in rep.table:
            rate = row["fake_rate"]
            rate_s = "  —" if not (isinstance(rate, float) and math.isfinite(rate)) else f"{rate:.3f}"
            lines.append(f"    {row['band']:14s} [{row['lo']:.3f}, {row['hi']:.3f})  {row['n']:5d}  {row['n_fake']:5d}  {rate_s}")
    if rep.against:
        lines.append(f"  against {rep.against['model']} ({str(rep.against['model_sha256'])[:12]}), same items, "
                     "AUC difference (this - that) with its 95% paired bootstrap interval:")
        for key, d in rep.against["delta"].items():
            lines.append(f"    {key:22s} {d['delta_auc']:+.4f}  ({d['ci95_lo']:+.2f} to {d['ci95_hi']:+.2f}; "
                         f"{d['n_real']} real, {d['n_fake']} fake)")
    unl = [r for r in rep.items if r.label is None]
    for r in unl:
        sc = "—" if r.score is None else f"{r.score:.4f}"
        extra = f", frames {r.frames}, faces on {r.faces_on}" if r.frames else ""
        lines.append(f"  {Path(r.path).name}: score {sc}{extra}")
    return "\n".join(lines)


def write_sbi_val_folder(
    data_dir: str | Path,
    out_dir: str | Path,
    work_dir: str | Path,
    *,
    val_ids: Sequence[str] | None = None,
    n_val: int = 5,
    seed: int = 0,
    frames_per_clip: int = 60,
    exclude_flagged: bool = True,
    val_seed: int = 1234,
) -> int:
    """Write the identity-held-out SBI validation set as PNGs (real/, fake/, masks/) for ``deepyn evaluate``.

    Uses the same split, crops and generator seed as ``deepyn train``, so the set is the one the model
    was calibrated on. Returns the number of crops written.
    """
    from .data import (
        DEFAULT_VAL_IDS,
        flagged_in_manifest,
        identity_of,
        list_clips,
        load_or_extract,
        split_identities,
    )
    from .sbi import mask_target
    from .train import make_val_set

    clips = list_clips(data_dir)
    flagged = flagged_in_manifest(data_dir) if exclude_flagged else set()
    used = [c for c in clips if identity_of(c) not in flagged]
    if val_ids is None and set(DEFAULT_VAL_IDS) <= {identity_of(c) for c in used}:
        val_ids = DEFAULT_VAL_IDS
    _, v_ids = split_identities([identity_of(c) for c in used], val_ids, n_val=n_val, seed=seed)
    by_id = {identity_of(c): c for c in used}
    crops = load_or_extract([by_id[i] for i in v_ids], Path(work_dir) / "crops", frames_per_clip)
    imgs, labels, alphas, ids = make_val_set([crops[i] for i in v_ids], seed=val_seed)
    out = Path(out_dir)
    for sub in ("real", "fake", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    counter: dict[tuple[str, int], int] = {}
    for img, lab, a, ident in zip(imgs, labels, alphas, ids):
        k = counter.get((ident, int(lab)), 0)
        counter[(ident, int(lab))] = k + 1
        stem = f"{ident}_{k:03d}"
        sub = "fake" if lab == 1 else "real"
        cv2.imwrite(str(out / sub / f"{stem}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if lab == 1:
            cv2.imwrite(str(out / "masks" / f"{stem}.png"), (mask_target(a) * 255).astype(np.uint8))
    return len(imgs)
