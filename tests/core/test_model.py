"""U-YNet definition, checkpoint import, ONNX export and model metadata."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from deepyn_gui.core.errors import ExportError, ModelError
from deepyn_gui.core.model import (
    calibration_json,
    read_model_info,
    validate_model_interface,
)
from deepyn_gui.core.model.checkpoint import infer_width, load_checkpoint, load_model
from deepyn_gui.core.model.export import export_onnx, export_untrained, import_checkpoint
from deepyn_gui.core.model.uynet import UYNet, UYNetForExport, build_uynet
from deepyn_gui.core.results import ScoreBand

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread(torch_threads: None) -> None:
    """Every test here builds torch models: keep torch on one thread."""


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 224, 224), dtype=np.float32)


def _torch_outputs(model: UYNet, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference straight from the brief: softmax(mask)[:,1] and 1 - P(real)."""
    with torch.no_grad():
        logits, prob_real = model.eval()(torch.from_numpy(x))
    return torch.softmax(logits, 1)[:, 1].numpy(), (1 - prob_real[:, 0]).numpy()


# --- architecture ---------------------------------------------------------------------------------


def test_width64_matches_the_original_checkpoint_layout() -> None:
    with torch.device("meta"):  # no 88 M random weights to compute
        model = UYNet(64)
    sd = model.state_dict()
    assert len(sd) == 154
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 88_204_291  # "88.2 M params"
    used = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("down5."))
    assert round(used / 1e6, 1) == 31.6
    keys = list(sd)
    assert keys[0] == "inc.double_conv.0.weight"
    assert keys[-1] == "outc.conv.bias"
    tops = list(dict.fromkeys(k.split(".")[0] for k in keys))
    assert tops == [
        "inc",
        "down1",
        "down2",
        "down3",
        "down4",
        "down5",
        "linear_1",
        "linear_2",
        "up1",
        "up2",
        "up3",
        "up4",
        "outc",
    ]
    assert sd["down5.maxpool_conv.1.double_conv.0.weight"].shape == (2048, 1024, 3, 3)
    assert sd["linear_1.weight"].shape == (512, 1024)
    assert sd["linear_2.weight"].shape == (1, 512)
    assert sd["up1.up.weight"].shape == (1024, 512, 2, 2)
    assert sd["up1.conv.double_conv.0.weight"].shape == (512, 1024, 3, 3)
    assert sd["outc.conv.weight"].shape == (2, 64, 1, 1)
    assert "inc.double_conv.1.num_batches_tracked" in sd


def test_key_names_do_not_depend_on_width() -> None:
    with torch.device("meta"):
        assert list(UYNet(64).state_dict()) == list(UYNet(4).state_dict())


def test_forward_shapes_and_export_wrapper() -> None:
    model = build_uynet(4, seed=0)
    x = torch.from_numpy(_images(2))
    with torch.no_grad():
        logits, prob_real = model(x)
        mask_prob, fake = UYNetForExport(model)(x)
    assert logits.shape == (2, 2, 224, 224)
    assert prob_real.shape == (2, 1)
    assert bool(((prob_real > 0) & (prob_real < 1)).all())
    assert mask_prob.shape == (2, 224, 224) and fake.shape == (2,)
    torch.testing.assert_close(mask_prob, torch.softmax(logits, 1)[:, 1])
    torch.testing.assert_close(fake, 1 - prob_real[:, 0])


def test_down5_is_not_used_by_forward() -> None:
    model = build_uynet(4, seed=0)
    x = torch.from_numpy(_images(1))
    with torch.no_grad():
        before = model(x)
        for p in model.down5.parameters():
            p.add_(1.0)
        after = model(x)
    torch.testing.assert_close(before, after)


def test_seed_makes_initial_weights_reproducible_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build_uynet(4, seed=0).state_dict()
    assert torch.equal(torch.rand(1), expected_next)
    b = build_uynet(4, seed=0).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- checkpoints ----------------------------------------------------------------------------------


def _assert_same_state(a: dict, b: dict) -> None:  # type: ignore[type-arg]
    assert list(a) == list(b)
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


@pytest.mark.parametrize("wrap", ["raw", "state_dict", "model", "module-prefix", "wrapped+prefix"])
def test_checkpoint_round_trip(tmp_path: Path, wrap: str) -> None:
    model = build_uynet(4, seed=1)
    with torch.no_grad():  # non-trivial BN statistics, so a loader that ignores buffers would fail
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.1, 0.1)
    sd = model.state_dict()
    prefixed = {f"module.{k}": v for k, v in sd.items()}
    obj = {
        "raw": sd,
        "state_dict": {"state_dict": sd, "epoch": 35, "best_acc": 0.94},
        "model": {"model": sd, "optimizer": {"lr": 1e-3}},
        "module-prefix": prefixed,
        "wrapped+prefix": {"state_dict": prefixed},
    }[wrap]
    path = tmp_path / "ck.pth"
    torch.save(obj, path)
    state, width = load_checkpoint(path)
    assert width == 4
    _assert_same_state(state, sd)
    loaded = load_model(path)
    x = _images(1)
    for ref, got in zip(_torch_outputs(model, x), _torch_outputs(loaded, x)):
        np.testing.assert_array_equal(ref, got)


