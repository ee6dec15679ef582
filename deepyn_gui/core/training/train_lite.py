"""Training of the pretrained-encoder U-YNet ("lite0"): self-blends AND generated faces.

Why two kinds of fake: self-blends teach the blending seam (face swap, lip-sync), but a face generated
whole has no seam; a feasibility run trained on self-blends alone called fully generated talking heads
confidently real (AUC 0.29). So every batch holds ``pairs`` real crops with their landmark-hull
self-blends, plus ``gen`` generated faces (generator drawn uniformly first, so no generator dominates)
and as many further real crops (classes stay balanced). The mask head learns from reals and
self-blends only: a generated face has no ground-truth mask, and none is invented.

Splits: real identities (one clip or one photo file = one group) and whole generators are held out;
the held-out split gives the self-blend AUC on unseen identities, the cross-generator AUC and the
calibration (threshold and bands). The validation clips are never read here (``data.refuse_validation_data``).
Every random draw is seeded by (seed, epoch, step), so a resumed run continues as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, ModelError
from ..model.uynet_lite import VARIANTS
from .adversary import IGNORED, PooledFeatures, SourceAdversary, reversal_weight, video_sources
from .augment import (
    head_region,
    lowres_codec_batch,
    match_border,
    match_quality,
    nuisance,
    shuffle_tiles,
    swap_background,
)
from .calibrate import auc
from .data import DEFAULT_VAL_IDS, IMAGE_EXTS, refuse_validation_data
from .sbi import mask_target, self_blend
from .train import (
    TrainResult,
    _atomic_torch_save,
    calibration_dict,
    export_model,
    load_checkpoint_state,
    optimiser_step,
    predict_torch,
    restore_training,
    to_tensor,
    warmup_cosine,
)

#: Generators held out of training (whole folders of fakes-train): one per family, so the reported
#: figure is cross-generator. EDTalk (talking head), SimSwap and E4S (face swap), StyleGAN (synthetic).
DEFAULT_HOLDOUT_GENERATORS: tuple[str, ...] = ("edtalk", "simswap", "e4s", "stylegan")
#: Share of real-faces-2 files (by a hash of the name, so the split is stable) held out as unseen people.
REAL2_VAL_SHARE = 0.15


@dataclass
class LiteConfig:
    epochs: int = 8
    steps_per_epoch: int = 150
    pairs: int = 5  # real crops with their self-blends per batch
    gen: int = 3  # generated faces per batch (and as many extra real crops)
    lr: float = 1e-3  # decoder and heads
    encoder_lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 60
    freeze_blocks: int = 3  # stem + this many MBConv blocks stay frozen (stride <= 4: generic edges)
    mouth_prob: float = 0.25  # share of self-blends that cover only the mouth region (lip-sync)
    mask_weight: float = 0.5
    quality_match: float = 0.0  # share of real crops sharpened / generated crops softened (augment.match_quality)
    border_match: float = 0.0  # share of generated crops given a real crop's black edge bands (augment.match_border)
    lowres_codec: float = 0.0  # share of all crops re-coded as a small face in a compressed video (augment.lowres_codec)
    #: the same, on real crops and self-blends only (never generated faces): the generated faces are nearly all
    #: low-resolution compressed video, so this gives that look to the other side too
    lowres_codec_not_generated: float = 0.0
    gen_head: bool = False  # a second class head for generated faces (3-way softmax; LiteUYNet.add_gen_head)
    #: share of all crops (both classes) shown in front of another random crop's background (augment.swap_background)
    bg_swap: float = 0.0
    #: share of generated faces, and of the real crops drawn beside them, shown as shuffled tiles (augment.shuffle_tiles)
    gen_tiles: float = 0.0
    #: train on only this many of the training real videos (the first by SHA-256 of their names; photos all kept)
    real_videos_kept: int | None = None
    #: weight of the source adversary's reversed gradient (adversary.py): > 0 trains the encoder to forget which
    #: training real video a crop came from (ramped from 0 over training); 0 = off
    source_adversary: float = 0.0
    variant: str = "lite0"  # the EfficientNet-Lite encoder (uynet_lite.VARIANTS); lite2 tried as a diagnostic
    balance_real_groups: bool = False  # draw a real group (clip or photo file) first, then a crop of it
    photo_share: float | None = None  # draw real crops from photos with this probability (None: by crop count)
    seed: int = 0
    threads: int = 2


@dataclass
class Pool:
    """Crops with their group (identity or generator), box and landmarks; ``family`` for fakes."""

    crops: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    groups: list[str]
    families: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    def subset(self, keep: Sequence[bool]) -> Pool:
        k = np.asarray(keep, bool)
        idx = np.flatnonzero(k)
        return Pool(self.crops[idx], self.boxes[idx], self.landmarks[idx], [self.groups[i] for i in idx],
                     [self.families[i] for i in idx] if self.families else [])


def _concat(parts: Sequence[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]) -> Pool:
    parts = [p for p in parts if len(p[2])]
    if not parts:
        raise InputError("No face crops were found for this pool.")
    return Pool(
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]).astype(np.float32),
        np.concatenate([p[4] for p in parts]).astype(np.float32),
        [p[0] for p in parts for _ in range(len(p[2]))],
        [p[1] for p in parts for _ in range(len(p[2]))],
    )


def is_real2_val(group: str) -> bool:
    """Stable held-out choice for a real-faces-2 file (hash of its stem)."""
    h = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < REAL2_VAL_SHARE


def build_pools(
    real_dirs: Sequence[str | Path],
    fakes_dir: str | Path,
    work_dir: str | Path,
    yunet: str | Path,
    holdout: Sequence[str] = DEFAULT_HOLDOUT_GENERATORS,
    real_frames: int = 40,
    fake_frames: int = 24,
    log: Callable[[str], None] = print,
    extra_val_real: Sequence[str] = (),
) -> dict[str, object]:
    """Extract (or read cached) crops and split them: real train/val by identity, fakes by generator.

    ``extra_val_real``: more real groups (clip stems) held out for validation and calibration, beside the
    standard split (e.g. :data:`EXTRA_VAL_VIDEOS_H16`)."""
    import cv2

    from .pool import CropLandmarker, collect, fake_sources, real_sources

    cv2.setNumThreads(1)
    cache = Path(work_dir) / "pool"
    lm = CropLandmarker(yunet)
    fsrc, skipped = fake_sources(fakes_dir)
    from .data import flagged_in_manifest

    flagged = set().union(*(flagged_in_manifest(d) for d in real_dirs))  # super-resolved "real" clips
    rsrc = [s for s in real_sources(real_dirs) if s.group not in flagged]
    log(f"sources: {len(rsrc)} real files, {len(fsrc)} fake files ({len(skipped)} mixed grids skipped)")
    reals = collect(rsrc, cache, lm, real_frames, log)
    fakes = collect(fsrc, cache, lm, fake_frames, log)
    real = _concat([(s.group, "real-photo" if s.path.suffix.lower() in IMAGE_EXTS else "real-video",
                     p.crops, p.boxes, p.landmarks) for s, p in reals])
    fake = _concat([(s.group, s.family, p.crops, p.boxes, p.landmarks) for s, p in fakes])
    first = {s.group for s, _ in reals if s.all_faces is False}  # clips of the first folder: one identity each
    extra = set(extra_val_real)
    val_real = [g in extra or (g in DEFAULT_VAL_IDS if g in first else is_real2_val(g)) for g in real.groups]
    ho = set(holdout)
    val_fake = [g in ho for g in fake.groups]
    return {
        "real_train": real.subset([not v for v in val_real]),
        "real_val": real.subset(val_real),
        "fake_train": fake.subset([not v for v in val_fake]),
        "fake_val": fake.subset(val_fake),
        "skipped": skipped,
    }


def keep_real_videos(real: Pool, n: int) -> Pool:
    """``real`` with every photo crop and only the crops of ``n`` of its videos: the first ``n`` video groups
    by SHA-256 of their names (a choice blind to any score). Why (a diagnostic): a learning-curve point for
    the number of distinct real video sources."""
    videos = sorted({g for g, f in zip(real.groups, real.families) if f == "real-video"},
                    key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    if not 0 < n <= len(videos):
        raise InputError(f"--real-videos-kept must be between 1 and the {len(videos)} training real videos, got {n}.")
    keep = set(videos[:n])
    return real.subset([f != "real-video" or g in keep for g, f in zip(real.groups, real.families)])


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(list(keys))


def _flip(img: np.ndarray, box: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = img.shape[1]
    b = box.copy()
    b[0] = w - b[0] - b[2]
    m = lm.copy()
    m[:, 0] = w - 1 - m[:, 0]
    m = m[[1, 0, 2, 4, 3]]  # right and left swap under a mirror
    return np.ascontiguousarray(img[:, ::-1]), b, m


def _background_swapper(
    real: Pool, fake: Pool, prob: float, rng: np.random.Generator | None
) -> Callable[[np.ndarray, np.ndarray, bool], np.ndarray]:
    """``swap(img, landmarks, flipped)``: with probability ``prob`` (drawn from ``rng``, its own generator, so
    the rest of a batch is the same with and without it), ``img``'s head in front of the background of a
    random real or generated crop (either pool with equal odds, mirrored half the time); otherwise ``img``.
    ``landmarks`` are of the unmirrored crop; ``flipped`` says whether ``img`` was mirrored since."""
    def swap(img: np.ndarray, landmarks: np.ndarray, flipped: bool) -> np.ndarray:
        if prob <= 0 or rng is None or rng.random() >= prob:
            return img
        head = head_region(landmarks, img.shape[0])
        if head is None:
            return img
        donors = real.crops if (len(fake) == 0 or rng.random() < 0.5) else fake.crops
        donor = donors[int(rng.integers(len(donors)))]
        if rng.random() < 0.5:
            donor = donor[:, ::-1]
        return swap_background(img, head[:, ::-1] if flipped else head, donor)
    return swap


def sample_batch(
    real: Pool, fake: Pool, cfg: LiteConfig, rng: np.random.Generator, bg_rng: np.random.Generator | None = None,
    tile_rng: np.random.Generator | None = None, drawn: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images uint8 [B,224,224,3], mask targets [B,224,224], fake labels [B], has-mask [B]).

    ``drawn``, when given, receives per sample the index in ``real`` of the real crop it was made from
    (a self-blend: its real crop's), or -1 for a generated face; it draws nothing, so batches are unchanged.

    ``bg_rng`` draws the background swaps (``cfg.bg_swap``), before the self-blend, so a real crop and its
    self-blend share the new background. ``tile_rng`` draws the tile shuffles (``cfg.gen_tiles``) of the
    generated faces and of the real crops drawn beside them (never of self-blend pairs)."""
    swap = _background_swapper(real, fake, cfg.bg_swap, bg_rng)

    def tiles(img: np.ndarray) -> np.ndarray:
        if cfg.gen_tiles <= 0 or tile_rng is None or tile_rng.random() >= cfg.gen_tiles:
            return img
        return shuffle_tiles(img, tile_rng)
    imgs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    labels: list[int] = []
    has_mask: list[bool] = []
    zero = np.zeros(real.crops.shape[1:3], np.int64)
    share = cfg.photo_share
    if share is not None:  # a fixed photo / video-frame mix, however many frames the videos gave
        photos = np.flatnonzero(np.asarray(real.families) == "real-photo")
        videos = np.flatnonzero(np.asarray(real.families) != "real-photo")
        if not len(photos) or not len(videos):
            raise InputError("--photo-share needs real photos and real videos in the pool.")

        def real_index() -> int:
            return int(rng.choice(photos if rng.random() < share else videos))
    elif cfg.balance_real_groups:  # every clip or photo file equally likely, however many crops it gave
        groups = sorted(set(real.groups))
        by_group = {g: np.flatnonzero(np.asarray(real.groups) == g) for g in groups}

        def real_index() -> int:
            return int(rng.choice(by_group[groups[int(rng.integers(len(groups)))]]))
    else:
        def real_index() -> int:
            return int(rng.integers(len(real)))
    for _ in range(cfg.pairs):
        k = real_index()
        img, box, lm = real.crops[k], real.boxes[k], real.landmarks[k]
        flipped = rng.random() < 0.5
        if flipped:
            img, box, lm = _flip(img, box, lm)
        img = swap(img, real.landmarks[k], flipped)
        img = match_quality(img, True, cfg.quality_match, rng)
        sb = self_blend(img, box, rng, lm, cfg.mouth_prob)
        imgs += [nuisance(img, rng), nuisance(sb.image, rng)]
        if drawn is not None:
            drawn += [k, k]
        masks += [zero, mask_target(sb.alpha)]
        labels += [0, 1]
        has_mask += [True, True]
    gens = sorted(set(fake.groups))
    by_gen = {g: np.flatnonzero(np.asarray(fake.groups) == g) for g in gens}
    for _ in range(cfg.gen):
        g = gens[int(rng.integers(len(gens)))]
        k = int(rng.choice(by_gen[g]))
        flipped = not rng.random() < 0.5
        img = np.ascontiguousarray(fake.crops[k][:, ::-1]) if flipped else fake.crops[k]
        img = tiles(swap(img, fake.landmarks[k], flipped))
        img = match_border(img, real.crops, cfg.border_match, rng)
        imgs.append(nuisance(match_quality(img, False, cfg.quality_match, rng), rng))
        masks.append(zero)
        labels.append(1)
        has_mask.append(False)
        k = real_index()
        if drawn is not None:
            drawn += [-1, k]
        flipped = not rng.random() < 0.5
        img = np.ascontiguousarray(real.crops[k][:, ::-1]) if flipped else real.crops[k]
        img = tiles(swap(img, real.landmarks[k], flipped))
        imgs.append(nuisance(match_quality(img, True, cfg.quality_match, rng), rng))
        masks.append(zero)
        labels.append(0)
        has_mask.append(True)
    return np.stack(imgs), np.stack(masks), np.asarray(labels, np.int64), np.asarray(has_mask, bool)


