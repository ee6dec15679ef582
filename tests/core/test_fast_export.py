"""The speed rewrites of the exported graph and the int8 recipe (issue 7) must not change results.

``UYNetForExport`` folds the 2-class softmax into sigmoid(l1 - l0), splits each decoder concat into
two convolutions and folds that layer's BatchNorm by hand: checked here against ``UYNet.forward``
with non-trivial BatchNorm statistics (a fresh model's mean 0 / var 1 would hide a wrong fold).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from deepyn_gui.core.model.export import export_onnx
from deepyn_gui.core.model.uynet import UYNet, UYNetForExport, build_uynet


@pytest.fixture(autouse=True)
def _one_thread(torch_threads: None) -> None:
    """torch on one thread (2 shared cores)."""


def _with_random_batchnorm(model: UYNet, seed: int = 1) -> UYNet:
    """Give every BatchNorm running statistics and affine parameters far from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


def _reference(model: UYNet, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        logits, prob_real = model(torch.from_numpy(x))
    return torch.softmax(logits, 1)[:, 1].numpy(), (1 - prob_real[:, 0]).numpy()


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _face_crops() -> np.ndarray:
    """uint8 [4,224,224,3] real-face crops from the scikit-image astronaut (plain, flipped, tighter, darker)."""
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    img = data.astronaut()
    a = cv2.resize(img[10:270, 130:390], (224, 224), interpolation=cv2.INTER_AREA)
    b = cv2.resize(img[40:240, 160:360], (224, 224), interpolation=cv2.INTER_AREA)
    return np.stack([a, a[:, ::-1], b, (a * 0.6).astype(np.uint8)])


def test_export_wrapper_equals_the_model_with_real_batchnorm() -> None:
    model = _with_random_batchnorm(build_uynet(4, seed=0))
    x = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    rm, rs = _reference(model, x)
    with torch.no_grad():
        m, s = UYNetForExport(model)(torch.from_numpy(x))
    assert float(np.abs(rm - 0.5).max()) > 0.01  # the mask is not a constant 0.5: the check means something
    np.testing.assert_allclose(m.numpy(), rm, atol=2e-6)
    np.testing.assert_allclose(s.numpy(), rs, atol=2e-6)


def test_export_wrapper_refuses_training_mode() -> None:
    model = build_uynet(2, seed=0).train()
    with pytest.raises(RuntimeError, match="eval mode"):
        UYNetForExport(model)(torch.zeros(1, 3, 224, 224))


def test_exported_graph_is_folded_and_matches_torch(tmp_path: Path) -> None:
    model = _with_random_batchnorm(build_uynet(4, seed=3), seed=2)
    out = export_onnx(model, tmp_path / "m.onnx", {"deepyn.name": "fold-test"})
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "Softmax" not in ops and "Concat" not in ops and "BatchNormalization" not in ops
    assert ops.count("Add") == 4  # one per decoder level: skip conv + upsampled conv
    x = np.random.default_rng(1).random((3, 3, 224, 224), dtype=np.float32)
    m, s = _session(out).run(["mask_prob", "fake_score"], {"image": x})
    rm, rs = _reference(model, x)
    np.testing.assert_allclose(m, rm, atol=1e-5)
    np.testing.assert_allclose(s, rs, atol=1e-5)


def test_full_resolution_nodes_are_the_224_layers(tiny_onnx_model: Path) -> None:
    from deepyn_gui.core.training.quantize import full_resolution_nodes

    proto = onnx.load(str(tiny_onnx_model))
    names = set(full_resolution_nodes(proto))
    by_name = {n.name: n for n in proto.graph.node}
    convs = [n for n in names if by_name[n].op_type in ("Conv", "ConvTranspose")]
    # inc (2 convs), up4 (transposed conv, skip conv, upsampled conv, second conv), mask head
    assert len(convs) == 7
    pools = [n for n in names if by_name[n].op_type == "MaxPool"]
    assert pools == ["/down1/maxpool_conv/maxpool_conv.0/MaxPool"]
    assert not any(n.startswith(("/down2", "/down3", "/down4")) for n in names)


def test_int8_recipe_keeps_full_resolution_fp32_and_agrees(tiny_onnx_model: Path, tmp_path: Path) -> None:
    from deepyn_gui.core.training.quantize import full_resolution_nodes, quantize_int8

    crops = _face_crops()
    q = quantize_int8(tiny_onnx_model, tmp_path / "q.onnx", crops, batch=2)
    proto = onnx.load(str(q))
    produced_by = {o: n for n in proto.graph.node for o in n.output}
    fp32_names = set(full_resolution_nodes(onnx.load(str(tiny_onnx_model))))
    quantised_convs = 0
    for n in proto.graph.node:
        if n.op_type != "Conv":
            continue
        weight_from_dq = n.input[1] in produced_by and produced_by[n.input[1]].op_type == "DequantizeLinear"
        if n.name in fp32_names:
            assert not weight_from_dq, f"{n.name} is full resolution and must stay fp32"
        else:
            quantised_convs += weight_from_dq
    assert quantised_convs >= 14
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["deepyn.precision"] == "int8" and "full-resolution" in meta["deepyn.quantization"]
    x = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    m32, s32 = _session(tiny_onnx_model).run(None, {"image": x})
    m8, s8 = _session(q).run(None, {"image": x})
    assert np.abs(s8 - s32).max() < 0.05
    assert np.abs(m8 - m32).mean() < 0.02


def test_bundled_int8_agrees_with_bundled_fp32() -> None:
    from deepyn_gui.backends import default_model_path

    fp32, int8 = default_model_path(), default_model_path(int8=True)
    if not (fp32.is_file() and int8.is_file()):
        pytest.skip("bundled models not present")
    x = _face_crops().transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    m32, s32 = _session(fp32).run(None, {"image": x})
    m8, s8 = _session(int8).run(None, {"image": x})
    assert np.abs(s8 - s32).max() <= 0.05  # the bound; 600 validation crops: max 0.025
    a, b = m32 > 0.5, m8 > 0.5
    union = np.logical_or(a, b).sum()
    if union:
        assert np.logical_and(a, b).sum() / union >= 0.8
