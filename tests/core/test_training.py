"""Training pieces: self-blending, the identity split, AUC/calibration, and `deepyn train`/`evaluate` end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepyn_gui.core.training.calibrate import auc, calibrate, youden_threshold
from deepyn_gui.core.training.data import default_box, flagged_in_manifest, split_identities
from deepyn_gui.core.training.sbi import MASK_TARGET_THRESHOLD, face_mask, mask_target, self_blend


def _astronaut_crop() -> np.ndarray:
    from skimage import data

    face = data.astronaut()[20:260, 110:350]  # the face with a margin, roughly square
    return cv2.resize(face, (224, 224), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------------------------------
# Self-blending
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_sbi_changes_only_inside_the_mask(seed: int) -> None:
    img = _astronaut_crop()
    sb = self_blend(img, default_box(), np.random.default_rng(seed))
    assert sb.image.shape == img.shape and sb.image.dtype == np.uint8
    assert sb.alpha.shape == img.shape[:2] and sb.alpha.dtype == np.float32
    assert float(sb.alpha.min()) >= 0.0 and float(sb.alpha.max()) <= 1.0
    changed = np.any(sb.image != img, axis=2)
    assert changed.any(), "a self-blend must change the face"
    assert not (changed & (sb.alpha == 0)).any(), "pixels outside the blend mask must be bit-identical"
    # the blend lies on the face: its centre of mass is near the crop centre, not at a border
    ys, xs = np.nonzero(sb.alpha)
    assert 60 < xs.mean() < 164 and 60 < ys.mean() < 180
    assert sb.alpha[0, :].max() == 0 and sb.alpha[:, 0].max() == 0


def test_sbi_is_deterministic_for_a_seed() -> None:
    img = _astronaut_crop()
    a = self_blend(img, default_box(), np.random.default_rng(42))
    b = self_blend(img, default_box(), np.random.default_rng(42))
    c = self_blend(img, default_box(), np.random.default_rng(43))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.alpha, b.alpha)
    assert not np.array_equal(a.alpha, c.alpha)


def test_face_mask_is_soft_and_mask_target_thresholds_it() -> None:
    m = face_mask(default_box(), 224, np.random.default_rng(0))
    assert m.max() == pytest.approx(1.0)
    assert ((m > 0.05) & (m < 0.95)).sum() > 100, "the edge must be soft (blurred)"
    t = mask_target(m)
    assert set(np.unique(t).tolist()) <= {0, 1}
    assert np.array_equal(t == 1, m > MASK_TARGET_THRESHOLD)


def test_training_pair_real_has_empty_mask() -> None:
    from deepyn_gui.core.training.train import sample_pair

    real, fake = sample_pair(_astronaut_crop(), default_box(), np.random.default_rng(0))
    assert real.fake == 0 and fake.fake == 1
    assert real.mask.sum() == 0 and real.alpha.sum() == 0
    assert fake.mask.sum() > 0


# --------------------------------------------------------------------------------------------------
# Identity split and manifest flags
# --------------------------------------------------------------------------------------------------


def test_identity_split_has_no_overlap() -> None:
    ids = [f"id{i:02d}" for i in range(30)]
    train, val = split_identities(ids, n_val=6, seed=3)
    assert len(val) == 6 and len(train) == 24
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(ids)
    assert split_identities(ids, n_val=6, seed=3) == (train, val)  # reproducible
    train2, val2 = split_identities(ids, val_ids=["id01", "id05", "nope"])
    assert val2 == ["id01", "id05"] and "id01" not in train2 and len(train2) == 28


def test_flagged_clips_are_read_from_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "MANIFEST.md").write_text(
        "| # | file | x |\n|---|---|---|\n| 1 | `a__one.mp4` | clean |\n| 2 | `b__two.mp4` | waxy. FLAG-ENH |\n"
    )
    assert flagged_in_manifest(tmp_path) == {"b__two"}
    assert flagged_in_manifest(tmp_path / "missing") == set()


# --------------------------------------------------------------------------------------------------
# AUC and calibration
# --------------------------------------------------------------------------------------------------


def test_auc_hand_made_cases() -> None:
    assert auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75  # the classic textbook example
    assert np.isnan(auc([0.1, 0.2], [1, 1]))


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    s = np.round(rng.random(60), 1)  # many ties
    y = rng.integers(0, 2, 60)
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg)
    )
    assert auc(s, y) == pytest.approx(pairwise)


def test_calibration_from_validation_scores() -> None:
    from deepyn_gui.core.model.metadata import calibration_json, parse_calibration

    rng = np.random.default_rng(1)
    real = rng.beta(2, 8, 400)
    fake = rng.beta(8, 2, 400)
    s = np.concatenate([real, fake])
    y = np.r_[np.zeros(400), np.ones(400)].astype(int)
    res = calibrate(s, y)
    assert 0.3 < res.threshold < 0.7
    assert res.real_below <= res.threshold <= res.high_from
    assert ((s[y == 1] < res.real_below).mean()) <= 0.06
    cal = parse_calibration(calibration_json(res.threshold, res.bands, res.real_below))
    assert cal.threshold == pytest.approx(res.threshold) and cal.real_below == pytest.approx(res.real_below)
    rates = [row["fake_rate"] for row in res.table]
    assert rates == sorted(rates), "observed fake rate must rise band by band on well-separated data"
    assert youden_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------------
# deepyn train / evaluate end to end on a tiny synthetic setup
# --------------------------------------------------------------------------------------------------


def _tiny_clips(folder: Path) -> None:
    from tests.media import astronaut_clip_frames, write_clip

    folder.mkdir()
    for k, (w, pan) in enumerate([(200, 1.0), (220, -1.5), (240, 2.0)]):
        frames = list(astronaut_clip_frames(4, w=w, h=200, face_px=90, pan_px_per_frame=pan))
        if k == 1:
            frames = [np.ascontiguousarray(f[..., ::-1]) for f in frames]  # another "identity": colours swapped
        write_clip(folder / f"id{k}.mp4", frames, fps=10)


class _FakeBackend:
    """A stand-in backend scoring a crop by its mean brightness (to test evaluate's plumbing exactly)."""

    name = "stub"
    batch_size = 4

    def __init__(self) -> None:
        from deepyn_gui.core.model.metadata import default_bands
        from deepyn_gui.core.results import ModelInfo

        self.model_info = ModelInfo(name="stub", sha256="0" * 64, path="", version="", trained=True,
                                    threshold=0.5, bands=default_bands(True), card_path="", notes="")

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score = crops.reshape(len(crops), -1).mean(axis=1) / 255.0
        mask = np.zeros((len(crops), 224, 224), np.float32)
        mask[:, 50:150, 50:150] = 1.0
        return mask, score.astype(np.float32)

    def close(self) -> None:
        pass


def test_evaluate_crops_folder_metrics(tmp_path: Path) -> None:
    from deepyn_gui.core.training.evaluate import discover, evaluate

    for sub in ("real", "fake", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "real" / f"r{i}.png"), np.full((224, 224, 3), 20 + 10 * i, np.uint8))
        cv2.imwrite(str(tmp_path / "fake" / f"f{i}.png"), np.full((224, 224, 3), 200 + 10 * i, np.uint8))
        m = np.zeros((224, 224), np.uint8)
        m[50:150, 50:100] = 255  # half of the stub's predicted square
        cv2.imwrite(str(tmp_path / "masks" / f"f{i}.png"), m)
    rep = evaluate(discover(tmp_path), _FakeBackend())  # type: ignore[arg-type]
    assert rep.metrics["crop_auc"] == 1.0 and rep.metrics["crop_acc"] == 1.0
    assert rep.metrics["mask_iou_mean"] == pytest.approx(0.5)
    assert rep.metrics["mask_iou_n"] == 3
    assert sum(int(r["n"]) for r in rep.table) == 6


