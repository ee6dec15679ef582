"""packaging/vitis-ai: the parts of the recipe that need no Vitis AI (calibration set, weights, model
wrapper, argument handling, the compile command line)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

try:
    from tests import media
except ImportError:  # bare `pytest` without the repo root on sys.path
    import media  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "packaging" / "vitis-ai"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def calib_module() -> ModuleType:
    return _load("build_calibration_set")


@pytest.fixture(scope="module")
def quant_module() -> ModuleType:
    return _load("quantize")


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media.write_clip(tmp_path_factory.mktemp("clip") / "face.mp4",
                            media.astronaut_clip_frames(12, 320, 240, face_px=70), fps=12)


def test_calibration_set_holds_the_pipelines_own_crops(calib_module: ModuleType, face_clip: Path, tmp_path: Path) -> None:
    import cv2

    from deepyn_gui.core.faces import CropTransform, extract_crop
    from deepyn_gui.core.video import VideoSource

    out = tmp_path / "calib"
    before = face_clip.read_bytes()
    rc = calib_module.main([str(face_clip), "--out", str(out), "--per-clip", "4", "--stride", "3"])
    assert rc == 0
    assert face_clip.read_bytes() == before  # the clip is only read
    arr = np.load(out / "calib.npy", allow_pickle=False)
    assert arr.dtype == np.uint8 and arr.shape == (4, 224, 224, 3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 4 and manifest["sources"][0]["clip"] == "face.mp4"
    assert len(manifest["sources"][0]["sha256"]) == 64
    assert [e["frame"] for e in manifest["entries"]] == [0, 3, 6, 9]
    with VideoSource(face_clip) as src:
        for e in manifest["entries"]:
            # exactly what the app would send: the same frame, crop transform and resampling
            again = extract_crop(src.frame_at(e["frame"]).rgb, CropTransform.from_list(e["crop"]))
            assert np.array_equal(arr[e["index"]], again)
            png = cv2.cvtColor(cv2.imread(str(out / e["png"])), cv2.COLOR_BGR2RGB)
            assert np.array_equal(png, again)
    # refuses to mix into an existing set
    assert calib_module.main([str(face_clip), "--out", str(out)]) == 2


def test_calibration_set_without_faces_is_an_error(calib_module: ModuleType, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    grey = media.write_clip(tmp_path / "grey.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 4)
    assert calib_module.main([str(grey), "--out", str(tmp_path / "c"), "--stride", "1"]) == 2
    assert "no face large enough" in capsys.readouterr().err


def test_quantize_arguments(quant_module: ModuleType) -> None:
    p = quant_module.build_parser()
    a = p.parse_args(["calib", "--weights", "w.npz", "--calib", "c", "--batch", "4", "--limit", "100"])
    assert (a.step, a.weights, a.calib, a.batch, a.limit, a.device) == ("calib", "w.npz", "c", 4, 100, "cpu")
    a = p.parse_args(["test"])
    assert (a.weights, a.calib, a.out) == ("work/weights.npz", "work/calib", "work/quantize_result")
    a = p.parse_args(["prepare", "--checkpoint", "x.pth"])
    assert a.out == "work" and a.onnx is None
    with pytest.raises(SystemExit):
        p.parse_args([])  # a step is required
    with pytest.raises(SystemExit):
        p.parse_args(["test", "--device", "tpu"])


def test_recipe_runs_under_the_dockers_python_37(quant_module: ModuleType) -> None:
    """The Vitis AI 3.0 docker has Python 3.7: quantize.py and the U-YNet it loads must parse there."""
    for path in (RECIPE / "quantize.py", REPO / "deepyn_gui" / "core" / "model" / "uynet.py",
                 REPO / "deepyn_gui" / "core" / "model" / "uynet_lite.py"):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 7))
    tree = ast.parse((RECIPE / "quantize.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    # deepyn_gui is imported only by the host-side prepare step, never by calib/test
    assert {m for m in imported if m.startswith("deepyn_gui")} <= {
        "deepyn_gui.core.model.checkpoint", "deepyn_gui.core.model.metadata"}


def test_prepare_and_the_dpu_model_wrapper(quant_module: ModuleType, tmp_path: Path, tiny_onnx_model: Path) -> None:
    torch = pytest.importorskip("torch")
    from deepyn_gui.core.model.uynet import build_uynet

    torch.set_num_threads(1)
    model = build_uynet(4, seed=1)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "epoch": 3}, ckpt)  # the training loop's format
    assert quant_module.main(["prepare", "--checkpoint", str(ckpt), "--onnx", str(tiny_onnx_model),
                              "--out", str(tmp_path / "work")]) == 0
    weights = quant_module.load_weights(tmp_path / "work" / "weights.npz")  # allow_pickle=False
    meta = json.loads((tmp_path / "work" / "deepyn.json").read_text())
    assert meta["deepyn.name"] == "uynet-w4-test" and meta["deepyn.precision"] == "int8"
    assert meta["deepyn.trained"] == "false" and meta["deepyn.width"] == "4"

    dpu = quant_module.build_dpu_model(weights)
    assert type(dpu).__name__ == "UYNetForDPU"  # nndct names the xmodel UYNetForDPU_int.xmodel
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mask_logits, class_logit = dpu(x)
        ref_mask, ref_cls = model.forward_logits(x)
        _, prob_real = model(x)
    assert tuple(mask_logits.shape) == (2, 2, 224, 224) and tuple(class_logit.shape) == (2, 1)
    assert torch.equal(mask_logits, ref_mask) and torch.equal(class_logit, ref_cls)
    # the logit is before the sigmoid: the original forward's P(real) is its sigmoid
    assert torch.allclose(torch.sigmoid(class_logit), prob_real)


def test_prepare_and_the_dpu_wrapper_cover_the_lite0_model(quant_module: ModuleType, tmp_path: Path) -> None:
    """The shipped model (EfficientNet-Lite0 encoder): same two DPU outputs, told apart by its weight names."""
    torch = pytest.importorskip("torch")
    from deepyn_gui.core.model.uynet_lite import build_lite_uynet

    torch.set_num_threads(1)
    model = build_lite_uynet(seed=2)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "epoch": 4, "arch": "lite0"}, ckpt)  # train_lite's format
    assert quant_module.main(["prepare", "--checkpoint", str(ckpt), "--out", str(tmp_path / "work")]) == 0
    meta = json.loads((tmp_path / "work" / "deepyn.json").read_text())
    assert meta["deepyn.arch"] == "lite0" and meta["deepyn.precision"] == "int8"
    dpu = quant_module.build_dpu_model(quant_module.load_weights(tmp_path / "work" / "weights.npz"))
    assert type(dpu).__name__ == "UYNetForDPU"
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mask_logits, class_logit = dpu(x)
        mask, fake_logit = model.heads(x)
    assert tuple(mask_logits.shape) == (2, 2, 224, 224) and tuple(class_logit.shape) == (2, 1)
    # what the VART backend computes from the two outputs equals the ONNX interface's values
    torch.testing.assert_close(torch.softmax(mask_logits, 1)[:, 1], torch.sigmoid(mask[:, 0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.sigmoid(-class_logit[:, 0]), torch.sigmoid(fake_logit), atol=1e-6, rtol=0)


def test_prepare_refuses_a_pickle_payload(quant_module: ModuleType, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    bad = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "obj": Path("not/a/tensor")}, bad)
    assert quant_module.main(["prepare", "--checkpoint", str(bad), "--out", str(tmp_path / "w")]) == 2
    assert "quantize.py: error:" in capsys.readouterr().err


def test_calib_and_test_need_pytorch_nndct(quant_module: ModuleType, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pytorch_nndct", None)
    monkeypatch.setitem(sys.modules, "pytorch_nndct.apis", None)
    assert quant_module.main(["calib", "--weights", str(tmp_path / "w.npz"), "--calib", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pytorch_nndct is not importable" in err and "ubuntu2004-3.0.0.106" in err


def test_calibration_loader(quant_module: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    arr = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    np.save(tmp_path / "calib.npy", arr)
    x = quant_module.load_calibration(tmp_path, limit=2)
    assert tuple(x.shape) == (2, 3, 224, 224)
    assert float(x[1, 2, 5, 7]) == pytest.approx(arr[1, 5, 7, 2] / 255.0)  # RGB, NCHW, /255
    np.save(tmp_path / "bad.npy", arr.astype(np.float32))
    with pytest.raises(quant_module.RecipeError, match="expected uint8"):
        quant_module.load_calibration(tmp_path / "bad.npy")


def test_compile_script_calls_vai_c_xir_with_the_vck5000_arch(tmp_path: Path) -> None:
    script = RECIPE / "compile.sh"
    assert "/opt/vitis_ai/compiler/arch/DPUCVDX8H/VCK50004PE/arch.json" in script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    # a stand-in vai_c_xir that records its arguments and writes the output file
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vai_c_xir"
    fake.write_text('#!/usr/bin/env bash\necho "$@" > "$RECORD"\nwhile [ $# -gt 0 ]; do case "$1" in '
                    '-o) o=$2; shift;; -n) n=$2; shift;; esac; shift; done\ntouch "$o/$n.xmodel"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    work = tmp_path / "work"
    (work / "quantize_result").mkdir(parents=True)
    quant = work / "quantize_result" / "UYNetForDPU_int.xmodel"
    quant.write_bytes(b"q")
    (work / "deepyn.json").write_text('{"deepyn.name": "m"}')
    arch = tmp_path / "arch.json"
    arch.write_text("{}")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ARCH": str(arch),
           "RECORD": str(tmp_path / "args.txt")}
    out = subprocess.run(["bash", str(script), str(quant), str(work / "compiled"), "YNET"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "args.txt").read_text().split() == [
        "-x", str(quant), "-a", str(arch), "-o", str(work / "compiled"), "-n", "YNET"]
    assert (work / "compiled" / "YNET.json").read_text() == '{"deepyn.name": "m"}'  # the sidecar
    # missing inputs: one clear line, exit 2
    env.pop("ARCH")
    out = subprocess.run(["bash", str(script), str(quant)], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "arch.json not found" in out.stderr
    out = subprocess.run(["bash", str(script), str(tmp_path / "none.xmodel")], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "quantised xmodel not found" in out.stderr