@pytest.mark.parametrize("width", [2, 8])
def test_width_is_inferred(tmp_path: Path, width: int) -> None:
    path = tmp_path / "ck.pth"
    torch.save(UYNet(width).state_dict(), path)
    assert load_checkpoint(path)[1] == width
    assert infer_width(UYNet(width).state_dict()) == width


def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"inc.double_conv.0.weight": torch.zeros(4, 3, 3, 3), "x": Payload()}, path)
    with pytest.raises(ModelError, match="weights_only") as exc:
        load_checkpoint(path)
    assert "pickle" in str(exc.value)
    assert not marker.exists()


def test_whole_module_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whole.pth"
    torch.save(build_uynet(2, seed=0), path)  # torch.save(model) instead of model.state_dict()
    with pytest.raises(ModelError, match="weights_only"):
        load_checkpoint(path)


def test_wrong_keys_are_named(tmp_path: Path) -> None:
    sd = UYNet(4).state_dict()
    del sd["up2.up.weight"]
    del sd["down5.maxpool_conv.1.double_conv.0.bias"]
    sd["classifier.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(ModelError) as exc:
        load_checkpoint(path)
    msg = str(exc.value)
    assert "up2.up.weight" in msg and "down5.maxpool_conv.1.double_conv.0.bias" in msg
    assert "classifier.weight" in msg
    assert "2 missing" in msg and "1 unexpected" in msg


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    sd = UYNet(4).state_dict()
    sd["linear_1.weight"] = torch.zeros(3, 64)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(ModelError, match=r"linear_1\.weight is \[3, 64\]"):
        load_checkpoint(path)


def test_not_a_unet_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelError, match=r"no inc\.double_conv\.0\.weight.*fc\.weight"):
        load_checkpoint(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(ModelError, match="does not hold a state_dict"):
        load_checkpoint(path)


def test_unreadable_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")
    text = tmp_path / "notes.pth"
    text.write_text("this is not a checkpoint")
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        load_checkpoint(text)
    good = tmp_path / "good.pth"
    torch.save(UYNet(2).state_dict(), good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError, match="PyTorch checkpoint"):
        load_checkpoint(cut)


def test_import_checkpoint_writes_a_trained_onnx_model(tmp_path: Path) -> None:
    model = build_uynet(4, seed=3)
    ck = tmp_path / "checkpoint_epoch_224x224_35.pth"
    torch.save({"state_dict": model.state_dict()}, ck)
    out = import_checkpoint(ck, tmp_path / "imported.onnx")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["deepyn.trained"] == "true"
    assert meta["deepyn.name"] == "checkpoint_epoch_224x224_35"
    assert meta["deepyn.width"] == "4"
    assert meta["deepyn.source_checkpoint_sha256"] == hashlib.sha256(ck.read_bytes()).hexdigest()
    x = _images(2)
    m, s = _session(out).run(None, {"image": x})
    rm, rs = _torch_outputs(model, x)
    np.testing.assert_allclose(m, rm, atol=1e-4)
    np.testing.assert_allclose(s, rs, atol=1e-4)
    assert import_checkpoint(ck, tmp_path / "named.onnx", name="deepynet-dfdc").exists()
    assert read_model_info(tmp_path / "named.onnx").name == "deepynet-dfdc"


# --- ONNX export ----------------------------------------------------------------------------------


def _parity(width: int, tmp_path: Path) -> None:
    model = build_uynet(width, seed=0)
    out = export_onnx(model, tmp_path / f"w{width}.onnx", {"deepyn.name": f"w{width}"})
    x = _images(2, seed=width)
    m, s = _session(out).run(["mask_prob", "fake_score"], {"image": x})
    rm, rs = _torch_outputs(model, x)
    assert m.shape == (2, 224, 224) and s.shape == (2,)
    assert m.dtype == np.float32 and s.dtype == np.float32
    np.testing.assert_allclose(m, rm, atol=1e-4)
    np.testing.assert_allclose(s, rs, atol=1e-4)


def test_onnx_parity_width8(tmp_path: Path) -> None:
    _parity(8, tmp_path)


@pytest.mark.slow
def test_onnx_parity_width64(tmp_path: Path) -> None:
    _parity(64, tmp_path)


def test_exported_interface_and_opset(tiny_onnx_model: Path) -> None:
    proto = onnx.load(str(tiny_onnx_model))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert not proto.graph.initializer or all(not t.external_data for t in proto.graph.initializer)
    validate_model_interface(_session(tiny_onnx_model))  # does not raise


@pytest.mark.parametrize("n", [1, 3])
def test_dynamic_batch(tiny_onnx_model: Path, n: int) -> None:
    x = _images(n, seed=n)
    m, s = _session(tiny_onnx_model).run(None, {"image": x})
    assert m.shape == (n, 224, 224) and s.shape == (n,)
    rm, rs = _torch_outputs(build_uynet(4, seed=0), x)
    np.testing.assert_allclose(m, rm, atol=1e-4)
    np.testing.assert_allclose(s, rs, atol=1e-4)


def test_export_is_deterministic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    a = export_untrained(2, tmp_path / "a.onnx", seed=0, name="same")
    b = export_untrained(2, tmp_path / "b.onnx", seed=0, name="same")
    assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]