@pytest.mark.slow
def test_deepyn_train_end_to_end_and_resume(tmp_path: Path) -> None:
    import onnxruntime as ort

    from deepyn_gui.cli import main
    from deepyn_gui.core.model.metadata import read_metadata_props, read_model_info

    data = tmp_path / "clips"
    _tiny_clips(data)
    work = tmp_path / "work"
    out = tmp_path / "tiny.onnx"
    common = ["--data", str(data), "--width", "4", "--pairs", "1", "--steps-per-epoch", "2",
              "--frames-per-clip", "2", "--val-ids", "id2", "--work-dir", str(work), "--threads", "1", "-q"]
    assert main(["train", "--out", str(out), "--epochs", "1", *common]) == 0
    info = read_model_info(out)
    assert info.trained and info.name == "uynet-w4-sbi"
    meta = read_metadata_props(out)
    assert meta["deepyn.width"] == "4" and "deepyn.calibration" in meta
    training = json.loads(meta["deepyn.training"])
    assert training["val_identities"] == ["id2"] and "id2" not in training["train_identities"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    mask, score = sess.run(["mask_prob", "fake_score"], {"image": np.zeros((2, 3, 224, 224), np.float32)})
    assert mask.shape == (2, 224, 224) and score.shape == (2,) and np.isfinite(score).all()

    # resume: a 2-epoch run continued from the 1-epoch checkpoint reports both epochs
    ckpt = work / "ckpt-w4-s0" / "last.pt"
    assert ckpt.is_file()
    out2 = tmp_path / "tiny2.onnx"
    int8 = tmp_path / "tiny2_int8.onnx"
    assert main(["train", "--out", str(out2), "--epochs", "2", "--resume", str(ckpt), "--int8", str(int8), *common]) == 0
    hist = json.loads((work / "train-w4-s0.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1.0, 2.0]
    meta8 = read_metadata_props(int8)
    assert meta8["deepyn.precision"] == "int8"
    assert meta8["deepyn.calibration"] == read_metadata_props(out2)["deepyn.calibration"]
    assert any(n.op_type == "QuantizeLinear" for n in __import__("onnx").load(str(int8)).graph.node)

    # the SBI validation folder, evaluated with the exported model through the real ONNX backend
    val = tmp_path / "val"
    assert main(["train", "--make-val-set", str(val), *common]) == 0
    assert len(list((val / "fake").glob("*.png"))) == len(list((val / "masks").glob("*.png"))) > 0
    rep = tmp_path / "rep.json"
    assert main(["evaluate", "--model", str(out2), "--data", str(val), "--threads", "1", "--json", str(rep), "-q"]) == 0
    metrics = json.loads(rep.read_text())["metrics"]
    assert metrics["crop_n"] == 2 * metrics["crop_n_fake"] and metrics["mask_iou_n"] == metrics["crop_n_fake"]
    # the same model against its own report: no difference; a file that is not a report is refused up front
    rep2 = tmp_path / "rep2.json"
    assert main(["evaluate", "--model", str(out2), "--data", str(val), "--threads", "1", "--json", str(rep2),
                 "--against", str(rep), "-q"]) == 0
    assert json.loads(rep2.read_text())["against"]["delta"]["all"]["delta_auc"] == 0.0
    assert main(["evaluate", "--model", str(out2), "--data", str(val), "--against", str(out2), "-q"]) == 2


# --------------------------------------------------------------------------------------------------
# Landmark-hull blend masks (the lite0 model's self-blends)
# --------------------------------------------------------------------------------------------------


def _five_points(dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """YuNet-order landmarks (right eye, left eye, nose, right/left mouth corner) of a frontal face."""
    return np.array([[85, 95], [139, 95], [112, 125], [90, 152], [134, 152]], np.float32) + [dx, dy]


def test_landmark_hull_covers_the_inner_face_and_mouth_region_spares_the_eyes() -> None:
    from deepyn_gui.core.training.sbi import landmark_mask

    lm = _five_points()
    face = landmark_mask(lm, 224, np.random.default_rng(0), "face")
    mouth = landmark_mask(lm, 224, np.random.default_rng(0), "mouth")
    for x, y in lm.astype(int):
        assert face[y, x] > 0.5, f"the face hull must cover landmark {(x, y)}"
    for x, y in lm[2:].astype(int):
        assert mouth[y, x] > 0.3, "the mouth hull covers nose tip and mouth corners"
    for x, y in lm[:2].astype(int):
        assert mouth[y, x] < 0.2, "the mouth hull must not reach the eyes"
    assert mouth.sum() < 0.7 * face.sum()
    assert face[0, :].max() == 0 and face[:, -1].max() == 0, "a frontal face hull stays off the crop border"


def test_landmark_hull_follows_the_face() -> None:
    from deepyn_gui.core.training.sbi import hull_points, landmark_mask

    base = landmark_mask(_five_points(), 224, np.random.default_rng(3))
    moved = landmark_mask(_five_points(dx=30, dy=-10), 224, np.random.default_rng(3))

    def centroid(m: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(m)
        return np.array([xs.mean(), ys.mean()])

    np.testing.assert_allclose(centroid(moved) - centroid(base), [30, -10], atol=4.0)  # warp field is per-pixel
    # without jitter the outline is mirror-symmetric for a mirror-symmetric face
    pts = hull_points(_five_points())
    np.testing.assert_allclose(np.sort(224 - pts[:, 0]), np.sort(pts[:, 0]), atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sbi_with_landmarks_changes_only_inside_the_hull_mask(seed: int) -> None:
    img = _astronaut_crop()
    sb = self_blend(img, default_box(), np.random.default_rng(seed), _five_points(), mouth_prob=0.5)
    changed = np.any(sb.image != img, axis=2)
    assert changed.any()
    assert not (changed & (sb.alpha == 0)).any()
    assert sb.alpha[152, 112] > 0, "the mouth is inside every hull (face or mouth region)"


def test_sbi_without_usable_landmarks_falls_back_to_the_box_mask() -> None:
    img = _astronaut_crop()
    nan = np.full((5, 2), np.nan, np.float32)
    a = self_blend(img, default_box(), np.random.default_rng(7), nan)
    b = self_blend(img, default_box(), np.random.default_rng(7))
    assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.image, b.image)


def test_fakes_layout_keeps_only_the_generated_panel() -> None:
    from deepyn_gui.core.training.pool import layout_regions

    assert layout_regions("single output (full frame)") == [(0.0, 1.0)]
    assert layout_regions("side-by-side 2 panels: LEFT = static reference image (input), RIGHT = X output") == [
        (0.5, 1.0)
    ]
    assert layout_regions("3 panels: LEFT = static reference image, MIDDLE = X output, RIGHT = real driving video") \
        == [(1 / 3, 2 / 3)]
    assert layout_regions("screen recording: LEFT = app UI, RIGHT = swapped output video window") == [(0.5, 1.0)]
    # grids that interleave real source/target faces with results are never used as fakes
    assert layout_regions("grid 2x2 triplets: Source | Target | Result") is None
    assert layout_regions("grid of many faces; includes real source/target rows") is None
    prev = layout_regions("training-preview grid: columns src | src-pred | dst | dst-pred | swap")
    assert prev is not None and all(not (lo <= 0.1 <= hi) and not (lo <= 0.5 <= hi) for lo, hi in prev)


def test_lite_batch_is_balanced_and_generated_faces_carry_no_mask() -> None:
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, sample_batch

    crop = _astronaut_crop()
    real = Pool(np.stack([crop, crop[:, ::-1].copy()]), np.stack([default_box()] * 2),
                np.stack([_five_points()] * 2), ["a", "b"], ["real", "real"])
    fake = Pool(np.stack([crop] * 3), np.stack([default_box()] * 3), np.stack([_five_points()] * 3),
                ["g1", "g1", "g2"], ["swap"] * 3)
    cfg = LiteConfig(pairs=3, gen=2)
    imgs, masks, labels, has_mask = sample_batch(real, fake, cfg, np.random.default_rng(0))
    assert imgs.shape == (10, 224, 224, 3) and labels.tolist().count(0) == labels.tolist().count(1) == 5
    assert has_mask.sum() == 8 and not has_mask[labels == 1].all(), "generated fakes have no mask target"
    assert all(masks[i].sum() == 0 for i in range(10) if labels[i] == 0)
    assert all(masks[i].sum() > 0 for i in range(10) if labels[i] == 1 and has_mask[i])


def test_family_metrics_report_each_family_against_the_same_reals(tmp_path: Path) -> None:
    from deepyn_gui.core.training.evaluate import EvalReport, ItemResult, add_family_metrics, read_families

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [
        {"path": "fake/swap.mp4", "label": "fake", "method": "face swap (DeepFaceLive)"},
        {"path": "fake/lips.mp4", "label": "fake", "method": "lip-sync (Wav2Lip)"},
        {"path": "fake/head.mp4", "label": "fake", "method": "fully generated talking head (EMO)"},
        {"path": "real/a.mp4", "label": "real", "method": "none (source footage)"},
    ]}))
    fams = read_families(manifest)
    assert fams == {"swap.mp4": "face swap", "lips.mp4": "lip-sync", "head.mp4": "generated talking head"}
    items = [ItemResult("real/a.mp4", 0, 0.2), ItemResult("real/b.mp4", 0, 0.7),
             ItemResult("fake/swap.mp4", 1, 0.9), ItemResult("fake/lips.mp4", 1, 0.5),
             ItemResult("fake/head.mp4", 1, 0.1)]
    rep = EvalReport("m", "0" * 64, "onnx", 0.6, items, {}, [])
    add_family_metrics(rep, fams)
    assert rep.metrics["real_n"] == 2 and rep.metrics["real_at_or_above_threshold"] == 1
    assert rep.metrics["family[face swap]_auc"] == 1.0  # above both reals
    assert rep.metrics["family[lip-sync]_auc"] == 0.5  # between them
    assert rep.metrics["family[generated talking head]_auc"] == 0.0  # below both: reported, not hidden
    assert rep.metrics["family[face swap]_called_fake"] == 1 and rep.metrics["family[lip-sync]_called_fake"] == 0


def _clip_report(real: np.ndarray, fake: np.ndarray, model: str = "m", extra: tuple[tuple[str, int, float], ...] = ()):  # type: ignore[no-untyped-def]
    """An evaluation report of clips ``real/r<i>.mp4`` and ``fake/f<i>.mp4`` with these scores."""
    from deepyn_gui.core.training.evaluate import EvalReport, ItemResult

    items = [ItemResult(f"real/r{i}.mp4", 0, float(v)) for i, v in enumerate(real)]
    items += [ItemResult(f"fake/f{i}.mp4", 1, float(v)) for i, v in enumerate(fake)]
    items += [ItemResult(p, lab, sc) for p, lab, sc in extra]
    return EvalReport(model, model[0] * 64, "onnx", 0.5, items, {}, [])


def test_auc_interval_brackets_the_auc_narrows_with_more_clips_and_is_repeatable() -> None:
    """The bootstrap interval printed beside every item-level AUC: it contains the AUC, it is narrower
    on more clips of the same separation, the same scores give the same interval, and it is not given
    where it would mean nothing (a class of one)."""
    from deepyn_gui.core.training.calibrate import auc
    from deepyn_gui.core.training.evaluate import add_family_metrics, auc_interval, format_report

    rng = np.random.default_rng(3)
    small_neg, small_pos = rng.normal(0, 1, 17), rng.normal(1, 1, 30)
    big_neg, big_pos = rng.normal(0, 1, 170), rng.normal(1, 1, 300)
    a = auc(np.r_[small_neg, small_pos], np.r_[np.zeros(17), np.ones(30)])
    lo, hi = auc_interval(small_neg.tolist(), small_pos.tolist())  # type: ignore[misc]
    assert lo < a < hi and 0.0 <= lo and hi <= 1.0
    blo, bhi = auc_interval(big_neg.tolist(), big_pos.tolist())  # type: ignore[misc]
    assert (bhi - blo) < 0.6 * (hi - lo)  # ~1/sqrt(10) as wide on 10x the clips
    assert auc_interval(small_neg.tolist(), small_pos.tolist()) == (lo, hi)
    assert auc_interval([0.1], [0.5, 0.9]) is None
    perfect = auc_interval([0.1, 0.2, 0.3], [0.7, 0.8])
    assert perfect == (1.0, 1.0)  # perfectly separated: every resample is too

    rep = _clip_report(small_neg, small_pos)
    add_family_metrics(rep, {f"f{i}.mp4": "face swap" for i in range(30)})
    assert rep.metrics["family[face swap]_auc_ci95_lo"] == pytest.approx(lo)
    text = format_report(rep)
    assert f"(95% bootstrap interval {lo:.2f}-{hi:.2f})" in text and "ci95" not in text


def test_paired_comparison_with_an_earlier_report_is_tighter_than_the_two_intervals(tmp_path: Path) -> None:
    """`deepyn evaluate --against OLD.json`: the AUC difference on the items both reports scored, with a
    paired interval; a model that gains a little on every fake is a gain beyond noise even where the two
    AUC intervals overlap. A file that is not a report is refused with a clear error."""
    from deepyn_gui.core.errors import InputError
    from deepyn_gui.core.training.evaluate import (
        add_comparison,
        auc_interval,
        format_report,
        paired_auc_difference,
    )

    rng = np.random.default_rng(5)
    real, fake = rng.normal(0, 1, 17), rng.normal(0.8, 1, 30)
    old = _clip_report(real, fake, "old")
    (tmp_path / "old.json").write_text(json.dumps(old.to_json()))
    new_fake = fake + 0.4  # the same clips, every fake scored a little higher
    new = _clip_report(real, new_fake, "new", (("fake/only_new.mp4", 1, 0.99),))
    add_comparison(new, tmp_path / "old.json", {f"f{i}.mp4": "face swap" for i in range(15)})
    d = new.against["delta"]["all"]
    assert d["n_real"] == 17 and d["n_fake"] == 30  # the clip only one report scored is left out
    _, hi_old = auc_interval(real.tolist(), fake.tolist())  # type: ignore[misc]
    lo_new, hi_new = auc_interval(real.tolist(), new_fake.tolist())  # type: ignore[misc]
    assert lo_new < hi_old  # the two intervals overlap...
    assert d["delta_auc"] > 0 and d["ci95_lo"] > 0  # ...but the paired difference excludes 0
    assert d["ci95_hi"] - d["ci95_lo"] < (hi_new - lo_new)
    assert new.against["delta"]["face swap"]["n_fake"] == 15 and new.against["model"] == "old"
    assert "against old (oooooooooooo)" in format_report(new)
    assert new.to_json()["against"]["delta"]["all"] == d
    same = paired_auc_difference(old.scores_by_name(), old.scores_by_name())
    assert same is not None and same["delta_auc"] == 0.0 and same["ci95_lo"] == same["ci95_hi"] == 0.0
    (tmp_path / "bad.json").write_text('{"model": "x"}')
    with pytest.raises(InputError, match="not a report written by"):
        add_comparison(new, tmp_path / "bad.json")


def test_validation_only_data_is_refused_for_training(tmp_path: Path) -> None:
    """deepfakes-dev is for validation and reporting only: training refuses it, whichever option names it."""
    from deepyn_gui.cli import main as cli_main
    from deepyn_gui.core.errors import InputError
    from deepyn_gui.core.training.data import refuse_validation_data

    dev = tmp_path / "deepfakes-dev" / "real"
    dev.mkdir(parents=True)
    refuse_validation_data(tmp_path / "real-faces", None)  # an ordinary folder passes
    with pytest.raises(InputError, match="validation and reporting only"):
        refuse_validation_data(tmp_path / "real-faces", dev)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for extra in (["--data", str(dev)], ["--data", str(tmp_path), "--arch", "lite0", "--fakes", str(dev.parent)]):
        rc = cli_main(["train", *extra, "--out", str(tmp_path / "m.onnx"), "--work-dir", str(tmp_path / "w")])
        assert rc == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def _laplacian_var(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F).var())


def test_quality_matching_sharpens_reals_and_softens_generated_faces_only_when_asked() -> None:
    from deepyn_gui.core.training.augment import match_quality

    crop = _astronaut_crop()
    rng = np.random.default_rng(0)
    assert match_quality(crop, True, 0.0, rng) is crop and match_quality(crop, False, 0.0, rng) is crop
    sharper = match_quality(crop, True, 1.0, np.random.default_rng(1))
    softer = match_quality(crop, False, 1.0, np.random.default_rng(1))
    assert sharper.shape == softer.shape == crop.shape and sharper.dtype == softer.dtype == np.uint8
    assert _laplacian_var(sharper) > 1.2 * _laplacian_var(crop) > 1.2 * _laplacian_var(softer)
    # prob 0 draws nothing, so a 2.0-recipe run (quality_match 0) sees the same random stream as before
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    match_quality(crop, True, 0.0, a)
    assert a.random() == b.random()


def test_black_border_finds_the_padding_of_a_face_near_the_frame_edge() -> None:
    """A crop padded with black where the face's square left the frame (extract_crop) has bands of that
    depth; codec noise in the band (values <= 3) still counts, a dark but lit edge does not."""
    from deepyn_gui.core.faces.crops import crop_transform_for_box, extract_crop
    from deepyn_gui.core.training.augment import black_border, with_border

    frame = np.full((200, 300, 3), 120, np.uint8)
    inside = extract_crop(frame, crop_transform_for_box((100.0, 50.0, 100.0, 100.0), margin=1.0, size=224))
    assert black_border(inside) == (0, 0, 0, 0)
    edge = extract_crop(frame, crop_transform_for_box((-50.0, 50.0, 100.0, 100.0), margin=1.0, size=224))
    top, bottom, left, right = black_border(edge)  # the left half of the square is outside the frame
    assert (top, bottom, right) == (0, 0, 0) and 108 <= left <= 116
    noisy = with_border(_astronaut_crop(), (10, 0, 0, 20))
    noisy[:10] = np.random.default_rng(0).integers(0, 4, noisy[:10].shape)
    assert black_border(noisy) == (10, 0, 0, 20)
    dim = _astronaut_crop().copy()
    dim[:5] = 4
    assert black_border(dim)[0] == 0


def test_border_matching_gives_generated_crops_the_bands_of_real_ones_only_when_asked() -> None:
    """`--border-match P`: a generated crop takes the black edge bands of a random real crop with
    probability P, so "no band" stops meaning fake; P 0 draws nothing (2.x recipes' stream unchanged)."""
    from deepyn_gui.core.training.augment import black_border, match_border, with_border

    gen = _astronaut_crop()
    reals = np.stack([with_border(_astronaut_crop(), (0, 0, 30, 0)), with_border(_astronaut_crop(), (12, 0, 0, 0))])
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert match_border(gen, reals, 0.0, a) is gen
    assert a.random() == b.random()
    seen = {black_border(match_border(gen, reals, 1.0, np.random.default_rng(i))) for i in range(20)}
    assert seen == {(0, 0, 30, 0), (12, 0, 0, 0)}  # exactly the real crops' bands, both drawn
    assert black_border(gen) == (0, 0, 0, 0)  # the pool's crop itself is not modified
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, sample_batch

    n = len(reals)
    real = Pool(reals, np.stack([default_box()] * n), np.stack([_five_points()] * n), ["a", "b"], ["real"] * n)
    fake = Pool(gen[None], np.stack([default_box()]), np.stack([_five_points()]), ["g1"], ["swap"])
    for prob, banded in ((1.0, 8), (0.0, 0)):
        imgs, _, labels, has_mask = sample_batch(real, fake, LiteConfig(pairs=1, gen=8, border_match=prob),
                                                 np.random.default_rng(3))
        generated = imgs[(labels == 1) & ~has_mask]
        # after the nuisances (JPEG, resampling) a band is near-black, not exactly 0
        dark = [min(g[:, :8].mean(), g[:, -8:].mean(), g[:8].mean()) < 12 for g in generated]
        assert len(generated) == 8 and sum(dark) == banded


def test_lowres_codec_recodes_crops_like_a_small_face_in_a_compressed_video_only_when_asked() -> None:
    """`--lowres-codec P`: a crop is shrunk to a 64-160 px face, JPEG-coded and enlarged back (what inference
    does with a small face in a compressed clip); P 0 returns the batch untouched and draws nothing."""
    from deepyn_gui.core.training.augment import lowres_codec, lowres_codec_batch

    crop = _astronaut_crop()
    out = lowres_codec(crop, np.random.default_rng(0))
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert _laplacian_var(out) < 0.5 * _laplacian_var(crop)  # the detail of 224 px is gone
    assert np.array_equal(out, lowres_codec(crop, np.random.default_rng(0)))  # seeded: reproducible
    batch = np.stack([crop, crop[:, ::-1].copy(), crop])
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert lowres_codec_batch(batch, 0.0, a) is batch
    assert a.random() == b.random()
    every = lowres_codec_batch(batch, 1.0, np.random.default_rng(1))
    assert all(not np.array_equal(x, y) for x, y in zip(every, batch))
    assert np.array_equal(batch[0], crop)  # the pool's crops are not modified
    some = [sum(not np.array_equal(x, y) for x, y in zip(lowres_codec_batch(batch, 0.5, np.random.default_rng(i)), batch))
            for i in range(20)]
    assert 0 < sum(some) < 60


def test_lowres_codec_option_is_validated_and_reaches_the_config() -> None:
    import argparse

    from deepyn_gui.commands import train as train_cmd
    from deepyn_gui.core.errors import InputError

    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())

    def cfg(*extra: str) -> object:
        return train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0", *extra]))

    with pytest.raises(InputError, match="--lowres-codec"):
        cfg("--lowres-codec", "1.5")
    for flag in ("--quality-match", "--border-match", "--photo-share"):
        with pytest.raises(InputError, match=flag):
            cfg(flag, "-0.1")
    assert cfg("--lowres-codec", "0.3").lowres_codec == 0.3  # type: ignore[attr-defined]
    assert cfg().lowres_codec == 0.0  # type: ignore[attr-defined]  # off unless asked: 2.x recipes unchanged
    assert cfg("--init-from", "x.pt", "--lowres-codec", "0.3").lowres_codec == 0.3  # type: ignore[attr-defined]


