"""Backend registry and the ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepyn_gui import backends
from deepyn_gui.backends import REGISTRY, BackendSpec, create_backend, default_model_path, list_backends
from deepyn_gui.core.errors import BackendError, ModelError
from deepyn_gui.core.inference import Availability, InferenceBackend

ort = pytest.importorskip("onnxruntime")


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


# --- registry -------------------------------------------------------------------------------------


def test_registry_lists_every_backend_with_a_reason() -> None:
    listed = list_backends()
    names = [spec.name for spec, _ in listed]
    assert names[:3] == ["onnx", "onnx-int8", "vart"]
    assert set(names) == set(REGISTRY)
    for spec, avail in listed:
        assert isinstance(spec, BackendSpec) and spec.description
        assert isinstance(avail, Availability)
        assert avail.available or avail.reason, f"{spec.name} unavailable without a reason"
    by_name = {s.name: a for s, a in listed}
    assert by_name["onnx"].available == default_model_path().is_file()
    if not default_model_path(int8=True).is_file():
        assert not by_name["onnx-int8"].available
        assert "uynet_default_int8.onnx" in by_name["onnx-int8"].reason


def test_listing_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Availability:
        raise RuntimeError("driver exploded")

    spec = REGISTRY["vart"]
    monkeypatch.setitem(REGISTRY, "vart", BackendSpec(spec.name, spec.description, broken, spec.factory))
    vart = {s.name: a for s, a in list_backends()}["vart"]
    assert not vart.available and "driver exploded" in vart.reason


def test_missing_vart_module_is_unavailable_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module() -> Any:
        raise ImportError("No module named 'xir'")

    monkeypatch.setattr(backends, "_import_vart", no_module)
    vart = {s.name: a for s, a in list_backends()}["vart"]
    assert not vart.available and "xir" in vart.reason
    with pytest.raises(BackendError, match="vart is unavailable"):
        create_backend("vart")


def test_unknown_and_unavailable_backends(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="unknown backend 'tpu'.*onnx, onnx-int8, vart"):
        create_backend("tpu")
    missing = tmp_path / "none.onnx"
    monkeypatch.setattr(backends, "default_model_path", lambda int8=False: missing)
    with pytest.raises(BackendError, match="onnx-int8 is unavailable.*none.onnx"):
        create_backend("onnx-int8")
    with pytest.raises(BackendError, match="bundled model is missing"):
        create_backend("onnx")


def test_default_model_paths() -> None:
    assert default_model_path().name == "uynet_default.onnx"
    assert default_model_path(int8=True).name == "uynet_default_int8.onnx"
    assert default_model_path().parent == default_model_path(int8=True).parent


# --- ONNX backend ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_backend(tiny_onnx_model: Path) -> Any:
    b = create_backend("onnx", model_path=str(tiny_onnx_model), threads=1, batch_size=4)
    yield b
    b.close()


def test_onnx_backend_matches_torch(tiny_backend: Any, torch_threads: None) -> None:
    import torch

    from deepyn_gui.core.model.uynet import build_uynet

    assert isinstance(tiny_backend, InferenceBackend)
    crops = _crops(6)  # more than batch_size: two chunks, the last one partial
    mask, score = tiny_backend.infer(crops)
    assert mask.shape == (6, 224, 224) and score.shape == (6,)
    assert mask.dtype == np.float32 and score.dtype == np.float32
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        logits, prob_real = build_uynet(4, seed=0)(x)
    np.testing.assert_allclose(mask, torch.softmax(logits, 1)[:, 1].numpy(), atol=1e-4)
    np.testing.assert_allclose(score, 1 - prob_real[:, 0].numpy(), atol=1e-4)


def test_batching_does_not_change_results(tiny_onnx_model: Path, tiny_backend: Any) -> None:
    crops = _crops(5, seed=1)
    one = create_backend("onnx", model_path=tiny_onnx_model, threads=1, batch_size=1)
    m1, s1 = one.infer(crops)
    m4, s4 = tiny_backend.infer(crops)
    np.testing.assert_allclose(m1, m4, atol=1e-5)
    np.testing.assert_allclose(s1, s4, atol=1e-5)
    m0, s0 = tiny_backend.infer(crops[:0])
    assert m0.shape == (0, 224, 224) and s0.shape == (0,)


def test_bad_input_is_a_backend_error(tiny_backend: Any) -> None:
    with pytest.raises(BackendError, match="uint8"):
        tiny_backend.infer(_crops(1).astype(np.float32))
    with pytest.raises(BackendError, match=r"\[2, 112, 112, 3\]"):
        tiny_backend.infer(np.zeros((2, 112, 112, 3), np.uint8))


def test_describe_and_model_info(tiny_onnx_model: Path, tiny_backend: Any) -> None:
    from deepyn_gui.core.model import read_model_info

    d = tiny_backend.describe()
    assert d["name"] == "onnx" and d["runtime"] == "onnxruntime" and d["version"] == ort.__version__
    assert d["providers"][-1] == "CPUExecutionProvider"
    assert (d["threads"], d["batch_size"], d["precision"]) == (1, 4, "fp32")
    assert d["model_path"] == str(tiny_onnx_model.resolve())
    assert tiny_backend.model_info == read_model_info(tiny_onnx_model)
    assert tiny_backend.model_info.trained is False


def test_runtime_failures_become_backend_errors(tiny_onnx_model: Path) -> None:
    b = create_backend("onnx", model_path=tiny_onnx_model, threads=1)

    class Exploding:
        def run(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : out of memory")

    class NaNs:
        def run(self, names: Any, feed: Any) -> Any:
            n = feed["image"].shape[0]
            return [np.zeros((n, 224, 224), np.float32), np.full((n,), np.nan, np.float32)]

    b._session = Exploding()
    with pytest.raises(BackendError, match="out of memory"):
        b.infer(_crops(1))
    b._session = NaNs()
    with pytest.raises(BackendError, match="NaN"):
        b.infer(_crops(1))
    b.close()
    with pytest.raises(BackendError, match="closed"):
        b.infer(_crops(1))


def test_wrong_model_files_are_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, 224, 224])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Relu", ["pixels"], ["logits"])], "g", [x], [y])
    other = tmp_path / "resnet.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(other))
    with pytest.raises(ModelError, match="not a U-YNet model.*pixels.*logits"):
        create_backend("onnx", model_path=other)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"GIF89a" + bytes(200))
    with pytest.raises(ModelError, match="junk.onnx cannot be loaded"):
        create_backend("onnx", model_path=junk)
    with pytest.raises(ModelError, match="not found"):
        create_backend("onnx", model_path=tmp_path / "absent.onnx")


def test_unknown_provider_is_refused(tiny_onnx_model: Path) -> None:
    with pytest.raises(BackendError, match="TensorrtExecutionProvider"):
        create_backend("onnx", model_path=tiny_onnx_model, providers=["TensorrtExecutionProvider"])


def test_int8_model_runs_and_reports_int8(tiny_onnx_model: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self._it = iter([{"image": rng.random((1, 3, 224, 224), dtype=np.float32)} for _ in range(2)])

        def get_next(self) -> Any:
            return next(self._it, None)

    q = tmp_path / "quantised.onnx"  # name says nothing: precision must come from the model itself
    quantize_static(
        str(tiny_onnx_model),
        str(q),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    b = create_backend("onnx-int8", model_path=q, threads=1)
    assert b.describe()["precision"] == "int8" and b.name == "onnx-int8"
    mask, score = b.infer(_crops(2))
    assert mask.shape == (2, 224, 224) and np.all((score >= 0) & (score <= 1))
    _, ref_score = create_backend("onnx", model_path=tiny_onnx_model, threads=1).infer(_crops(2))
    assert np.abs(score - ref_score).max() < 0.2  # int8 is close, not equal


def test_bundled_model_backend_runs() -> None:
    if not default_model_path().is_file():
        pytest.skip("no bundled model")
    b = create_backend("onnx", threads=1, batch_size=2)
    mask, score = b.infer(_crops(1))
    assert mask.shape == (1, 224, 224) and 0.0 <= float(score[0]) <= 1.0
    assert b.model_info.sha256 and b.describe()["model_path"].endswith("uynet_default.onnx")


def test_unavailable_backend_carries_its_reason_and_one_set_up_serves_both_shells(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """BackendUnavailable.reason is the reason alone (no shell strips message text); labels follow one scheme."""
    import sys

    from deepyn_gui.backends import BackendRequest, backend_label, create_backend, set_up_backends
    from deepyn_gui.core.errors import BackendUnavailable

    monkeypatch.setitem(sys.modules, "xir", None)
    monkeypatch.setitem(sys.modules, "vart", None)
    with pytest.raises(BackendUnavailable) as info:
        create_backend("vart", model_path="YNET.xmodel")
    assert info.value.name == "vart" and info.value.reason.startswith("xir/vart not importable")
    assert str(info.value) == f"backend vart is unavailable: {info.value.reason}"
    assert [backend_label("onnx", 2), backend_label("onnx", 1), backend_label("onnx", 1, "cpu")] == [
        "onnx", "onnx@1t", "cpu"]

    class Fake:
        def close(self) -> None:
            pass

    def factory(name, model_path=None, **_options):  # type: ignore[no-untyped-def]
        if name == "vart":
            return create_backend(name, model_path=model_path)
        return Fake()

    setups = set_up_backends([BackendRequest("onnx", threads=1), BackendRequest("onnx", threads=1),
                              BackendRequest("vart", "YNET.xmodel")], factory)
    assert [s.label for s in setups] == ["onnx@1t", "onnx@1t#2", "vart"]
    assert [s.backend is None for s in setups] == [False, False, True]
    assert setups[2].reason == info.value.reason
