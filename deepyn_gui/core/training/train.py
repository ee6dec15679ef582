"""Training loop for the default U-YNet: self-blended pairs, 0.5 x mask CE + 0.5 x class BCE, AdamW.

Each batch holds ``pairs`` real crops and their self-blends (as in the SBI paper: the pair differs only
by the blend, so the blend is the only thing the classifier can learn). Every random draw comes from a
generator seeded by (seed, epoch, crop index), so a run resumed from a checkpoint continues exactly
as an uninterrupted one would, and the same seed reproduces the same model on the same machine.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, ModelError
from ..results import CROP_SIZE
from .augment import nuisance
from .calibrate import auc, calibrate
from .data import IdentityCrops, refuse_validation_data
from .sbi import mask_target, self_blend


@dataclass
class TrainConfig:
    width: int = 8
    epochs: int = 8
    pairs: int = 4  # real crops per batch; each adds its self-blend, so batch = 2 * pairs
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    seed: int = 0
    threads: int = 2
    steps_per_epoch: int | None = None  # None: one pass over the training crops
    mask_weight: float = 0.5
    class_weight: float = 0.5


@dataclass
class Sample:
    image: np.ndarray  # HxWx3 uint8
    mask: np.ndarray  # HxW int64 target (1 = manipulated)
    alpha: np.ndarray  # HxW float32 blend weight (0 for real)
    fake: int  # 1 = fake


@dataclass
class CropPool:
    """Training crops flattened across identities, with their face boxes."""

    crops: np.ndarray
    boxes: np.ndarray
    identities: list[str] = field(default_factory=list)

    @classmethod
    def from_identities(cls, items: Sequence[IdentityCrops]) -> CropPool:
        items = [i for i in items if len(i)]
        if not items:
            raise InputError("No face crops are available for training (no faces were found in the clips).")
        return cls(
            np.concatenate([i.crops for i in items]),
            np.concatenate([i.boxes for i in items]).astype(np.float32),
            [i.identity for i in items for _ in range(len(i))],
        )

    def __len__(self) -> int:
        return int(self.crops.shape[0])


def sample_pair(crop: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> tuple[Sample, Sample]:
    """A real sample and its self-blend from one crop; both go through the same nuisance chain."""
    img, b = crop, box.copy()
    if rng.random() < 0.5:  # horizontal flip before anything, so the pair stays aligned
        img = np.ascontiguousarray(img[:, ::-1])
        b[0] = img.shape[1] - b[0] - b[2]
    sb = self_blend(img, b, rng)
    h, w = img.shape[:2]
    zeros = np.zeros((h, w), np.float32)
    real = Sample(nuisance(img, rng), np.zeros((h, w), np.int64), zeros, 0)
    fake = Sample(nuisance(sb.image, rng), mask_target(sb.alpha), sb.alpha, 1)
    return real, fake


def to_tensor(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 NHWC RGB -> float NCHW in [0, 1]: the model's input convention (no mean/std)."""
    arr = np.ascontiguousarray(np.stack(list(images)) if not isinstance(images, np.ndarray) else images)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


def sbi_loss(
    mask_logits: torch.Tensor, class_logit: torch.Tensor, mask_t: torch.Tensor, fake_t: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """0.5 x pixel cross-entropy on the mask + 0.5 x BCE on P(real) (computed on the logit for stability)."""
    ce = F.cross_entropy(mask_logits, mask_t)
    bce = F.binary_cross_entropy_with_logits(class_logit[:, 0], 1.0 - fake_t)  # target 1 = real
    return cfg.mask_weight * ce + cfg.class_weight * bce, ce, bce


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def make_val_set(
    items: Sequence[IdentityCrops], seed: int = 1234, per_identity: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A fixed validation set from held-out identities: (images, fake labels, blend alphas, identities).

    Each crop gives a real sample and its self-blend, with the same nuisances as training.
    """
    imgs: list[np.ndarray] = []
    labels: list[int] = []
    alphas: list[np.ndarray] = []
    ids: list[str] = []
    for k, ic in enumerate(items):
        idx = np.arange(len(ic))
        if per_identity is not None and len(idx) > per_identity:
            idx = np.unique(np.linspace(0, len(ic) - 1, per_identity).round().astype(int))
        for i in idx:
            real, fake = sample_pair(ic.crops[i], ic.boxes[i], _rng(seed, k, int(i)))
            for s in (real, fake):
                imgs.append(s.image)
                labels.append(s.fake)
                alphas.append(s.alpha)
                ids.append(ic.identity)
    if not imgs:
        empty = np.zeros((0, CROP_SIZE, CROP_SIZE), np.float32)
        return np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8), np.zeros((0,), np.int64), empty, ids
    return np.stack(imgs), np.asarray(labels, np.int64), np.stack(alphas), ids


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks; NaN when both are empty."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else float("nan")


def warmup_cosine(opt: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> Any:
    """Linear warm-up, then a cosine decay to 2 % of each group's learning rate (both recipes use it)."""

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        p = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, p)))

    return torch.optim.lr_scheduler.LambdaLR(opt, lr_at)