def test_export_refuses_bad_calibration_and_writes_nothing(tmp_path: Path) -> None:
    bad = json.dumps({"threshold": 0.5, "bands": [[0.0, 0.4, "low", "x"], [0.5, 1.0, "high", "y"]]})
    with pytest.raises(ModelError, match="without gaps"):
        export_onnx(build_uynet(2, seed=0), tmp_path / "m.onnx", {"deepyn.calibration": bad})
    with pytest.raises(ModelError, match="width"):
        export_onnx(build_uynet(2, seed=0), tmp_path / "m.onnx", {"deepyn.width": "64"})
    assert list(tmp_path.iterdir()) == []


def test_export_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        export_onnx(build_uynet(2, seed=0), tmp_path / "nope" / "m.onnx", {})


# --- metadata -------------------------------------------------------------------------------------


def test_metadata_round_trip(tmp_path: Path) -> None:
    bands = [
        ScoreBand(0.0, 0.3, "real", "looks genuine"),
        ScoreBand(0.3, 0.7, "unsure", "cannot tell"),
        ScoreBand(0.7, 1.0, "fake", "looks manipulated"),
    ]
    out = export_onnx(
        build_uynet(2, seed=0),
        tmp_path / "cal.onnx",
        {
            "deepyn.name": "uynet-sbi",
            "deepyn.version": "1.2.0",
            "deepyn.trained": True,
            "deepyn.calibration": calibration_json(0.62, bands, real_below=0.25),
            "deepyn.training_data": "self-blended FF++ reals",
        },
    )
    (tmp_path / "cal.md").write_text("# card\n")
    info = read_model_info(out)
    assert (info.name, info.version, info.trained) == ("uynet-sbi", "1.2.0", True)
    assert info.threshold == pytest.approx(0.62)
    assert info.real_below == pytest.approx(0.25)
    assert info.bands == tuple(bands)
    assert info.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert info.card_path == str(tmp_path / "cal.md")
    assert info.path == str(out.resolve())
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["deepyn.width"] == "2" and meta["deepyn.training_data"] == "self-blended FF++ reals"
    assert meta["deepyn.precision"] == "fp32"


def test_uncalibrated_untrained_model_gets_marked_default_bands(tiny_onnx_model: Path) -> None:
    info = read_model_info(tiny_onnx_model)
    assert info.trained is False
    assert info.name == "uynet-w4-test"
    assert info.threshold == 0.5
    assert len(info.bands) >= 4
    assert info.bands[0].lo == 0.0 and info.bands[-1].hi >= 1.0
    assert all("UNCALIBRATED" in b.meaning and "mean nothing" in b.meaning for b in info.bands)
    assert "Untrained" in info.notes
    assert info.card_path == ""


def test_malformed_calibration_in_a_model_is_refused(tmp_path: Path) -> None:
    out = export_untrained(2, tmp_path / "m.onnx")
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "deepyn.calibration", "{not json"
    onnx.save(proto, str(out))
    with pytest.raises(ModelError, match="calibration"):
        read_model_info(out)


def _wrong_interface_model(path: Path) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "other", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_wrong_interface_is_refused_naming_what_was_found(tmp_path: Path) -> None:
    path = _wrong_interface_model(tmp_path / "classifier.onnx")
    with pytest.raises(ModelError) as exc:
        validate_model_interface(_session(path))
    msg = str(exc.value)
    assert "input" in msg and "output" in msg and "mask_prob" in msg and "image" in msg


def test_not_onnx_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x00\xffnot a model" * 50)
    with pytest.raises(ModelError, match="model.onnx"):
        read_model_info(junk)
    with pytest.raises(ModelError, match="not found"):
        read_model_info(tmp_path / "missing.onnx")


# --- bundled placeholder and lazy imports ---------------------------------------------------------


def test_bundled_placeholder_model() -> None:
    from deepyn_gui.backends import default_model_path

    path = default_model_path()
    assert path.is_file(), f"bundled model missing: {path}"
    assert path.stat().st_size < 20 * 1024 * 1024
    info = read_model_info(path)
    validate_model_interface(_session(path))
    if info.trained:
        pytest.skip("the bundled model has been replaced by a trained one")
    assert info.name == "uynet-untrained-placeholder"
    card = Path(info.card_path).read_text(encoding="utf-8")
    assert "UNTRAINED" in card and "mean nothing" in card


def test_model_package_and_backends_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import deepyn_gui.core.model as m, deepyn_gui.backends as b\n"
        "b.list_backends()\n"
        "info = m.read_model_info(b.default_model_path())\n"
        "assert 'onnxruntime' in sys.modules  # list_backends checked the runtime\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