def lite_loss(
    mask_logits: torch.Tensor, real_logit: torch.Tensor, mask_t: torch.Tensor, fake_t: torch.Tensor,
    has_mask: torch.Tensor, cfg: LiteConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mask_weight x pixel CE (reals and self-blends only) + class BCE (every sample)."""
    bce = F.binary_cross_entropy_with_logits(real_logit[:, 0], 1.0 - fake_t)
    if bool(has_mask.any()):
        ce = F.cross_entropy(mask_logits[has_mask], mask_t[has_mask])
    else:
        ce = mask_logits.sum() * 0.0
    return cfg.mask_weight * ce + bce, ce, bce


def three_way_loss(
    mask_logits: torch.Tensor, blend_logit: torch.Tensor, gen_logit: torch.Tensor, mask_t: torch.Tensor,
    fake_t: torch.Tensor, has_mask: torch.Tensor, cfg: LiteConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """With a generated head: mask_weight x pixel CE as in :func:`lite_loss` + 3-way class CE over
    (real, self-blend, generated), the real logit fixed at 0. A fake without a mask target is a
    generated face (``sample_batch``), one with a mask a self-blend."""
    target = fake_t.long() + (fake_t.bool() & ~has_mask).long()  # 0 real, 1 self-blend, 2 generated
    logits = torch.stack([torch.zeros_like(blend_logit), blend_logit, gen_logit], dim=1)
    cls = F.cross_entropy(logits, target)
    if bool(has_mask.any()):
        ce = F.cross_entropy(mask_logits[has_mask], mask_t[has_mask])
    else:
        ce = mask_logits.sum() * 0.0
    return cfg.mask_weight * ce + cls, ce, cls


def make_val(real: Pool, fake: Pool, seed: int = 1234, per_group: int = 6) -> dict[str, np.ndarray]:
    """Fixed held-out sets: reals, their self-blends, generated faces (with nuisances, as in training)."""
    imgs_r, imgs_s, alphas, imgs_g, gen_names = [], [], [], [], []
    for gi, g in enumerate(sorted(set(real.groups))):
        idx = np.flatnonzero(np.asarray(real.groups) == g)
        for k in idx[np.unique(np.linspace(0, len(idx) - 1, min(per_group, len(idx))).round().astype(int))]:
            rng = _rng(seed, gi, int(k))
            sb = self_blend(real.crops[k], real.boxes[k], rng, real.landmarks[k], 0.25)
            imgs_r.append(nuisance(real.crops[k], rng))
            imgs_s.append(nuisance(sb.image, rng))
            alphas.append(sb.alpha)
    for gi, g in enumerate(sorted(set(fake.groups))):
        idx = np.flatnonzero(np.asarray(fake.groups) == g)
        for k in idx[np.unique(np.linspace(0, len(idx) - 1, min(40, len(idx))).round().astype(int))]:
            imgs_g.append(nuisance(fake.crops[k], _rng(seed, 99, gi, int(k))))
            gen_names.append(g)
    return {
        "real": np.stack(imgs_r), "sbi": np.stack(imgs_s), "sbi_alpha": np.stack(alphas),
        "gen": np.stack(imgs_g) if imgs_g else np.zeros((0, *real.crops.shape[1:]), np.uint8),
        "gen_names": np.asarray(gen_names),
    }


def scores_of(model: torch.nn.Module, images: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(fake scores [N], mask probabilities [N,H,W]) in eval mode: the same prediction as model 1.0's
    training uses (:func:`.train.predict_torch`), at a larger batch."""
    return predict_torch(model, images, batch=batch)


def val_figures(model: torch.nn.Module, val: dict[str, np.ndarray]) -> dict[str, float]:
    """Self-blend AUC on unseen identities, held-out-generator AUC (vs the same unseen reals), mask IoU."""
    sr, mr = scores_of(model, val["real"])
    ss, ms = scores_of(model, val["sbi"])
    out: dict[str, float] = {
        "sbi_auc": auc(np.r_[sr, ss], np.r_[np.zeros(len(sr)), np.ones(len(ss))]),
        "mean_real": float(sr.mean()),
        "mean_sbi": float(ss.mean()),
    }
    t = mask_target(val["sbi_alpha"]) > 0
    p = ms > 0.5
    inter = np.logical_and(p, t).sum(axis=(1, 2))
    union = np.logical_or(p, t).sum(axis=(1, 2))
    out["mask_iou_sbi"] = float(np.mean(inter[union > 0] / union[union > 0]))
    out["mask_area_real"] = float((mr > 0.5).mean())
    if len(val["gen"]):
        sg, _ = scores_of(model, val["gen"])
        out["heldout_gen_auc"] = auc(np.r_[sr, sg], np.r_[np.zeros(len(sr)), np.ones(len(sg))])
        out["mean_gen"] = float(sg.mean())
        for g in sorted(set(val["gen_names"].tolist())):
            sel = val["gen_names"] == g
            out[f"heldout_gen_auc[{g}]"] = auc(np.r_[sr, sg[sel]], np.r_[np.zeros(len(sr)), np.ones(int(sel.sum()))])
    return out


def flag_rates(scores: np.ndarray, families: Sequence[str], threshold: float, top: float) -> dict[str, float]:
    """Share of real crops at or above ``threshold`` and ``top`` (the top band's start), per family
    (``real-photo``, ``real-video``) and for all of them."""
    fam = np.asarray(families)
    out: dict[str, float] = {}
    for name, sel in [("all", np.ones(len(scores), bool))] + [(f, fam == f) for f in sorted(set(fam.tolist()))]:
        if sel.any():
            out[f"{name}_at_threshold"] = float((scores[sel] >= threshold).mean())
            out[f"{name}_at_top_band"] = float((scores[sel] >= top).mean())
            out[f"{name}_crops"] = float(sel.sum())
    return out


def heldout_real_flagged(model: torch.nn.Module, real: Pool, cal: dict[str, object]) -> dict[str, float]:
    """:func:`flag_rates` of every held-out real crop, as filmed (no nuisance), at the model's calibration.

    Why: the calibration's reals are mostly photos (a photo gives one crop, a video at most six), but
    users analyse video; the share of unseen real *video frames* over the threshold (2.1: 25 %, photos
    9 %) is the figure on our own data that tracks the real clips a model flags on public footage.
    """
    bands = cal["bands"]
    assert isinstance(bands, list)
    top = max(float(b[0]) for b in bands)
    scores, _ = scores_of(model, real.crops)
    return flag_rates(scores, real.families, float(cal["threshold"]), top)  # type: ignore[arg-type]


def _set_frozen(model: torch.nn.Module, n_blocks: int) -> list[torch.nn.Module]:
    """Freeze stem and the first ``n_blocks`` MBConv blocks (weights and BatchNorm statistics)."""
    frozen: list[torch.nn.Module] = [model._conv_stem, model._bn0]  # type: ignore[list-item]
    frozen += list(model._blocks[:n_blocks])  # type: ignore[index]
    for mod in frozen:
        for p in mod.parameters():
            p.requires_grad_(False)
    return frozen


def recode_batch(imgs: np.ndarray, has_mask: np.ndarray, cfg: LiteConfig, epoch: int, step: int) -> np.ndarray:
    """The low-resolution codec steps, last, each from its own generator (the rest of a batch is unchanged):
    ``lowres_codec`` on any crop, then ``lowres_codec_not_generated`` on real crops and self-blends only
    (``has_mask``; generated faces have no mask)."""
    imgs = lowres_codec_batch(imgs, cfg.lowres_codec, _rng(cfg.seed, epoch, step, 7))
    if cfg.lowres_codec_not_generated > 0:
        imgs = imgs.copy()
        imgs[has_mask] = lowres_codec_batch(imgs[has_mask], cfg.lowres_codec_not_generated,
                                            _rng(cfg.seed, epoch, step, 8))
    return imgs


def train_lite(
    real: Pool,
    fake: Pool,
    cfg: LiteConfig,
    ckpt_dir: str | Path,
    val: dict[str, np.ndarray] | None = None,
    resume: str | Path | None = None,
    init_from: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Fine-tune a LiteUYNet from the ImageNet encoder; ``epoch_NNN.pt`` and ``last.pt`` after each epoch.

    ``init_from`` starts from the weights of an earlier lite0 training checkpoint instead (a second stage
    with its own schedule and augmentation; optimiser and schedule start fresh).
    """
    from ..model.uynet_lite import LiteUYNet, load_imagenet_weights

    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    ckpt = Path(ckpt_dir)
    ckpt.mkdir(parents=True, exist_ok=True)
    model = LiteUYNet(variant=cfg.variant)
    load_imagenet_weights(model)
    if init_from is not None:
        first = load_checkpoint_state(init_from)
        if first.get("arch") not in VARIANTS:
            raise ModelError(f"{init_from} is not a lite0 training checkpoint (arch {first.get('arch')!r}).")
        init_state = first["model"]
        assert isinstance(init_state, dict)
        model = LiteUYNet.for_state(init_state)
        if model.arch != cfg.variant:
            raise ModelError(f"{init_from} is a {model.arch} checkpoint, not {cfg.variant}.")
        model.load_state_dict(init_state)
        log(f"starting from the weights of {init_from} (epoch {first['epoch']})")
    if cfg.gen_head and model.gen_classifier is None:
        model.add_gen_head()  # the same scores as before; the two heads then part ways in training
    elif not cfg.gen_head and model.gen_classifier is not None:
        raise ModelError("this checkpoint has a generated head: train it on with gen_head (--gen-head)")
    frozen = _set_frozen(model, cfg.freeze_blocks)
    enc_names = ("_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1")
    enc = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(enc_names)]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(enc_names)]
    groups: list[dict[str, Any]] = [{"params": enc, "lr": cfg.encoder_lr}, {"params": rest, "lr": cfg.lr}]
    adversary: SourceAdversary | None = None
    pooled: PooledFeatures | None = None
    source_of = np.zeros(0, np.int64)
    if cfg.source_adversary > 0:
        videos, source_of = video_sources(real.groups, real.families)
        if len(videos) < 2:
            raise InputError("--source-adversary needs at least two training real videos in the pool.")
        adversary = SourceAdversary(len(videos))
        pooled = PooledFeatures(model)
        groups.append({"params": list(adversary.parameters()), "lr": cfg.lr})
        log(f"source adversary over {len(videos)} training real videos, reversal weight ramped to "
            f"{cfg.source_adversary}")
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    total = cfg.steps_per_epoch * cfg.epochs

    sched = warmup_cosine(opt, cfg.warmup_steps, total)
    start = 0
    history: list[dict[str, float]] = []
    if resume is not None:
        state = load_checkpoint_state(resume)
        if (adversary is None) != ("adversary" not in state):
            raise ModelError(f"{resume} was trained {'without' if adversary is not None else 'with'} a source "
                             "adversary: resume it with the same --source-adversary setting.")
        start, history = restore_training(state, model, opt, sched)
        if adversary is not None:
            adversary.load_state_dict(state["adversary"])  # type: ignore[arg-type]
        log(f"resumed from {resume} after epoch {start}")
    t0 = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        model.train()
        for mod in frozen:
            mod.eval()
        sums = {"loss": 0.0, "ce": 0.0, "bce": 0.0}
        adv_sums = {"adv_ce": 0.0, "adv_acc": 0.0, "adv_steps": 0.0}
        te = time.perf_counter()
        for step in range(cfg.steps_per_epoch):
            drawn: list[int] | None = [] if adversary is not None else None
            imgs, mt, ft, hm = sample_batch(real, fake, cfg, _rng(cfg.seed, epoch, step),
                                          _rng(cfg.seed, epoch, step, 9), _rng(cfg.seed, epoch, step, 10), drawn)
            imgs = recode_batch(imgs, hm, cfg, epoch, step)
            if cfg.gen_head:
                mask, blend_logit, gen_logit = model.class_logits(to_tensor(imgs))
                assert gen_logit is not None
                loss, ce, bce = three_way_loss(torch.cat([-0.5 * mask, 0.5 * mask], dim=1), blend_logit, gen_logit,
                                               torch.from_numpy(mt), torch.from_numpy(ft).float(),
                                               torch.from_numpy(hm), cfg)
            else:
                ml, rl = model.forward_logits(to_tensor(imgs))
                loss, ce, bce = lite_loss(ml, rl, torch.from_numpy(mt), torch.from_numpy(ft).float(),
                                          torch.from_numpy(hm), cfg)
            if adversary is not None and pooled is not None and drawn is not None:
                picked = np.asarray(drawn, np.int64)
                targets = np.where(picked >= 0, source_of[np.maximum(picked, 0)], IGNORED)
                weight = reversal_weight((epoch * cfg.steps_per_epoch + step) / total, cfg.source_adversary)
                adv_ce, adv_acc, named = adversary.loss(pooled.take(), torch.from_numpy(targets), weight)
                loss = loss + adv_ce
                if named:
                    adv_sums["adv_ce"] += adv_ce.item()
                    adv_sums["adv_acc"] += adv_acc
                    adv_sums["adv_steps"] += 1
            optimiser_step(loss, opt, sched, epoch, step)
            sums["loss"] += loss.item()
            sums["ce"] += ce.item()
            sums["bce"] += bce.item()
            if (step + 1) % 25 == 0:
                log(f"epoch {epoch + 1} step {step + 1}/{cfg.steps_per_epoch} loss {sums['loss'] / (step + 1):.4f} "
                    f"({(time.perf_counter() - te) / (step + 1):.2f} s/step)")
        rec: dict[str, float] = {"epoch": float(epoch + 1), "seconds": time.perf_counter() - t0}
        rec.update({k: v / cfg.steps_per_epoch for k, v in sums.items()})
        if adversary is not None:  # how well the adversary still names the video: chance is 1 / videos
            n_adv = max(1.0, adv_sums["adv_steps"])
            rec.update({"adv_ce": adv_sums["adv_ce"] / n_adv, "adv_acc": adv_sums["adv_acc"] / n_adv,
                        "adv_chance": 1.0 / adversary.n_sources})
        if val is not None:
            rec.update({f"val_{k}": v for k, v in val_figures(model, val).items()})
        history.append(rec)
        log(json.dumps(rec))
        state = {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": epoch + 1, "arch": model.arch, "seed": cfg.seed, "config": json.dumps(asdict(cfg)),
            "history": json.dumps(history),
        }
        if adversary is not None:
            state["adversary"] = adversary.state_dict()
        _atomic_torch_save(state, ckpt / f"epoch_{epoch + 1:03d}.pt")
        _atomic_torch_save(state, ckpt / "last.pt")
    if pooled is not None:
        pooled.remove()
    model.eval()
    return TrainResult(model, history, time.perf_counter() - t0, (cfg.epochs - start) * cfg.steps_per_epoch)


def _run_config(checkpoint: str | Path) -> object:
    """The training configuration a lite0 checkpoint records (for the card of a soup made from it)."""
    raw = load_checkpoint_state(checkpoint).get("config")
    return json.loads(raw) if isinstance(raw, str) else None


def soup_lite(checkpoints: Sequence[str | Path]) -> torch.nn.Module:
    """A uniform weight average ("model soup", Wortsman et al. 2022) of lite0 checkpoints.

    Runs fine-tuned from one common checkpoint sit in one basin, so their average is itself a good model
    and usually generalises better than any one of them, at no cost at inference. Integer buffers
    (BatchNorm step counters) come from the first checkpoint.
    """
    from ..model.uynet_lite import LiteUYNet

    if len(checkpoints) < 2:
        raise InputError("A model soup needs at least two checkpoints.")
    states = []
    for ck in checkpoints:
        st = load_checkpoint_state(ck)
        if st.get("arch") not in VARIANTS:
            raise ModelError(f"{ck} is not a lite0 training checkpoint (arch {st.get('arch')!r}).")
        states.append(st["model"])
    first = states[0]
    assert isinstance(first, dict)
    avg: dict[str, torch.Tensor] = {}
    for key, val in first.items():
        if any(not isinstance(s, dict) or key not in s for s in states):
            raise ModelError(f"The checkpoints do not share one layout (missing {key}).")
        if torch.is_floating_point(val):
            avg[key] = torch.stack([s[key].float() for s in states]).mean(0).to(val.dtype)  # type: ignore[index]
        else:
            avg[key] = val
    model = LiteUYNet.for_state(avg)
    model.load_state_dict(avg)
    model.eval()
    return model


def calibrate_lite(model: torch.nn.Module, val: dict[str, np.ndarray]) -> dict[str, object]:
    """Threshold and bands from the held-out split: unseen reals vs their self-blends and held-out generators."""
    sr, _ = scores_of(model, val["real"])
    ss, _ = scores_of(model, val["sbi"])
    sg, _ = scores_of(model, val["gen"]) if len(val["gen"]) else (np.zeros(0), None)
    scores = np.r_[sr, ss, sg]
    labels = np.r_[np.zeros(len(sr)), np.ones(len(ss) + len(sg))].astype(np.int64)
    return calibration_dict(scores, labels)


LITE_MODEL_NAME = "uynet-lite0-sbi-gen"
LITE_MODEL_VERSION = "2.1"


def train_lite_from_folders(
    real_dirs: Sequence[str | Path],
    fakes_dir: str | Path,
    out: str | Path,
    cfg: LiteConfig,
    work_dir: str | Path,
    yunet: str | Path,
    *,
    holdout: Sequence[str] = DEFAULT_HOLDOUT_GENERATORS,
    resume: str | Path | None = None,
    init_from: str | Path | None = None,
    soup: Sequence[str | Path] = (),
    int8_out: str | Path | None = None,
    int8_crops: int = 128,
    name: str | None = None,
    ckpt_dir: str | Path | None = None,
    version: str = LITE_MODEL_VERSION,
    flip_average: bool = False,
    real_frames: int = 40,
    fake_frames: int = 24,
    log: Callable[[str], None] = print,
    extra_val_real: Sequence[str] = (),
) -> dict[str, object]:
    """The one command behind ``deepyn train --arch lite0``: pool, split, train, calibrate, export (+ int8).

    Resumable: ``resume`` a ``last.pt`` whose epoch count is already reached just calibrates and exports.
    """
    from ..model.metadata import calibration_json, sha256_file

    refuse_validation_data(*real_dirs, fakes_dir)
    t0 = time.perf_counter()
    work = Path(work_dir)
    pools = build_pools(real_dirs, fakes_dir, work, yunet, holdout, real_frames=real_frames,
                        fake_frames=fake_frames, log=log, extra_val_real=extra_val_real)
    rt, rv = pools["real_train"], pools["real_val"]
    ft, fv = pools["fake_train"], pools["fake_val"]
    assert isinstance(rt, Pool) and isinstance(rv, Pool) and isinstance(ft, Pool) and isinstance(fv, Pool)
    if cfg.real_videos_kept is not None:
        rt = keep_real_videos(rt, cfg.real_videos_kept)
    log(f"real: {len(rt)} train crops ({len(set(rt.groups))} groups), {len(rv)} held-out ({len(set(rv.groups))}); "
        f"generated: {len(ft)} train ({len(set(ft.groups))} generators), {len(fv)} held-out ({sorted(set(fv.groups))})")
    val = make_val(rv, fv)
    if ckpt_dir is None:
        v = cfg.variant
        ckpt_dir = work / (f"ckpt-{v}-s{cfg.seed}" if init_from is None else f"ckpt-{v}-s{cfg.seed}-stage2")
        summary_path = work / f"train-{v}-s{cfg.seed}.json"
    else:
        ckpt_dir = Path(ckpt_dir)
        summary_path = ckpt_dir.parent / f"train-{cfg.variant}-{ckpt_dir.name}.json"
    if soup:  # no training: average finished runs, then calibrate and export like a trained model
        res = TrainResult(soup_lite(soup), [], 0.0, 0)
        log(f"model soup of {len(soup)} checkpoints: {', '.join(str(s) for s in soup)}")
    else:
        res = train_lite(rt, ft, cfg, ckpt_dir, val=val, resume=resume, init_from=init_from, log=log)
    if flip_average:  # test-time mirror average in the graph: figures and calibration are the averaged model's
        from ..model.uynet_lite import LiteUYNet, flip_averaged

        assert isinstance(res.model, LiteUYNet)
        res = replace(res, model=flip_averaged(res.model))
        log("exporting the flip-averaged model (crop and mirror image scored, logits averaged)")
    figures = val_figures(res.model, val)
    cal = calibrate_lite(res.model, val)
    log("held-out figures: " + json.dumps(figures))
    real_flagged = heldout_real_flagged(res.model, rv, cal)
    log("held-out real crops at or above the threshold: " + ", ".join(
        f"{k.removesuffix('_at_threshold')} {v:.1%}" for k, v in real_flagged.items() if k.endswith("_at_threshold")))
    meta: dict[str, object] = {
        "deepyn.name": name or LITE_MODEL_NAME.replace("lite0", cfg.variant),
        "deepyn.version": version,
        "deepyn.trained": "true",
        "deepyn.seed": str(cfg.seed),
        "deepyn.training": json.dumps({
            "method": "ImageNet EfficientNet-Lite0 encoder + UNet decoder; landmark-hull self-blends (SBI) and "
                      "generated faces; mask head on self-blends only",
            "config": asdict(cfg),
            "init_from": None if init_from is None else {"file": Path(init_from).name,
                                                          "sha256": sha256_file(init_from)},
            "soup_of": [{"file": str(c), "sha256": sha256_file(c), "config": _run_config(c)} for c in soup],
            "holdout_generators": list(holdout),
            "test_time": "mean of the crop's and its mirror image's fake logits" if flip_average else None,
            "train_generators": sorted(set(ft.groups)),
            "real_train_groups": len(set(rt.groups)),
            "real_val_groups": sorted(set(rv.groups)),
            "train_crops": {"real": len(rt), "generated": len(ft)},
            "frames_per_video": {"real": real_frames, "generated": fake_frames},
            "heldout_figures": figures,
            "heldout_real_flagged": real_flagged,
        }),
        "deepyn.calibration": calibration_json(
            float(cal["threshold"]), cal["bands"], float(cal["real_below"])  # type: ignore[arg-type]
        ),
    }
    export_model(res.model, out, meta, int8_out, rt.crops, int8_crops, log)
    summary: dict[str, object] = {
        "out": str(out), "history": res.history, "figures": figures, "calibration": cal,
        "heldout_real_flagged": real_flagged,
        "real_val_groups": sorted(set(rv.groups)), "holdout_generators": list(holdout),
        "skipped_fakes": pools["skipped"], "train_seconds": res.seconds, "seconds": time.perf_counter() - t0,
    }
    summary_path.write_text(json.dumps(summary, indent=1, default=str))
    return summary


def stage2_config(cfg: LiteConfig) -> LiteConfig:
    """A second stage refines a trained model: a third of the learning rates and a 20-step warm-up."""
    return replace(cfg, lr=cfg.lr / 3, encoder_lr=cfg.encoder_lr / 3, warmup_steps=20)


@dataclass(frozen=True)
class Stage2Run:
    """One fine-tuning run of a soup recipe (stage 2 from stage 1, or stage 3 from the stage-2 soup)."""

    name: str
    seed: int
    quality_match: float = 0.0
    gen: int = 3
    all_generators: bool = False  # train on every generator (no generator held out)
    epochs: int = 2
    gen_head: bool = False  # a second class head for generated faces (added to the stage-1 weights)


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe: stage 1, short stage-2 runs and their soup, then optionally long
    stage-3 runs from that soup and their soup (the shipped model is the last soup)."""

    version: str
    stage2: tuple[Stage2Run, ...]
    stage3: tuple[Stage2Run, ...] = ()
    real_frames: int = 40  # frames drawn per real video for the crop pool (every stage)
    fake_frames: int = 24  # frames drawn per generated video
    border_match: float = 0.0  # share of generated crops given a real crop's black bands (every training stage)
    lowres_codec: float = 0.0  # share of crops re-coded as a small face in a compressed video (stage 2 and 3 runs)
    bg_swap: float = 0.0  # share of crops shown in front of another crop's background (every training stage)
    extra_val_real: tuple[str, ...] = ()  # more real clips held out of training, for calibration (every stage)
    source_adversary: float = 0.0  # reversal weight of the source adversary (adversary.py; every training stage)


#: Model 2.1: stage 1 (4 epochs x 150 steps), these seven 2-epoch runs from its last checkpoint, their soup.
RECIPE_2_1: tuple[Stage2Run, ...] = (
    Stage2Run("A", 0, quality_match=0.5),
    Stage2Run("B", 0),
    Stage2Run("D", 1),
    Stage2Run("E", 0, all_generators=True),
    Stage2Run("F", 2, gen=5, all_generators=True),
    Stage2Run("G", 3, gen=4, all_generators=True),
    Stage2Run("H", 4, quality_match=0.5, all_generators=True),
)
#: Trial "2.2" (NOT shipped): two long (12-epoch) runs from 2.1's soup on every generator, then their
#: soup. Why tried: stages 1 and 2 had seen about 13 000 training images in all. It scored below 2.1 on
#: the validation clips (model card, "Tried with 2.1 and not adopted"); kept so the trial can be rerun, e.g.
#: with longer runs where a GPU is lent.
RECIPE_2_2_STAGE3: tuple[Stage2Run, ...] = (
    Stage2Run("X", 5, gen=3, all_generators=True, epochs=12),
    Stage2Run("Y", 6, gen=4, quality_match=0.5, all_generators=True, epochs=12),
)
#: Trial "gen-head": 2.1's seven stage-2 runs (same seeds, so the same batches) with a second class head
#: for generated faces (3-way softmax), then their soup.
RECIPE_GEN_HEAD: tuple[Stage2Run, ...] = tuple(replace(r, gen_head=True) for r in RECIPE_2_1)
#: Trials 2.3 and 2.4 (NOT shipped): 2.1's stages on a pool with three times the real video frames (120
#: per clip), 2.4 also with the generated-face head on every run. Why: stage 1 on that pool ("BIGR")
#: raised generated talking heads by +0.15 on the validation clips against 2.0. Both flagged 5 of 17 real clips
#: there, and 2.4 gained too little overall (model card, "Tried with 2.1 and not adopted").
#: Trial 2.5 (NOT shipped): 2.3's recipe with border matching (--border-match 0.5) in stage 1 and every stage-2
#: run. Why: black edge bands are a "real" cue in the pool (45 % of real crops, 3 % of generated talking heads),
#: and at 0.5 a stage-1 run no longer reacted to a pasted band. On the validation clips it beat 2.1 on every pre-set
#: condition (0.796 overall, 3 real clips flagged) but left the demo clip uncertain: its top band starts at
#: 0.978, so no span decides (model card, "Tried with 2.1 and not adopted").
#: Trial 2.7 (NOT shipped): 2.1's stage 1 and seven stage-2 runs, the runs with the low-resolution codec
#: nuisance (--lowres-codec 0.3). Why: bench/face_size_causes.py found that a codec applied at low resolution,
#: then enlarged, is the largest reason small real faces read as fake, and run E with it (same batches
#: otherwise) halved that rise without losing self-blend accuracy. The soup of seven kept only part of that
#: gain and flagged one more held-out real video, so it failed its non-dev gates (model card, "Tried with 2.1").
#: Ten more real videos held out: the first ten by SHA-256 of their name among the 34 training videos of the
#: pool (flagged super-resolved clips are never in it), chosen blind to any score, so that 16 unseen real
#: videos, not 6, calibrate the threshold and test false alarms on video.
EXTRA_VAL_VIDEOS_H16: tuple[str, ...] = (
    "liveportrait__driving_d0", "liveportrait__driving_d9", "aniportrait__pose_ref_video",
    "pcavs__Audio_Source_681100216", "liveportrait__driving_d19", "liveportrait__driving_d10",
    "pcavs__Audio_Source_00086", "lia__vox_obama", "videoretalking__face_1", "vtoonify__529",
)
#: Trial "2.8-h16": 2.1's whole recipe on the h16 split with --bg-swap 0.5 in every stage. Why: the models
#: score their training videos near 0, and a stage-1 run with swapped backgrounds flagged 3 of the 16 unseen
#: real videos against 8 without, while its held-out-generator AUC rose (model card, *Calibration*).
#: Trial "2.1-h16": 2.1's whole recipe (stage 1 anew) with those ten videos held out too.
#: Trial "2.5-h16": 2.5's whole recipe with the same ten videos held out, so that the two recipes' false alarms
#: on unseen real video are compared on 16 videos instead of 6 (2.5 flagged 4 of 6, 2.1 2 of 6).
RECIPES: dict[str, Recipe] = {
    "2.1": Recipe("2.1", RECIPE_2_1),
    "2.3-trial": Recipe("2.3-trial", RECIPE_2_1, real_frames=120),
    "2.4-trial": Recipe("2.4-trial", RECIPE_GEN_HEAD, real_frames=120),
    "2.5-trial": Recipe("2.5-trial", RECIPE_2_1, real_frames=120, border_match=0.5),
    "2.7-trial": Recipe("2.7-trial", RECIPE_2_1, lowres_codec=0.3),
    "2.1-h16-trial": Recipe("2.1-h16-trial", RECIPE_2_1, extra_val_real=EXTRA_VAL_VIDEOS_H16),
    "2.5-h16-trial": Recipe("2.5-h16-trial", RECIPE_2_1, real_frames=120, border_match=0.5,
                            extra_val_real=EXTRA_VAL_VIDEOS_H16),
    "2.8-h16-trial": Recipe("2.8-h16-trial", RECIPE_2_1, bg_swap=0.5, extra_val_real=EXTRA_VAL_VIDEOS_H16),
    "2.2-trial": Recipe("2.2-trial", RECIPE_2_1, RECIPE_2_2_STAGE3),
    "gen-head-trial": Recipe("gen-head-trial", RECIPE_GEN_HEAD),
}
STAGE1_EPOCHS = 4
STAGE2_EPOCHS = 2


def save_soup_checkpoint(checkpoints: Sequence[str | Path], path: str | Path) -> Path:
    """Write the soup of ``checkpoints`` as a lite0 training checkpoint (epoch 0), so a later stage can
    start from it with ``init_from``; the ingredients are recorded by name and SHA-256."""
    from ..model.metadata import sha256_file

    model = soup_lite(checkpoints)
    state = {
        "model": model.state_dict(), "arch": model.arch, "epoch": 0,
        "soup_of": json.dumps([{"file": str(c), "sha256": sha256_file(c)} for c in checkpoints]),
    }
    _atomic_torch_save(state, Path(path))
    return Path(path)


def train_lite_recipe(
    real_dirs: Sequence[str | Path],
    fakes_dir: str | Path,
    out: str | Path,
    work_dir: str | Path,
    yunet: str | Path,
    *,
    recipe: Recipe = RECIPES["2.1"],
    threads: int = 1,
    steps_per_epoch: int = 150,
    int8_out: str | Path | None = None,
    name: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """The one command behind the bundled model (``deepyn train --arch lite0 --recipe 2.1``): stage 1,
    the second-stage runs and their soup, then, for a recipe with a third stage (``2.2-trial``), its runs
    from that soup and their soup; calibrated and exported.

    Resumable at every step: a finished stage (its last epoch's checkpoint exists) is skipped and an
    interrupted one continues from its ``last.pt``, so rerunning the same command picks up where it
    stopped. All stages share ``work_dir``'s crop cache; each keeps its checkpoints in its own folder.
    """
    refuse_validation_data(*real_dirs, fakes_dir)
    work = Path(work_dir)

    def finished(ckpt: Path, epochs: int) -> Path:
        return ckpt / f"epoch_{epochs:03d}.pt"

    def resume_of(ckpt: Path) -> Path | None:
        last = ckpt / "last.pt"
        return last if last.exists() else None

    def run_stage(stage: int, runs: Sequence[Stage2Run], init: Path) -> list[Path]:
        done_list: list[Path] = []
        for run in runs:
            ckpt = work / f"stage{stage}-{run.name}"
            done = finished(ckpt, run.epochs)
            done_list.append(done)
            if done.exists():
                log(f"stage {stage}, run {run.name}: done ({done})")
                continue
            log(f"stage {stage}, run {run.name}: training")
            cfg = stage2_config(LiteConfig(epochs=run.epochs, steps_per_epoch=steps_per_epoch, seed=run.seed,
                                           threads=threads, quality_match=run.quality_match, gen=run.gen,
                                           gen_head=run.gen_head, border_match=recipe.border_match,
                                           lowres_codec=recipe.lowres_codec, bg_swap=recipe.bg_swap,
                                           source_adversary=recipe.source_adversary))
            train_lite_from_folders(
                real_dirs, fakes_dir, work / f"stage{stage}-{run.name}.onnx", cfg, work, yunet,
                holdout=() if run.all_generators else DEFAULT_HOLDOUT_GENERATORS,
                resume=resume_of(ckpt), init_from=init, ckpt_dir=ckpt, version=recipe.version, log=log,
                real_frames=recipe.real_frames, fake_frames=recipe.fake_frames, extra_val_real=recipe.extra_val_real,
            )
        return done_list

    stage1_dir = work / "stage1"
    stage1 = finished(stage1_dir, STAGE1_EPOCHS)
    if stage1.exists():
        log(f"stage 1: done ({stage1})")
    else:
        log("stage 1: training")
        cfg1 = LiteConfig(epochs=STAGE1_EPOCHS, steps_per_epoch=steps_per_epoch, threads=threads,
                          border_match=recipe.border_match, bg_swap=recipe.bg_swap,
                          source_adversary=recipe.source_adversary)
        train_lite_from_folders(real_dirs, fakes_dir, work / "stage1.onnx", cfg1, work, yunet,
                                resume=resume_of(stage1_dir), ckpt_dir=stage1_dir, version=recipe.version, log=log,
                                real_frames=recipe.real_frames, fake_frames=recipe.fake_frames,
                                extra_val_real=recipe.extra_val_real)
    soup = run_stage(2, recipe.stage2, stage1)
    runs = list(recipe.stage2)
    if recipe.stage3:
        soup2 = work / "soup-stage2.pt"
        log(f"soup of the {len(soup)} stage-2 runs -> {soup2}")
        save_soup_checkpoint(soup, soup2)  # cheap and deterministic: made again on every rerun
        soup = run_stage(3, recipe.stage3, soup2)
        runs = list(recipe.stage3)
    log(f"soup of {len(soup)} runs")
    return train_lite_from_folders(
        real_dirs, fakes_dir, out, LiteConfig(threads=threads), work, yunet,
        holdout=() if any(r.all_generators for r in runs) else DEFAULT_HOLDOUT_GENERATORS,
        soup=soup, int8_out=int8_out, name=name, ckpt_dir=work / "soup", version=recipe.version, log=log,
        real_frames=recipe.real_frames, fake_frames=recipe.fake_frames, extra_val_real=recipe.extra_val_real,
    )