def test_lowres_codec_not_generated_recodes_reals_and_self_blends_never_generated_faces() -> None:
    """`--lowres-codec-not-generated P`: generated faces are nearly all low-resolution video already, so the
    look is given to the other side only: real crops and self-blends (has a mask), never a generated face."""
    from deepyn_gui.core.training.train_lite import LiteConfig, recode_batch

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 224, 224, 3), dtype=np.uint8)
    before = imgs.copy()
    has_mask = np.array([True, True, False, True, False, True])
    off = recode_batch(imgs, has_mask, LiteConfig(), 0, 0)
    assert np.array_equal(off, imgs)  # off by default: the 2.x recipes see the same batches
    on = recode_batch(imgs, has_mask, LiteConfig(lowres_codec_not_generated=1.0), 0, 0)
    changed = [not np.array_equal(a, b) for a, b in zip(on, imgs)]
    assert changed == list(has_mask)
    assert np.array_equal(on, recode_batch(imgs, has_mask, LiteConfig(lowres_codec_not_generated=1.0), 0, 0))
    assert np.array_equal(imgs, before)  # the caller's batch is not modified
    import argparse

    from deepyn_gui.commands import train as train_cmd
    from deepyn_gui.core.errors import InputError

    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--arch", "lite0", "--lowres-codec-not-generated", "0.5"])
    assert train_cmd.lite_config(args).lowres_codec_not_generated == 0.5
    with pytest.raises(InputError, match="--lowres-codec-not-generated"):
        train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0", "--lowres-codec-not-generated", "2"]))


