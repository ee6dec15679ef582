"""``deepyn train``: train a U-YNet on real-face clips by self-blending, calibrate it, export ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only when training runs
    from ..core.training.train_lite import LiteConfig


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train",
        help="train a U-YNet from real-face clips (self-blended fakes)",
        description="Train U-YNet on real faces only: fakes are self-blended images (SBI). Crops come from "
        "the app's own detector and crop geometry; the split is by identity (one clip = one identity).",
    )
    p.add_argument("--data", required=False, help="folder of real-face clips (one identity per clip)")
    p.add_argument("--out", required=False, help="ONNX model to write")
    p.add_argument("--arch", choices=("uynet", "lite0", "lite2"), default="uynet",
                   help="uynet: from-scratch U-YNet on self-blends (the old recipe); lite0: ImageNet "
                   "EfficientNet-Lite0 encoder on self-blends + generated faces (the shipped default model); "
                   "lite2: the same with the larger EfficientNet-Lite2 encoder (a diagnostic, see the model card)")
    p.add_argument("--extra-real", nargs="*", default=[], help="lite0: more real-face folders (e.g. real-faces-2)")
    p.add_argument("--fakes", default=None, help="lite0: folder of generated faces with manifest.json (fakes-train)")
    p.add_argument("--yunet", default=None, help="lite0: YuNet .onnx used at training time for 5 landmarks per crop")
    p.add_argument("--holdout", nargs="*", default=None, help="lite0: generator folders held out for validation")
    p.add_argument("--width", type=int, default=8, help="U-YNet base width (default 8; 64 = original)")
    p.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--pairs", type=int, default=4, help="real crops per batch; batch = 2 x pairs (default 4)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine; default 2e-3)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="default: one pass over the crops")
    p.add_argument("--frames-per-clip", type=int, default=60, help="evenly spaced frames per clip (default 60)")
    p.add_argument("--val-ids", nargs="*", default=None, help="validation identities (clip stems)")
    p.add_argument("--n-val", type=int, default=5, help="validation identities when --val-ids is not given")
    p.add_argument("--include-flagged", action="store_true",
                   help="also train on clips flagged FLAG-ENH in the folder's MANIFEST.md (left out by default)")
    p.add_argument("--recipe", choices=("2.1", "2.2-trial", "2.3-trial", "2.4-trial", "2.5-trial", "2.7-trial", "2.1-h16-trial", "2.5-h16-trial", "2.8-h16-trial", "gen-head-trial"),
                   default=None,
                   help="lite0: run a whole recipe in one command, resumable (2.1 = the bundled model: stage 1, "
                   "seven second-stage runs, their soup; about 2 h on 2 free cores. 2.2-trial: the same, then "
                   "two 12-epoch runs from that soup and their soup, about 1.5 h more; not shipped, it scored "
                   "lower on the validation clips, see the model card; 2.3-trial: 2.1's stages on a crop pool "
                   "with 120 frames per real video instead of 40; 2.4-trial: 2.3-trial with the generated-face "
                   "head (neither shipped, see the card); 2.5-trial: 2.3-trial with --border-match 0.5 in every "
                   "stage (not shipped: the demo stays uncertain); gen-head-trial: the seven 2.1 runs with a second class "
                   "head for generated faces, then their soup)")
    p.add_argument("--init-from", default=None, metavar="CKPT.pt",
                   help="lite0: start from the weights of an earlier lite0 checkpoint (a second training stage "
                   "with a fresh schedule); the model card records its SHA-256")
    p.add_argument("--quality-match", type=float, default=None, metavar="P",
                   help="lite0: share of real crops sharpened and generated crops softened before the shared "
                   "nuisances, so sharpness stops telling the classes apart (default 0)")
    p.add_argument("--border-match", type=float, default=None, metavar="P",
                   help="lite0: share of generated crops given the black frame-edge bands of a random real crop, "
                   "so a band (a face near the frame's edge) stops meaning real (default 0)")
    p.add_argument("--lowres-codec", type=float, default=None, metavar="P",
                   help="lite0: share of training crops (both classes) re-coded as a small face in a compressed "
                   "video: shrunk to 64-160 px, JPEG-coded, enlarged back (default 0)")
    p.add_argument("--lowres-codec-not-generated", type=float, default=None, metavar="P",
                   help="lite0: the same re-coding on a share of the real crops and their self-blends only, never "
                   "the generated faces (which are nearly all low-resolution video already), so that look stops "
                   "meaning generated (default 0)")
    p.add_argument("--bg-swap", type=float, default=None, metavar="P",
                   help="lite0: share of training crops (both classes) shown in front of another random crop's "
                   "background (the head is the landmark face hull, widened and feathered), so a clip's room or "
                   "green screen stops identifying it (default 0)")
    p.add_argument("--gen-tiles", type=float, default=None, metavar="P",
                   help="lite0: share of generated faces, and of the real crops drawn beside them, shown as 4x4 "
                   "shuffled tiles, so only local texture tells them apart (a diagnostic; default 0)")
    p.add_argument("--soup", nargs="+", default=(), metavar="CKPT.pt",
                   help="lite0: no training; average these lite0 checkpoints (a model soup), then calibrate and "
                   "export it like a trained model")
    p.add_argument("--gen", type=int, default=None, help="lite0: generated faces per batch (default 3)")
    p.add_argument("--freeze-blocks", type=int, default=None, metavar="N",
                   help="lite0: keep the stem and the first N of the encoder's 16 blocks at their starting "
                   "weights (default 3)")
    p.add_argument("--gen-head", action="store_true",
                   help="lite0: a second class head for generated faces (3-way softmax real / self-blend / "
                   "generated; the score stays 1 - P(real)); a one-head checkpoint given to --init-from is "
                   "split into the two heads without changing its scores")
    p.add_argument("--flip-average", action="store_true",
                   help="lite0: export a model that scores each crop and its mirror image and averages them "
                   "(twice the model's cost; calibrated as such). Tried on 2.1, not the default")
    p.add_argument("--real-frames", type=int, default=40, metavar="N",
                   help="lite0: evenly spaced frames taken from each real video (default 40)")
    p.add_argument("--fake-frames", type=int, default=24, metavar="N",
                   help="lite0: evenly spaced frames taken from each generated video (default 24)")
    p.add_argument("--balance-real-groups", action="store_true",
                   help="lite0: draw each real crop by first drawing its clip or photo file uniformly, so a "
                   "video with many frames weighs no more than one photo (default: every crop equally likely)")
    p.add_argument("--photo-share", type=float, default=None, metavar="P",
                   help="lite0: draw real crops from photos with probability P and from video frames otherwise "
                   "(default: every crop equally likely, so the mix follows the crop counts)")
    p.add_argument("--real-videos-kept", type=int, default=None, metavar="N",
                   help="lite0: train on only N of the training real videos (the first by SHA-256 of their names; "
                   "photos all kept): a learning-curve diagnostic for the number of real video sources")
    p.add_argument("--source-adversary", type=float, default=None, metavar="W",
                   help="lite0: train against an adversary that names which training real video a crop came from "
                   "(gradient reversal ramped up to weight W), so the encoder cannot learn the real videos by "
                   "heart (a diagnostic; default 0 = off)")
    p.add_argument("--resume", default=None, help="training checkpoint (.pt) to continue from")
    p.add_argument("--work-dir", default=".work", help="crop cache and checkpoints (default .work)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on 2 shared cores, 2 threads ran 3-4x slower under load)")
    p.add_argument("--int8", default=None, metavar="INT8.onnx",
                   help="also write a static int8 (QDQ) copy calibrated on real training crops")
    p.add_argument("--name", default=None, help="model name stored in the ONNX metadata")
    p.add_argument("--make-val-set", default=None, metavar="DIR",
                   help="instead of training: write the identity-held-out SBI validation set (real/, fake/, "
                   "masks/) as PNGs into DIR, for `deepyn evaluate`")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from ..core.output_guard import check_output_dir, check_output_file
    from ..core.training.data import refuse_validation_data

    if not args.data:
        raise InputError("deepyn train needs --data FOLDER (real-face clips).")
    # validation-only data (deepfakes-dev) never trains or calibrates a model: refused before anything runs
    refuse_validation_data(args.data, *(getattr(args, "extra_real", None) or []), getattr(args, "fakes", None))
    # the training clips are never written over, nor written among (outputs go elsewhere)
    for target in (args.out, args.int8):
        if target:
            check_output_file(target, inputs=[args.resume], evidence=[args.data])
    if args.make_val_set:
        check_output_dir(args.make_val_set, inputs=[args.resume], evidence=[args.data])
    check_output_dir(args.work_dir, inputs=[args.resume], evidence=[args.data])
    if args.make_val_set:
        from ..core.training.evaluate import write_sbi_val_folder

        n = write_sbi_val_folder(
            args.data, args.make_val_set, args.work_dir, val_ids=args.val_ids, n_val=args.n_val,
            seed=args.seed, frames_per_clip=args.frames_per_clip, exclude_flagged=not args.include_flagged,
        )
        print(f"wrote {n} validation crops (real/, fake/, masks/) to {args.make_val_set}")
        return 0
    if not args.out:
        raise InputError("deepyn train needs --out MODEL.onnx.")
    if args.arch in ("lite0", "lite2"):
        return _run_lite(args)
    from ..core.training.train import TrainConfig, train_from_clips

    cfg = TrainConfig(width=args.width, epochs=args.epochs, pairs=args.pairs, lr=args.lr, seed=args.seed,
                      threads=args.threads, steps_per_epoch=args.steps_per_epoch)
    run_ = train_from_clips(
        args.data, args.out, cfg, args.work_dir, val_ids=args.val_ids, n_val=args.n_val,
        exclude_flagged=not args.include_flagged, frames_per_clip=args.frames_per_clip,
        resume=args.resume, progress=not args.quiet, name=args.name, int8_out=args.int8,
    )
    cal = run_.calibration
    print(f"wrote {Path(args.out)} in {run_.seconds / 60:.1f} min; "
          f"threshold {cal.get('threshold', 'n/a')}, real_below {cal.get('real_below', 'n/a')}")
    if run_.history:
        print("last epoch: " + ", ".join(f"{k} {v:.4g}" for k, v in run_.history[-1].items()))
    return 0


def _probability(value: float, flag: str) -> float:
    from ..core.errors import InputError

    if not 0.0 <= value <= 1.0:
        raise InputError(f"{flag} takes a probability from 0 to 1.")
    return value


#: Options that take a share in [0, 1] and set the LiteConfig field of the same name (``--bg-swap`` -> bg_swap).
PROBABILITY_OPTIONS = ("--quality-match", "--border-match", "--lowres-codec", "--lowres-codec-not-generated",
                       "--bg-swap", "--gen-tiles", "--photo-share")


def lite_config(args: argparse.Namespace) -> LiteConfig:
    """The training configuration the lite0/lite2 options describe (validated; no data read)."""
    from ..core.errors import InputError
    from ..core.training.train_lite import LiteConfig, stage2_config

    cfg = LiteConfig(epochs=args.epochs, seed=args.seed, threads=args.threads, variant=args.arch)
    if args.arch == "lite2":
        cfg.freeze_blocks = 4  # stem + the blocks at strides <= 4, as lite0's default 3
    if args.steps_per_epoch:
        cfg.steps_per_epoch = args.steps_per_epoch
    if args.init_from:
        cfg = stage2_config(cfg)
    for flag in PROBABILITY_OPTIONS:  # each sets the LiteConfig field of the same name, when given
        name = flag[2:].replace("-", "_")
        if getattr(args, name) is not None:
            setattr(cfg, name, _probability(getattr(args, name), flag))
    if args.gen is not None:
        cfg.gen = args.gen
    cfg.gen_head = bool(args.gen_head)
    cfg.balance_real_groups = bool(args.balance_real_groups)
    if args.real_videos_kept is not None:
        if args.real_videos_kept < 1:
            raise InputError(f"--real-videos-kept must be at least 1, got {args.real_videos_kept}.")
        cfg.real_videos_kept = args.real_videos_kept
    if args.source_adversary is not None:
        if not 0.0 <= args.source_adversary <= 10.0:
            raise InputError(f"--source-adversary takes a weight from 0 to 10, got {args.source_adversary}.")
        cfg.source_adversary = args.source_adversary
    if args.freeze_blocks is not None:
        from ..core.model.uynet_lite import VARIANTS

        n_blocks = sum(stage[4] for stage in VARIANTS[args.arch])
        if not 0 <= args.freeze_blocks <= n_blocks:
            raise InputError(f"--freeze-blocks takes 0 to {n_blocks} (EfficientNet-{args.arch.capitalize()} has "
                             f"{n_blocks} blocks).")
        cfg.freeze_blocks = args.freeze_blocks
    return cfg


def _run_lite(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from ..core.training.train_lite import (
        DEFAULT_HOLDOUT_GENERATORS,
        RECIPES,
        train_lite_from_folders,
        train_lite_recipe,
    )

    if not args.fakes or not args.yunet:
        raise InputError("deepyn train --arch lite0 needs --fakes FOLDER (generated faces) and --yunet MODEL.onnx.")
    if args.recipe:
        if args.arch != "lite0":
            raise InputError("--recipe builds the lite0 models; train other encoders stage by stage.")
        summary = train_lite_recipe(
            [args.data, *args.extra_real], args.fakes, args.out, args.work_dir, args.yunet,
            recipe=RECIPES[args.recipe], threads=args.threads,
            steps_per_epoch=args.steps_per_epoch or 150, int8_out=args.int8, name=args.name,
        )
        cal = summary["calibration"]
        assert isinstance(cal, dict)
        print(f"wrote {args.out} (recipe {args.recipe}); threshold {cal['threshold']:.3f}")
        return 0
    cfg = lite_config(args)
    summary = train_lite_from_folders(
        [args.data, *args.extra_real], args.fakes, args.out, cfg, args.work_dir, args.yunet,
        holdout=tuple(args.holdout) if args.holdout is not None else DEFAULT_HOLDOUT_GENERATORS,
        resume=args.resume, init_from=args.init_from, soup=args.soup, int8_out=args.int8, name=args.name,
        flip_average=args.flip_average, real_frames=args.real_frames, fake_frames=args.fake_frames,
    )
    cal, figures = summary["calibration"], summary["figures"]
    secs, train_secs = summary["seconds"], summary["train_seconds"]
    assert isinstance(cal, dict) and isinstance(figures, dict)
    assert isinstance(secs, float) and isinstance(train_secs, float)
    print(f"wrote {args.out} in {secs / 60:.1f} min (training {train_secs / 60:.1f} min); "
          f"threshold {cal['threshold']:.3f}")
    print("held-out figures: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    return 0