def restore_training(
    state: dict[str, object], model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any
) -> tuple[int, list[dict[str, float]]]:
    """Load model, optimiser and schedule from a checkpoint state; return (epochs done, history)."""
    model.load_state_dict(state["model"])  # type: ignore[arg-type]
    opt.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
    sched.load_state_dict(state["scheduler"])
    history: list[dict[str, float]] = json.loads(str(state.get("history", "[]")))
    return int(state["epoch"]), history  # type: ignore[call-overload]


@torch.no_grad()
def predict_torch(model: torch.nn.Module, images: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(fake_score [N], mask_prob [N,H,W]) from a torch U-YNet in eval mode."""
    was = model.training
    model.eval()
    scores, masks = [], []
    for i in range(0, len(images), batch):
        ml, cl = model.forward_logits(to_tensor(images[i : i + batch]))  # type: ignore[operator]
        scores.append(torch.sigmoid(-cl[:, 0]).numpy())
        masks.append(torch.softmax(ml, dim=1)[:, 1].numpy())
    model.train(was)
    if not scores:
        return np.zeros((0,), np.float32), np.zeros((0, CROP_SIZE, CROP_SIZE), np.float32)
    return np.concatenate(scores), np.concatenate(masks)


def val_metrics(scores: np.ndarray, masks: np.ndarray, labels: np.ndarray, alphas: np.ndarray) -> dict[str, float]:
    """AUC, accuracy at 0.5, mean IoU of (mask > 0.5) with the blend target on fakes, false-alarm area on reals."""
    fake = labels == 1
    ious = [mask_iou(masks[i] > 0.5, mask_target(alphas[i]) > 0) for i in np.flatnonzero(fake)]
    real_area = [float((masks[i] > 0.5).mean()) for i in np.flatnonzero(~fake)]
    return {
        "auc": auc(scores, labels),
        "acc@0.5": float(((scores >= 0.5) == fake).mean()) if len(scores) else float("nan"),
        "mask_iou_fake": float(np.nanmean(ious)) if ious else float("nan"),
        "mask_area_real": float(np.mean(real_area)) if real_area else float("nan"),
        "mean_score_real": float(scores[~fake].mean()) if (~fake).any() else float("nan"),
        "mean_score_fake": float(scores[fake].mean()) if fake.any() else float("nan"),
    }


def _atomic_torch_save(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def optimiser_step(loss: torch.Tensor, opt: torch.optim.Optimizer, sched: Any, epoch: int, step: int) -> None:
    """One update of either recipe; a non-finite loss stops training with a clear error instead of NaN weights."""
    if not torch.isfinite(loss):
        raise ModelError(f"Training diverged (loss {loss.item()}) at epoch {epoch + 1}, step {step}.")
    opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    opt.step()
    sched.step()


def export_model(
    model: torch.nn.Module, out: str | Path, meta: dict[str, object], int8_out: str | Path | None,
    real_crops: np.ndarray, int8_crops: int, log: Callable[[str], None],
) -> None:
    """Write the fp32 ONNX file and, if asked, the int8 copy calibrated on evenly spread real training crops
    (both recipes ship their models this way)."""
    from ..model.export import export_onnx

    export_onnx(model, out, meta)  # type: ignore[arg-type]
    if int8_out is not None:
        from .quantize import quantize_int8

        n = len(real_crops)
        pick = np.unique(np.linspace(0, n - 1, min(int8_crops, n)).round().astype(int))
        quantize_int8(out, int8_out, real_crops[pick])
        log(f"wrote the int8 model {int8_out} (calibrated on {len(pick)} real training crops)")


def load_checkpoint_state(path: str | Path) -> dict[str, object]:
    """A training checkpoint (weights_only: a checkpoint is data, never code)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"The training checkpoint {path} could not be loaded ({exc}).") from exc
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise ModelError(f"{path} is not a DeepYN training checkpoint.")
    return state


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict[str, float]]
    seconds: float
    steps: int