def test_head_region_follows_the_landmarks_and_swap_background_keeps_the_head() -> None:
    """The head mask (widened, feathered landmark hull) is 1 on the face and 0 in the crop's corners;
    missing landmarks give None; a swap keeps the head's pixels and takes the donor's background."""
    from deepyn_gui.core.training.augment import head_region, swap_background

    pts = _five_points()
    head = head_region(pts, 224)
    assert head is not None and head.shape == (224, 224) and head.dtype == np.float32
    centre = np.round(pts.mean(axis=0)).astype(int)
    assert head[centre[1], centre[0]] == pytest.approx(1.0)
    assert head[:12, :12].max() == 0.0 and head[-12:, -12:].max() == 0.0
    assert 0.0 < head.mean() < 0.8  # the head, not the whole crop
    moved = head_region(_five_points(dx=30.0), 224)
    assert moved is not None and not np.array_equal(moved, head)  # it follows the face
    assert head_region(np.full((5, 2), np.nan, np.float32), 224) is None
    face = np.full((224, 224, 3), 200, np.uint8)
    donor = np.full((224, 224, 3), 10, np.uint8)
    out = swap_background(face, head, donor)
    assert out[centre[1], centre[0]].tolist() == [200, 200, 200]
    assert out[0, 0].tolist() == [10, 10, 10]
    assert face[0, 0].tolist() == [200, 200, 200]  # the inputs are not modified


def test_bg_swap_changes_backgrounds_of_both_classes_only_when_asked() -> None:
    """`--bg-swap P`: off by default and drawn from its own generator, so the 2.x recipes see exactly the
    same batches; at 1.0 every real crop, self-blend and generated face gets another crop's background."""
    import argparse

    from deepyn_gui.commands import train as train_cmd
    from deepyn_gui.core.errors import InputError
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, sample_batch

    reals = np.full((2, 224, 224, 3), 230, np.uint8)
    gens = np.full((1, 224, 224, 3), 20, np.uint8)
    real = Pool(reals, np.stack([default_box()] * 2), np.stack([_five_points()] * 2), ["a", "b"], ["real"] * 2)
    fake = Pool(gens, np.stack([default_box()]), np.stack([_five_points()]), ["g1"], ["swap"])
    cfg = LiteConfig(pairs=2, gen=2)
    plain = sample_batch(real, fake, cfg, np.random.default_rng(3))
    with_rng = sample_batch(real, fake, cfg, np.random.default_rng(3), np.random.default_rng(9))
    for a, b in zip(plain, with_rng):
        assert np.array_equal(a, b)  # bg_swap 0: the background generator changes nothing
    imgs, _, labels, has_mask = sample_batch(real, fake, LiteConfig(pairs=2, gen=2, bg_swap=1.0),
                                             np.random.default_rng(3), np.random.default_rng(9))
    bright_corner = imgs[:, :10, :10].reshape(len(imgs), -1).mean(axis=1) > 125
    bright_face = imgs[:, 100:124, 100:124].reshape(len(imgs), -1).mean(axis=1) > 125
    generated = (labels == 1) & ~has_mask
    assert bright_face[~generated].all() and not bright_face[generated].any()  # faces stay where they were
    # reals' own background is ~230, generated faces' ~20; donors come from either pool with equal odds,
    # so over 8 crops some backgrounds crossed sides (chance of none: 2**-8)
    assert (bright_corner != bright_face).any()
    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())
    assert train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0", "--bg-swap", "0.5"])).bg_swap == 0.5
    assert train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0"])).bg_swap == 0.0
    with pytest.raises(InputError, match="--bg-swap"):
        train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0", "--bg-swap", "1.5"]))


