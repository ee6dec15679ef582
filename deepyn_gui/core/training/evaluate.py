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

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "backend": self.backend,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "calibration_table": self.table,
            "items": [vars(i) for i in self.items],
        }


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
    rng = np.random.default_rng(seed)
    values = np.empty(reps)
    chunk = max(1, 20_000_000 // (len(neg) * len(pos)))
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        nb = neg[rng.integers(0, len(neg), (n, len(neg)))][:, None, :]
        pb = pos[rng.integers(0, len(pos), (n, len(pos)))][:, :, None]
        values[start : start + n] = (pb > nb).mean(axis=(1, 2)) + 0.5 * (pb == nb).mean(axis=(1, 2))
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


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
    """Manipulation family from a manifest's ``method`` text (deepfakes-dev/manifest.json wording)."""
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