def train(
    pool: CropPool,
    cfg: TrainConfig,
    ckpt_dir: str | Path,
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train a U-YNet on ``pool``; a checkpoint ``epoch_NNN.pt`` (+ ``last.pt``) is written after each
    epoch into ``ckpt_dir``; ``resume`` continues from one. ``val`` = (images, labels, alphas)."""
    from ..model.uynet import UYNet

    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    ckpt = Path(ckpt_dir)
    ckpt.mkdir(parents=True, exist_ok=True)
    model = UYNet(cfg.width)
    params = [p for n, p in model.named_parameters() if not n.startswith("down5.")]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(pool)
    steps_per_epoch = cfg.steps_per_epoch or max(1, n // cfg.pairs)
    total = steps_per_epoch * cfg.epochs

    sched = warmup_cosine(opt, cfg.warmup_steps, total)
    start_epoch = 0
    history: list[dict[str, float]] = []
    if resume is not None:
        state = load_checkpoint_state(resume)
        if int(state.get("width", cfg.width)) != cfg.width:  # type: ignore[call-overload]
            raise ModelError(f"The checkpoint {resume} is width {state.get('width')}, not {cfg.width}.")
        start_epoch, history = restore_training(state, model, opt, sched)
        log(f"resumed from {resume} after epoch {start_epoch}")
    model.train()
    t0 = time.perf_counter()
    steps = 0
    for epoch in range(start_epoch, cfg.epochs):
        order = _rng(cfg.seed, 0, epoch).permutation(n)
        it = range(steps_per_epoch)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(it, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", dynamic_ncols=True)
            it = bar
        sums = {"loss": 0.0, "ce": 0.0, "bce": 0.0}
        for step in it:
            imgs: list[np.ndarray] = []
            masks: list[np.ndarray] = []
            fakes: list[int] = []
            for j in range(cfg.pairs):
                k = int(order[(step * cfg.pairs + j) % n])
                real, fake = sample_pair(pool.crops[k], pool.boxes[k], _rng(cfg.seed, 1, epoch, k))
                for s in (real, fake):
                    imgs.append(s.image)
                    masks.append(s.mask)
                    fakes.append(s.fake)
            x = to_tensor(imgs)
            mt = torch.from_numpy(np.stack(masks))
            ft = torch.tensor(fakes, dtype=torch.float32)
            ml, cl = model.forward_logits(x)
            loss, ce, bce = sbi_loss(ml, cl, mt, ft, cfg)
            optimiser_step(loss, opt, sched, epoch, step)
            steps += 1
            sums["loss"] += loss.item()
            sums["ce"] += ce.item()
            sums["bce"] += bce.item()
            if bar is not None:
                bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.3f}", lr=f"{sched.get_last_lr()[0]:.1e}")
        rec: dict[str, float] = {"epoch": float(epoch + 1), "seconds": time.perf_counter() - t0}
        rec.update({k: v / steps_per_epoch for k, v in sums.items()})
        if val is not None and len(val[0]):
            scores, mprob = predict_torch(model, val[0])
            rec.update({f"val_{k}": v for k, v in val_metrics(scores, mprob, val[1], val[2]).items()})
        history.append(rec)
        log(json.dumps(rec))
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": epoch + 1,
            "width": cfg.width,
            "seed": cfg.seed,
            "config": json.dumps(asdict(cfg)),
            "history": json.dumps(history),
        }
        _atomic_torch_save(state, ckpt / f"epoch_{epoch + 1:03d}.pt")
        _atomic_torch_save(state, ckpt / "last.pt")
    model.eval()
    return TrainResult(model, history, time.perf_counter() - t0, steps)


def calibrate_model(model: torch.nn.Module, val: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, object]:
    """Threshold, real_below and bands from the model's scores on the validation set."""
    scores, _ = predict_torch(model, val[0])
    return calibration_dict(scores, val[1])


def calibration_dict(scores: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Threshold, real_below, bands and table of :func:`.calibrate.calibrate`, as stored in the model."""
    res = calibrate(scores, labels)
    return {
        "threshold": res.threshold,
        "real_below": res.real_below,
        "bands": [[b.lo, b.hi, b.name, b.meaning] for b in res.bands],
        "table": res.table,
    }


DEFAULT_MODEL_NAME = "uynet-w{width}-sbi"
MODEL_VERSION = "1.0"


@dataclass
class TrainingRun:
    """What ``deepyn train`` did: the split, the history, calibration and the exported model."""

    out: Path
    train_ids: list[str]
    val_ids: list[str]
    excluded_ids: list[str]
    n_train_crops: int
    n_val_crops: int
    history: list[dict[str, float]]
    calibration: dict[str, object]
    seconds: float

    def summary(self) -> dict[str, object]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def train_from_clips(
    data_dir: str | Path,
    out: str | Path,
    cfg: TrainConfig,
    work_dir: str | Path,
    *,
    val_ids: Sequence[str] | None = None,
    n_val: int = 5,
    exclude_flagged: bool = True,
    frames_per_clip: int = 60,
    resume: str | Path | None = None,
    val_per_identity_during: int | None = 20,
    progress: bool = True,
    log: Callable[[str], None] = print,
    name: str | None = None,
    int8_out: str | Path | None = None,
    int8_crops: int = 128,
) -> TrainingRun:
    """Extract (or load cached) crops, split by identity, train, calibrate on validation, export ONNX.

    Crops are cached under ``work_dir/crops``; checkpoints go to ``work_dir/ckpt-w{width}-s{seed}``.
    """
    refuse_validation_data(data_dir)
    import cv2

    from ..model.metadata import calibration_json
    from .data import (
        DEFAULT_VAL_IDS,
        flagged_in_manifest,
        identity_of,
        list_clips,
        load_or_extract,
        split_identities,
    )

    cv2.setNumThreads(1)  # cv2's own pool would fight torch for the two cores
    t0 = time.perf_counter()
    work = Path(work_dir)
    clips = list_clips(data_dir)
    flagged = flagged_in_manifest(data_dir) if exclude_flagged else set()
    used = [c for c in clips if identity_of(c) not in flagged]
    excluded = sorted(identity_of(c) for c in clips if identity_of(c) in flagged)
    if val_ids is None and set(DEFAULT_VAL_IDS) <= {identity_of(c) for c in used}:
        val_ids = DEFAULT_VAL_IDS
    train_ids, v_ids = split_identities([identity_of(c) for c in used], val_ids, n_val=n_val, seed=cfg.seed)
    if not train_ids:
        raise InputError("Training needs at least one identity outside the validation split.")
    log(f"identities: {len(train_ids)} train, {len(v_ids)} val, {len(excluded)} excluded (flagged)")
    crops = load_or_extract(used, work / "crops", frames_per_clip, progress=progress)
    pool = CropPool.from_identities([crops[i] for i in train_ids])
    val_items = [crops[i] for i in v_ids if len(crops[i])]
    val_full = make_val_set(val_items) if val_items else None
    val_quick = make_val_set(val_items, per_identity=val_per_identity_during) if val_items else None
    log(f"crops: {len(pool)} train, {sum(len(i) for i in val_items)} val")
    ckpt_dir = work / f"ckpt-w{cfg.width}-s{cfg.seed}"
    res = train(
        pool,
        cfg,
        ckpt_dir,
        val=(val_quick[0], val_quick[1], val_quick[2]) if val_quick else None,
        resume=resume,
        progress=progress,
        log=log,
    )
    if val_full is not None and len(set(val_full[1].tolist())) == 2:
        cal = calibrate_model(res.model, (val_full[0], val_full[1], val_full[2]))
    else:
        cal = {}
        log("warning: no validation identities, so the model is exported without calibration")
    meta: dict[str, object] = {
        "deepyn.name": name or DEFAULT_MODEL_NAME.format(width=cfg.width),
        "deepyn.version": MODEL_VERSION,
        "deepyn.trained": "true",
        "deepyn.seed": str(cfg.seed),
        "deepyn.training": json.dumps(
            {
                "method": "self-blended images (Shiohara & Yamasaki, CVPR 2022), real faces only",
                "loss": "0.5 * mask cross-entropy + 0.5 * class BCE",
                "config": asdict(cfg),
                "frames_per_clip": frames_per_clip,
                "train_identities": train_ids,
                "val_identities": v_ids,
                "excluded_identities": excluded,
                "train_crops": len(pool),
            }
        ),
    }
    if cal:
        meta["deepyn.calibration"] = calibration_json(
            float(cal["threshold"]), cal["bands"], float(cal["real_below"])  # type: ignore[arg-type]
        )
    export_model(res.model, out, meta, int8_out, pool.crops, int8_crops, log)
    run = TrainingRun(
        Path(out),
        train_ids,
        v_ids,
        excluded,
        len(pool),
        sum(len(i) for i in val_items),
        res.history,
        cal,
        time.perf_counter() - t0,
    )
    (work / f"train-w{cfg.width}-s{cfg.seed}.json").write_text(json.dumps(run.summary(), indent=1, default=str))
    return run