def test_gen_tiles_shuffles_generated_faces_and_their_paired_reals_never_self_blends() -> None:
    """`--gen-tiles P`: a jigsaw of the generated faces and of the real crops drawn beside them (the same
    pixels in another order); self-blend pairs keep their layout; off by default, from its own generator."""
    import argparse

    from deepyn_gui.commands import train as train_cmd
    from deepyn_gui.core.errors import InputError
    from deepyn_gui.core.training.augment import shuffle_tiles
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, sample_batch

    img = np.arange(224 * 224 * 3, dtype=np.uint32).reshape(224, 224, 3)
    out = shuffle_tiles(img, np.random.default_rng(0))
    assert not np.array_equal(out, img) and np.array_equal(np.sort(out, axis=None), np.sort(img, axis=None))
    tiles = {out[r:r + 56, c:c + 56].tobytes() for r in range(0, 224, 56) for c in range(0, 224, 56)}
    assert tiles == {img[r:r + 56, c:c + 56].tobytes() for r in range(0, 224, 56) for c in range(0, 224, 56)}
    # a crop whose top-left tile is white and the rest black: a shuffle moves the white tile 15 times in 16
    crop = np.zeros((224, 224, 3), np.uint8)
    crop[:56, :56] = 255
    real = Pool(np.stack([crop] * 2), np.stack([default_box()] * 2), np.stack([_five_points()] * 2), ["a", "b"],
                ["real"] * 2)
    fake = Pool(crop[None], np.stack([default_box()]), np.stack([_five_points()]), ["g1"], ["swap"])
    plain = sample_batch(real, fake, LiteConfig(pairs=2, gen=4), np.random.default_rng(3))
    with_rng = sample_batch(real, fake, LiteConfig(pairs=2, gen=4), np.random.default_rng(3), None,
                            np.random.default_rng(4))
    assert all(np.array_equal(a, b) for a, b in zip(plain, with_rng))  # off: the batches are unchanged
    imgs, _, _, _ = sample_batch(real, fake, LiteConfig(pairs=2, gen=4, gen_tiles=1.0),
                                 np.random.default_rng(3), None, np.random.default_rng(4))
    corner_kept = [max(x[:56, :56].mean(), x[:56, -56:].mean()) > 60 for x in imgs]  # either side: flips
    assert all(corner_kept[:4])  # the two self-blend pairs come first and keep their layout
    assert not all(corner_kept[4:])  # the generated faces and the reals drawn beside them were shuffled
    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())
    assert train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0", "--gen-tiles", "1"])).gen_tiles == 1.0
    with pytest.raises(InputError, match="--gen-tiles"):
        train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0", "--gen-tiles", "-1"]))


def test_real_videos_kept_keeps_every_photo_and_the_first_videos_by_name_hash() -> None:
    """`--real-videos-kept N` (a learning-curve diagnostic): all photo crops stay, and exactly the crops of the
    N videos first by SHA-256 of their names, a choice that does not depend on the pool's order."""
    import argparse
    import hashlib

    from deepyn_gui.commands import train as train_cmd
    from deepyn_gui.core.errors import InputError
    from deepyn_gui.core.training.train_lite import Pool, keep_real_videos

    groups = ["p1", "v1", "v1", "p2", "v2", "v3", "v3", "v3", "v4"]
    families = ["real-photo" if g.startswith("p") else "real-video" for g in groups]
    n = len(groups)
    crops = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    real = Pool(crops, np.zeros((n, 4), np.float32), np.zeros((n, 5, 2), np.float32), groups, families)
    by_hash = sorted({"v1", "v2", "v3", "v4"}, key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    kept = keep_real_videos(real, 2)
    assert set(kept.groups) == {"p1", "p2", *by_hash[:2]}
    assert len(kept) == 2 + sum(groups.count(g) for g in by_hash[:2])  # every crop of a kept video
    order = [8, 3, 0, 5, 1, 7, 2, 6, 4]
    shuffled = Pool(crops[order], real.boxes[order], real.landmarks[order], [groups[i] for i in order],
                    [families[i] for i in order])
    assert set(keep_real_videos(shuffled, 2).groups) == set(kept.groups)
    assert len(keep_real_videos(real, 4)) == n
    for bad in (0, 5):
        with pytest.raises(InputError, match="--real-videos-kept"):
            keep_real_videos(real, bad)
    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--arch", "lite0", "--real-videos-kept", "12"])
    assert train_cmd.lite_config(args).real_videos_kept == 12
    assert train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0"])).real_videos_kept is None
    with pytest.raises(InputError, match="--real-videos-kept"):
        train_cmd.lite_config(parser.parse_args(["train", "--arch", "lite0", "--real-videos-kept", "0"]))


def test_held_out_real_flag_rates_are_split_into_photos_and_video_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training run reports the share of unseen real crops at or above its own threshold and top
    band, photos and video frames apart (calibration's reals are mostly photos; users analyse video)."""
    from deepyn_gui.core.training import train_lite as tl

    scores = np.array([0.1, 0.9, 0.2, 0.95, 0.99, 0.5])
    families = ["real-photo", "real-photo", "real-video", "real-video", "real-video", "real-video"]
    crops = np.stack([np.full((8, 8, 3), i, np.uint8) for i in range(len(scores))])  # crop i scores scores[i]
    real = tl.Pool(crops, np.zeros((6, 4)), np.zeros((6, 5, 2)), [f"g{i}" for i in range(6)], families)
    monkeypatch.setattr(tl, "scores_of", lambda model, imgs: (scores[imgs[:, 0, 0, 0]], None))
    cal = {"threshold": 0.9, "bands": [[0.0, 0.3, "low", ""], [0.3, 0.9, "mid", ""], [0.9, 0.97, "elevated", ""],
                                       [0.97, 1.0, "high", ""]]}
    got = tl.heldout_real_flagged(None, real, cal)  # type: ignore[arg-type]
    assert got["real-photo_at_threshold"] == 0.5 and got["real-video_at_threshold"] == 0.5
    assert got["all_at_threshold"] == pytest.approx(3 / 6) and got["all_at_top_band"] == pytest.approx(1 / 6)
    assert got["real-video_at_top_band"] == 0.25 and got["real-photo_at_top_band"] == 0.0
    assert (got["real-photo_crops"], got["real-video_crops"], got["all_crops"]) == (2, 4, 6)


def _first_stage_and_tiny_pools(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A lite0 "first stage" (neither ImageNet nor a fresh initialisation) saved as a training checkpoint,
    and two-crop real and generated pools: what the second-stage tests start from."""
    import torch

    from deepyn_gui.core.model.uynet_lite import LiteUYNet
    from deepyn_gui.core.training.train_lite import Pool

    first = LiteUYNet()
    with torch.no_grad():
        for p in first.parameters():
            p.add_(0.0125)
    crop = _astronaut_crop()
    real = Pool(np.stack([crop, crop[:, ::-1].copy()]), np.stack([default_box()] * 2),
                np.stack([_five_points()] * 2), ["a", "b"], ["real", "real"])
    fake = Pool(np.stack([crop] * 2), np.stack([default_box()] * 2), np.stack([_five_points()] * 2),
                ["g1", "g2"], ["swap"] * 2)
    ck = tmp_path / "first.pt"
    torch.save({"model": first.state_dict(), "epoch": 4, "arch": "lite0"}, ck)
    return first, real, fake, ck


def test_second_stage_starts_from_a_lite0_checkpoint_and_refuses_other_checkpoints(tmp_path: Path) -> None:
    import torch

    from deepyn_gui.core.errors import ModelError
    from deepyn_gui.core.training.train_lite import LiteConfig, train_lite

    first, real, fake, ck = _first_stage_and_tiny_pools(tmp_path)
    cfg = LiteConfig(epochs=1, steps_per_epoch=1, pairs=1, gen=1, lr=0.0, encoder_lr=0.0, threads=1,
                     quality_match=0.5)
    res = train_lite(real, fake, cfg, tmp_path / "stage2", init_from=ck, log=lambda s: None)
    got, want = res.model.state_dict(), first.state_dict()
    # learning rate 0: the weights are the checkpoint's, not ImageNet's (BatchNorm statistics move in train mode)
    same = [k for k in want if "running_" not in k and "num_batches" not in k]
    assert same and all(torch.equal(got[k], want[k]) for k in same)
    torch.save({"model": first.state_dict(), "epoch": 4, "arch": "uynet"}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a lite0"):
        train_lite(real, fake, cfg, tmp_path / "s3", init_from=tmp_path / "other.pt", log=lambda s: None)


def test_model_soup_is_the_mean_of_the_runs_and_refuses_what_it_cannot_average(tmp_path: Path) -> None:
    import torch

    from deepyn_gui.core.errors import InputError, ModelError
    from deepyn_gui.core.model.uynet_lite import LiteUYNet
    from deepyn_gui.core.training.train_lite import soup_lite

    a, b = LiteUYNet(), LiteUYNet()
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1.0)
    for name, m in (("a", a), ("b", b)):
        torch.save({"model": m.state_dict(), "epoch": 2, "arch": "lite0"}, tmp_path / f"{name}.pt")
    soup = soup_lite([tmp_path / "a.pt", tmp_path / "b.pt"]).state_dict()
    sa, sb = a.state_dict(), b.state_dict()
    for k, v in soup.items():
        if torch.is_floating_point(v):
            assert torch.allclose(v, (sa[k] + sb[k]) / 2, atol=1e-6), k
        else:
            assert torch.equal(v, sa[k]), k  # step counters come from the first run
    with pytest.raises(InputError):
        soup_lite([tmp_path / "a.pt"])
    torch.save({"model": a.state_dict(), "epoch": 2, "arch": "uynet"}, tmp_path / "c.pt")
    with pytest.raises(ModelError, match="not a lite0"):
        soup_lite([tmp_path / "a.pt", tmp_path / "c.pt"])


def test_a_soup_checkpoint_loads_as_the_start_of_a_later_stage(tmp_path: Path) -> None:
    """Recipe 2.2-trial starts its third stage from the stage-2 soup: the saved soup is a lite0 checkpoint
    (weights only) holding exactly the averaged weights, and it names its ingredients."""
    import json

    import torch

    from deepyn_gui.core.model.uynet_lite import LiteUYNet
    from deepyn_gui.core.training.train import load_checkpoint_state
    from deepyn_gui.core.training.train_lite import save_soup_checkpoint, soup_lite

    a, b = LiteUYNet(), LiteUYNet()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(-1.0)
    for name, m in (("a", a), ("b", b)):
        torch.save({"model": m.state_dict(), "epoch": 2, "arch": "lite0"}, tmp_path / f"{name}.pt")
    path = save_soup_checkpoint([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "soup.pt")
    state = load_checkpoint_state(path)
    assert state["arch"] == "lite0" and state["epoch"] == 0
    assert [d["file"] for d in json.loads(str(state["soup_of"]))] == [str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]
    want = soup_lite([tmp_path / "a.pt", tmp_path / "b.pt"]).state_dict()
    got = state["model"]
    assert isinstance(got, dict) and set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    conv = "_conv_stem.weight"
    assert torch.count_nonzero(got[conv]) == 0  # w and -w average to zero: really the mean, not a copy


def _fake_stage_training(calls: list[dict[str, object]], interrupt: set[str]):  # type: ignore[no-untyped-def]
    """Stands in for ``train_lite_from_folders`` in the recipe tests: records each call, writes the
    checkpoints a finished stage leaves, and stops (like a killed machine) in the stages named in
    ``interrupt``, once each, after writing their ``last.pt``."""

    def fake_train(real_dirs, fakes_dir, out, cfg, work_dir, yunet, **kw):  # type: ignore[no-untyped-def]
        calls.append({"out": Path(out).name, "cfg": cfg, **kw})
        if kw.get("soup"):
            assert all(Path(c).exists() for c in kw["soup"]), "the soup only averages finished runs"
            return {"calibration": {"threshold": 0.5}}
        ck = Path(kw["ckpt_dir"])
        ck.mkdir(parents=True, exist_ok=True)
        (ck / "last.pt").write_bytes(b"x")
        if ck.name in interrupt:
            interrupt.discard(ck.name)
            raise KeyboardInterrupt
        (ck / f"epoch_{cfg.epochs:03d}.pt").write_bytes(b"x")
        return {"calibration": {"threshold": 0.5}}

    return fake_train


def test_recipe_2_1_runs_every_stage_once_resumes_and_soups_all_runs(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`deepyn train --arch lite0 --recipe 2.1`: stage 1, the seven second-stage runs from its last
    checkpoint, then their soup; a rerun skips what is finished and resumes what was interrupted."""
    from deepyn_gui.core.training import train_lite as tl

    calls: list[dict[str, object]] = []
    interrupt = {"stage2-D"}

    fake_train = _fake_stage_training(calls, interrupt)  # the machine stops during run D's first epoch
    monkeypatch.setattr(tl, "train_lite_from_folders", fake_train)
    work = tmp_path / "work"

    def recipe() -> None:
        tl.train_lite_recipe(["real"], "fakes", tmp_path / "m.onnx", work, "yunet.onnx", log=lambda s: None)

    with pytest.raises(KeyboardInterrupt):
        recipe()
    assert [c["out"] for c in calls] == ["stage1.onnx", "stage2-A.onnx", "stage2-B.onnx", "stage2-D.onnx"]
    assert calls[0]["cfg"].epochs == 4 and calls[0]["resume"] is None  # type: ignore[attr-defined]
    calls.clear()
    recipe()  # the same command again: D resumes from its last.pt, the rest follows, then the soup
    assert [c["out"] for c in calls] == [f"stage2-{r}.onnx" for r in "DEFGH"] + ["m.onnx"]
    assert calls[0]["resume"] == work / "stage2-D" / "last.pt"
    stage1 = work / "stage1" / "epoch_004.pt"
    by_name = {r.name: r for r in tl.RECIPE_2_1}
    for c in calls[:5]:
        run, cfg = by_name[str(c["out"])[7]], c["cfg"]
        assert c["init_from"] == stage1 and cfg.epochs == 2 and cfg.seed == run.seed  # type: ignore[attr-defined]
        assert cfg.gen == run.gen and cfg.quality_match == run.quality_match  # type: ignore[attr-defined]
        assert cfg.lr == pytest.approx(tl.LiteConfig().lr / 3) and cfg.warmup_steps == 20  # type: ignore[attr-defined]
        assert not cfg.gen_head  # type: ignore[attr-defined]
        assert (c["holdout"] == ()) == run.all_generators
    soup = calls[-1]
    assert soup["soup"] == [work / f"stage2-{r.name}" / "epoch_002.pt" for r in tl.RECIPE_2_1]
    assert soup["holdout"] == ()  # some runs saw every generator: no generator is held out of the soup
    calls.clear()
    recipe()  # everything finished: only the soup is made again
    assert [c["out"] for c in calls] == ["m.onnx"]


def test_recipe_2_2_trial_trains_long_runs_from_the_stage_2_soup_and_exports_their_soup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--recipe 2.2-trial`: after 2.1's stages, the stage-2 soup is saved as a checkpoint, both 12-epoch
    runs start from it (on every generator), and the exported model is their soup, labelled 2.2-trial."""
    from deepyn_gui.core.training import train_lite as tl

    calls: list[dict[str, object]] = []
    soups: list[tuple[list[Path], Path]] = []
    interrupt = {"stage3-Y"}

    fake_train = _fake_stage_training(calls, interrupt)
    def fake_soup(checkpoints, path):  # type: ignore[no-untyped-def]
        assert all(Path(c).exists() for c in checkpoints)
        soups.append((list(checkpoints), Path(path)))
        Path(path).write_bytes(b"soup")
        return Path(path)

    monkeypatch.setattr(tl, "train_lite_from_folders", fake_train)
    monkeypatch.setattr(tl, "save_soup_checkpoint", fake_soup)
    work = tmp_path / "work"

    def recipe() -> None:
        tl.train_lite_recipe(["real"], "fakes", tmp_path / "m.onnx", work, "yunet.onnx",
                             recipe=tl.RECIPES["2.2-trial"], log=lambda s: None)

    with pytest.raises(KeyboardInterrupt):
        recipe()
    stage2 = [f"stage2-{r.name}.onnx" for r in tl.RECIPE_2_1]
    assert [c["out"] for c in calls] == ["stage1.onnx", *stage2, "stage3-X.onnx", "stage3-Y.onnx"]
    assert soups == [([work / f"stage2-{r.name}" / "epoch_002.pt" for r in tl.RECIPE_2_1], work / "soup-stage2.pt")]
    calls.clear()
    recipe()  # resumes Y, then the final soup
    assert [c["out"] for c in calls] == ["stage3-Y.onnx", "m.onnx"]
    y, final = calls
    assert y["init_from"] == work / "soup-stage2.pt" and y["resume"] == work / "stage3-Y" / "last.pt"
    assert y["holdout"] == () and y["cfg"].epochs == 12 and y["cfg"].seed == 6  # type: ignore[attr-defined]
    assert y["cfg"].lr == pytest.approx(tl.LiteConfig().lr / 3)  # type: ignore[attr-defined]
    assert final["soup"] == [work / "stage3-X" / "epoch_012.pt", work / "stage3-Y" / "epoch_012.pt"]
    assert final["holdout"] == () and final["version"] == "2.2-trial"


def test_lite0_command_line_options_reach_the_training_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`deepyn train --arch lite0`: the second-stage options become the run's configuration, a recipe
    name selects that recipe, and an impossible --freeze-blocks is refused before anything runs."""
    from deepyn_gui.cli import main
    from deepyn_gui.core.training import train_lite as tl

    seen: dict[str, object] = {}

    def fake_train(real_dirs, fakes_dir, out, cfg, work_dir, yunet, **kw):  # type: ignore[no-untyped-def]
        seen.update(cfg=cfg, **kw)
        return {"calibration": {"threshold": 0.5}, "figures": {}, "seconds": 1.0, "train_seconds": 1.0}

    def fake_recipe(real_dirs, fakes_dir, out, work_dir, yunet, **kw):  # type: ignore[no-untyped-def]
        seen.update(recipe=kw["recipe"])
        return {"calibration": {"threshold": 0.5}}

    monkeypatch.setattr(tl, "train_lite_from_folders", fake_train)
    monkeypatch.setattr(tl, "train_lite_recipe", fake_recipe)
    (tmp_path / "reals").mkdir()
    base = ["train", "--arch", "lite0", "--data", str(tmp_path / "reals"), "--fakes", str(tmp_path / "reals"),
            "--yunet", "y.onnx", "--out", str(tmp_path / "m.onnx"), "--work-dir", str(tmp_path / "w")]
    assert main([*base, "--init-from", "s1.pt", "--epochs", "2", "--freeze-blocks", "12", "--gen", "4",
                 "--quality-match", "0.5", "--seed", "3", "--gen-head"]) == 0
    cfg = seen["cfg"]
    assert isinstance(cfg, tl.LiteConfig)
    assert (cfg.freeze_blocks, cfg.gen, cfg.quality_match, cfg.seed, cfg.epochs) == (12, 4, 0.5, 3, 2)
    assert cfg.gen_head and not tl.LiteConfig().gen_head and seen["flip_average"] is False
    assert cfg.lr == pytest.approx(tl.LiteConfig().lr / 3) and seen["init_from"] == "s1.pt"  # a second stage
    assert (seen["real_frames"], seen["fake_frames"]) == (40, 24)  # the pool of every shipped model
    assert main([*base, "--soup", "a.pt", "b.pt", "--flip-average", "--real-frames", "120", "--fake-frames", "72"]) == 0
    assert seen["flip_average"] is True and seen["soup"] == ["a.pt", "b.pt"]
    assert (seen["real_frames"], seen["fake_frames"]) == (120, 72)
    assert main([*base, "--photo-share", "0.16", "--balance-real-groups"]) == 0
    cfg = seen["cfg"]
    assert cfg.photo_share == 0.16 and cfg.balance_real_groups  # type: ignore[attr-defined]
    seen.clear()
    assert main([*base, "--photo-share", "1.5"]) == 2 and not seen
    assert main([*base, "--recipe", "2.2-trial"]) == 0
    assert seen["recipe"] is tl.RECIPES["2.2-trial"]
    seen.clear()
    assert main([*base, "--freeze-blocks", "17"]) == 2 and not seen


def test_generated_head_learns_three_classes_and_a_second_stage_can_add_it(tmp_path: Path) -> None:
    """`--gen-head`: the class loss tells self-blends (fakes with a mask target) from generated faces
    (fakes without one); a one-head checkpoint gains the head without any score moving; checkpoints with
    the head soup and reload; a run without --gen-head refuses a checkpoint that has it."""
    import torch

    from deepyn_gui.core.errors import ModelError
    from deepyn_gui.core.model.checkpoint import load_lite_checkpoint
    from deepyn_gui.core.training.train_lite import LiteConfig, soup_lite, three_way_loss, train_lite

    cfg = LiteConfig()
    fake_t = torch.tensor([0.0, 1.0, 1.0])  # real, self-blend (has a mask), generated (none)
    has_mask = torch.tensor([True, True, False])
    mask_logits, mask_t = torch.zeros(3, 2, 4, 4), torch.zeros(3, 4, 4, dtype=torch.long)
    right = three_way_loss(mask_logits, torch.tensor([-9.0, 9.0, -9.0]), torch.tensor([-9.0, -9.0, 9.0]),
                           mask_t, fake_t, has_mask, cfg)[2]
    swapped = three_way_loss(mask_logits, torch.tensor([-9.0, -9.0, 9.0]), torch.tensor([-9.0, 9.0, -9.0]),
                             mask_t, fake_t, has_mask, cfg)[2]
    assert float(right) < 0.01 and float(swapped) > 5.0

    first, real, fake, ck = _first_stage_and_tiny_pools(tmp_path)
    run = LiteConfig(epochs=1, steps_per_epoch=1, pairs=1, gen=1, lr=0.0, encoder_lr=0.0, threads=1, gen_head=True)
    res = train_lite(real, fake, run, tmp_path / "g", init_from=ck, log=lambda s: None)
    assert res.model.gen_classifier is not None
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    first.eval()
    with torch.no_grad():  # learning rate 0 and eval mode: the split head gives the first stage's scores
        res.model.load_state_dict({**res.model.state_dict(), **{k: v for k, v in first.state_dict().items()
                                                                  if "running_" in k or "num_batches" in k}})
        torch.testing.assert_close(res.model.eval()(x)[1], first(x)[1], atol=1e-5, rtol=0)
    last = tmp_path / "g" / "last.pt"
    assert "gen_classifier.weight" in load_lite_checkpoint(last)
    soup = soup_lite([last, last])
    assert soup.gen_classifier is not None
    with pytest.raises(ModelError, match="generated head"):
        train_lite(real, fake, replace(run, gen_head=False), tmp_path / "h", init_from=last, log=lambda s: None)


def test_gen_head_trial_reruns_the_2_1_runs_with_the_generated_head(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`--recipe gen-head-trial`: the seven 2.1 runs with the same seeds and mixes (so the same batches)
    and a generated head each, from the same stage 1, then their soup."""
    from deepyn_gui.core.training import train_lite as tl

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(tl, "train_lite_from_folders", _fake_stage_training(calls, set()))
    tl.train_lite_recipe(["real"], "fakes", tmp_path / "m.onnx", tmp_path / "w", "yunet.onnx",
                         recipe=tl.RECIPES["gen-head-trial"], log=lambda s: None)
    runs = calls[1:-1]
    assert [c["out"] for c in runs] == [f"stage2-{r.name}.onnx" for r in tl.RECIPE_2_1]
    for c, old in zip(runs, tl.RECIPE_2_1):
        cfg = c["cfg"]
        assert cfg.gen_head and (cfg.seed, cfg.gen, cfg.quality_match) == (old.seed, old.gen, old.quality_match)  # type: ignore[attr-defined]
    assert calls[-1]["version"] == "gen-head-trial"


def test_recipe_pool_sizes_reach_every_stage_and_the_soup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recipe carries its crop pool (frames per real / generated video): stage 1, every stage-2 run and
    the soup's calibration draw the same pool (2.3/2.4/2.5-trial: 120 real frames per clip; 2.1: 40), and
    2.5-trial's border matching reaches stage 1 and every stage-2 run; 2.7-trial's low-resolution codec
    reaches every stage-2 run and not stage 1 (it reuses 2.1's)."""
    from deepyn_gui.core.training import train_lite as tl

    for name, real_frames, gen_head, border, lowres in (
            ("2.3-trial", 120, False, 0.0, 0.0), ("2.4-trial", 120, True, 0.0, 0.0), ("2.5-trial", 120, False, 0.5, 0.0),
            ("2.1", 40, False, 0.0, 0.0), ("2.7-trial", 40, False, 0.0, 0.3)):
        calls: list[dict[str, object]] = []
        monkeypatch.setattr(tl, "train_lite_from_folders", _fake_stage_training(calls, set()))
        tl.train_lite_recipe(["real"], "fakes", tmp_path / "m.onnx", tmp_path / name, "yunet.onnx",
                             recipe=tl.RECIPES[name], log=lambda s: None)
        assert len(calls) == 1 + len(tl.RECIPE_2_1) + 1
        assert [(c["real_frames"], c["fake_frames"]) for c in calls] == [(real_frames, 24)] * len(calls)
        assert calls[-1]["version"] == name
        runs = calls[1:-1]
        assert [c["cfg"].gen_head for c in runs] == [gen_head] * len(runs)  # type: ignore[attr-defined]
        # border matching (2.5-trial) is a training augmentation: stage 1 and every stage-2 run carry it
        assert [c["cfg"].border_match for c in calls[:-1]] == [border] * (len(calls) - 1)  # type: ignore[attr-defined]
        assert [c["cfg"].lowres_codec for c in calls[:-1]] == [0.0] + [lowres] * len(runs)  # type: ignore[attr-defined]
        assert [(c["cfg"].seed, c["cfg"].gen, c["cfg"].quality_match) for c in runs] == [  # type: ignore[attr-defined]
            (r.seed, r.gen, r.quality_match) for r in tl.RECIPE_2_1]  # the same seven runs: only pool and head differ


def test_h16_recipe_holds_ten_more_real_videos_out_of_every_stage_and_calibrates_on_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--recipe 2.1-h16-trial`: stage 1, every stage-2 run and the soup's calibration use the same split with
    the ten extra held-out videos (a video trained on in one stage must not calibrate the soup); 2.1 holds none."""
    from deepyn_gui.core.training import train_lite as tl

    for name, extra in (("2.1-h16-trial", tl.EXTRA_VAL_VIDEOS_H16), ("2.1", ())):
        calls: list[dict[str, object]] = []
        monkeypatch.setattr(tl, "train_lite_from_folders", _fake_stage_training(calls, set()))
        tl.train_lite_recipe(["real"], "fakes", tmp_path / "m.onnx", tmp_path / name, "yunet.onnx",
                             recipe=tl.RECIPES[name], log=lambda s: None)
        assert len(calls) == 9 and [c["extra_val_real"] for c in calls] == [extra] * 9
    assert len(set(tl.EXTRA_VAL_VIDEOS_H16)) == 10 and not set(tl.EXTRA_VAL_VIDEOS_H16) & set(tl.DEFAULT_VAL_IDS)


def test_group_balanced_real_sampling_weighs_a_long_clip_like_one_photo() -> None:
    """`--balance-real-groups`: a clip that gave 30 crops is drawn as often as a photo that gave one;
    without it every crop is equally likely (the shipped models' sampling, random stream unchanged)."""
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, sample_batch

    clip_crop = _astronaut_crop()
    photo_crop = np.full_like(clip_crop, 245)  # a flat bright "photo": recognisable after any nuisance
    n_clip = 30
    real = Pool(np.stack([clip_crop] * n_clip + [photo_crop]), np.stack([default_box()] * (n_clip + 1)),
                np.stack([_five_points()] * (n_clip + 1)), ["clip"] * n_clip + ["photo"], ["real"] * (n_clip + 1))
    fake = Pool(np.stack([clip_crop]), np.stack([default_box()]), np.stack([_five_points()]), ["g1"], ["swap"])

    def photo_share(balance: bool) -> float:
        cfg = LiteConfig(pairs=1, gen=0, balance_real_groups=balance)
        rng = np.random.default_rng(0)
        firsts = [sample_batch(real, fake, cfg, rng)[0][0] for _ in range(120)]  # the real crop of each pair
        assert all(float(f.mean()) > 190 or float(f.mean()) < 170 for f in firsts)
        return float(np.mean([float(f.mean()) > 190 for f in firsts]))

    assert 0.35 < photo_share(True) < 0.65  # about one half
    assert photo_share(False) < 0.12  # about 1 in 31


def test_photo_share_fixes_the_mix_of_photos_and_video_frames() -> None:
    """`--photo-share P`: real crops come from photos with probability P whatever the frame counts;
    a pool without photos (or without video frames) is refused with a clear error."""
    from deepyn_gui.core.errors import InputError
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, sample_batch

    clip_crop = _astronaut_crop()
    photo_crop = np.full_like(clip_crop, 245)
    n = 30
    real = Pool(np.stack([clip_crop] * n + [photo_crop]), np.stack([default_box()] * (n + 1)),
                np.stack([_five_points()] * (n + 1)), ["clip"] * n + ["photo"], ["real-video"] * n + ["real-photo"])
    fake = Pool(np.stack([clip_crop]), np.stack([default_box()]), np.stack([_five_points()]), ["g1"], ["swap"])
    cfg = LiteConfig(pairs=1, gen=0, photo_share=0.25)
    rng = np.random.default_rng(1)
    firsts = [sample_batch(real, fake, cfg, rng)[0][0] for _ in range(160)]
    share = float(np.mean([float(f.mean()) > 190 for f in firsts]))
    assert 0.15 < share < 0.35
    only_videos = Pool(real.crops[:n], real.boxes[:n], real.landmarks[:n], ["clip"] * n, ["real-video"] * n)
    with pytest.raises(InputError, match="photo-share"):
        sample_batch(only_videos, fake, cfg, rng)


def test_cli_recipe_choices_are_exactly_the_recipes() -> None:
    """`deepyn train --recipe` offers every recipe that `RECIPES` defines and nothing else (the CLI keeps the
    names as a plain tuple so that parsing arguments never imports torch)."""
    import argparse

    from deepyn_gui.cli import build_parser
    from deepyn_gui.core.training.train_lite import RECIPES

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    recipe = next(a for a in train._actions if a.dest == "recipe")
    assert recipe.choices is not None
    assert sorted(recipe.choices) == sorted(RECIPES)


def test_source_adversary_reverses_the_gradient_and_names_only_training_real_videos() -> None:
    """The adversary (adversary.py) learns to name a crop's training real video; the encoder gets the opposite
    of that gradient, scaled by the ramped weight; photos and generated faces are never named."""
    import torch

    from deepyn_gui.core.training.adversary import (
        IGNORED,
        SourceAdversary,
        reversal_weight,
        reverse_gradient,
        video_sources,
    )

    x = torch.ones(3, requires_grad=True)
    (reverse_gradient(x, 0.25) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [-0.25, -0.5, -0.75]
    assert reversal_weight(0.0, 0.5) == 0.0 and reversal_weight(1.0, 0.5) == pytest.approx(0.5, abs=1e-4)
    assert 0.0 < reversal_weight(0.1, 0.5) < reversal_weight(0.3, 0.5) < 0.5
    videos, source = video_sources(["v2", "p1", "v1", "v2", "g"], ["real-video", "real-photo", "real-video",
                                                                  "real-video", "swap"])
    assert videos == ["v1", "v2"] and source.tolist() == [1, IGNORED, 0, 1, IGNORED]
    adv = SourceAdversary(2, features=4, hidden=3)
    feats = torch.randn(4, 4, requires_grad=True)
    loss, acc, named = adv.loss(feats, torch.tensor([0, IGNORED, 1, IGNORED]), 1.0)
    loss.backward()
    assert named == 2 and 0.0 <= acc <= 1.0 and feats.grad is not None
    assert feats.grad[1].abs().sum() == 0 and feats.grad[3].abs().sum() == 0  # unnamed samples: no gradient
    assert feats.grad[0].abs().sum() > 0
    loss, acc, named = adv.loss(feats, torch.tensor([IGNORED] * 4), 1.0)
    assert named == 0 and loss.item() == 0.0
    with pytest.raises(ValueError):
        SourceAdversary(1)


def test_sample_batch_reports_the_real_crop_behind_each_sample_without_changing_the_batch() -> None:
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, sample_batch

    crop = _astronaut_crop()
    real = Pool(np.stack([crop, crop[:, ::-1].copy(), crop]), np.stack([default_box()] * 3),
                np.stack([_five_points()] * 3), ["a", "b", "c"], ["real-video"] * 3)
    fake = Pool(crop[None], np.stack([default_box()]), np.stack([_five_points()]), ["g1"], ["swap"])
    cfg = LiteConfig(pairs=2, gen=2)
    plain = sample_batch(real, fake, cfg, np.random.default_rng(5))
    drawn: list[int] = []
    told = sample_batch(real, fake, cfg, np.random.default_rng(5), None, None, drawn)
    assert all(np.array_equal(a, b) for a, b in zip(plain, told))
    assert len(drawn) == 8 and drawn[0] == drawn[1] and drawn[2] == drawn[3]  # a self-blend is its real's
    assert drawn[4] == -1 and drawn[6] == -1  # generated faces
    assert all(0 <= k < 3 for i, k in enumerate(drawn) if i not in (4, 6))


def test_training_with_a_source_adversary_logs_it_saves_it_and_resumes_only_with_it(tmp_path: Path) -> None:
    """`--source-adversary W`: off by default; on, every epoch records the adversary's accuracy (chance:
    1 / videos), the checkpoint carries it, and a resume with the other setting is refused clearly."""
    import argparse

    import torch

    from deepyn_gui.commands import train as train_cmd
    from deepyn_gui.core.errors import InputError, ModelError
    from deepyn_gui.core.training.train_lite import LiteConfig, Pool, train_lite

    _, _, fake, ck = _first_stage_and_tiny_pools(tmp_path)
    crop = _astronaut_crop()
    real = Pool(np.stack([crop, crop[:, ::-1].copy(), crop]), np.stack([default_box()] * 3),
                np.stack([_five_points()] * 3), ["v1", "v2", "p1"], ["real-video", "real-video", "real-photo"])
    cfg = LiteConfig(epochs=1, steps_per_epoch=2, pairs=2, gen=1, threads=1, source_adversary=0.5)
    res = train_lite(real, fake, cfg, tmp_path / "adv", init_from=ck, log=lambda s: None)
    last = res.history[-1]
    assert last["adv_chance"] == 0.5 and 0.0 <= last["adv_acc"] <= 1.0 and last["adv_ce"] > 0
    state = torch.load(tmp_path / "adv" / "last.pt", weights_only=True)
    assert set(state["adversary"]) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
    assert not res.model.dropout._forward_hooks  # the exported model carries no training hook
    with pytest.raises(ModelError, match="source adversary"):
        train_lite(real, fake, LiteConfig(epochs=2, steps_per_epoch=2, pairs=2, gen=1, threads=1), tmp_path / "x",
                   resume=tmp_path / "adv" / "last.pt", log=lambda s: None)
    photos_only = Pool(real.crops, real.boxes, real.landmarks, ["p1", "p2", "p3"], ["real-photo"] * 3)
    with pytest.raises(InputError, match="two training real videos"):
        train_lite(photos_only, fake, cfg, tmp_path / "y", init_from=ck, log=lambda s: None)
    plain = train_lite(real, fake, LiteConfig(epochs=1, steps_per_epoch=1, pairs=1, gen=1, threads=1),
                       tmp_path / "plain", init_from=ck, log=lambda s: None)
    assert "adv_acc" not in plain.history[-1]
    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())
    args = ["train", "--arch", "lite0"]
    assert train_cmd.lite_config(parser.parse_args(args)).source_adversary == 0.0
    assert train_cmd.lite_config(parser.parse_args([*args, "--source-adversary", "0.5"])).source_adversary == 0.5
    with pytest.raises(InputError, match="--source-adversary"):
        train_cmd.lite_config(parser.parse_args([*args, "--source-adversary", "-1"]))
