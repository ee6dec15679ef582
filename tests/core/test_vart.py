"""The VCK5000/VART backend, tested without a card against the ``xir``/``vart`` test double.

The double (tests/fakes) enforces the VART contract and computes with a reference U-YNet on the
dequantised int8 input, quantising its outputs with their fix points — the card's arithmetic at its
boundaries. The model is a width-4 U-YNet re-initialised so that its outputs depend smoothly on the
picture (see ``smooth_uynet``) and the crops are real face crops of the astronaut portrait made by our
own crop code.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from deepyn_gui.backends import vart as vb
from deepyn_gui.core.errors import BackendError, DeepYNError, ModelError
from deepyn_gui.core.inference import Availability, InferenceBackend

try:
    from tests import media
except ImportError:  # bare `pytest` without the repo root on sys.path
    import media  # type: ignore[no-redef]

FAKES = Path(__file__).resolve().parents[1] / "fakes"
WIDTH = 4
N_CROPS = 11  # not a multiple of the DPU batch (8): the last batch is padded


# ---------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_vitis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Make ``import xir, vart`` find the test double and pretend a card's device node exists."""
    monkeypatch.syspath_prepend(str(FAKES))
    for name in ("xir", "vart", "fake_xmodel"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    node = tmp_path / "xclmgmt0"
    node.touch()
    monkeypatch.setattr(vb, "DEVICE_GLOBS", (str(node),))
    import fake_xmodel
    import vart as fake_vart

    fake_vart.reset_stats()
    yield fake_xmodel
    for name in ("xir", "vart", "fake_xmodel"):
        sys.modules.pop(name, None)


def smooth_uynet(width: int, seed: int):  # type: ignore[no-untyped-def]
    """A random U-YNet whose outputs depend smoothly on the picture, as a trained network's do.

    PyTorch's default init fades to the biases at width 4 (every crop gets the same score), and
    He-normal 3x3 kernels make a random high-pass filter bank that amplifies pixel noise far more than
    a trained network would. Here every 3x3 kernel is a binomial blur times a He-scaled channel mix,
    other layers He-normal, biases zero.
    """
    from torch import nn

    from deepyn_gui.core.model.uynet import build_uynet

    model = build_uynet(width, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    blur = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d) and mod.kernel_size == (3, 3):
                out_c, in_c = mod.weight.shape[:2]
                mix = torch.randn(out_c, in_c, generator=g) * math.sqrt(2.0 / in_c)
                mod.weight.copy_(mix[:, :, None, None] * blur)
                mod.bias.zero_()
            elif isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                fan_in = mod.weight.shape[0] * 4 if isinstance(mod, nn.ConvTranspose2d) else mod.weight[0].numel()
                mod.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=g)
                mod.bias.zero_()
    return model.eval()


def astronaut_crops(n: int) -> np.ndarray:
    """Real face crops: the astronaut's face found by our detector, cut at several margins/offsets."""
    from skimage import data

    from deepyn_gui.core.faces import crop_transform_for_box, detect_and_crop, extract_crop, make_detector

    img = data.astronaut()
    found = detect_and_crop(img, make_detector("auto"))
    assert found, "the detector must find the astronaut's face"
    x, y, w, h = found[0].detection.box
    crops = []
    k = 0
    while len(crops) < n:
        margin = (1.1, 1.3, 1.6, 2.0, 2.6)[k % 5]
        dx = (k // 5) * 0.15 * w
        c = extract_crop(img, crop_transform_for_box((x + dx, y, w, h), margin=margin))
        crops.append(c[:, ::-1] if k % 2 else c)
        k += 1
    return np.ascontiguousarray(np.stack(crops))


class Setup:
    """Weights (state_dict + identical ONNX export), crops and calibrated output fix points."""

    def __init__(self, root: Path) -> None:
        from deepyn_gui.core.model.export import export_onnx

        torch.set_num_threads(1)
        self.model = smooth_uynet(WIDTH, seed=4)
        self.crops = astronaut_crops(N_CROPS)
        x = self.float_input(self.crops)
        with torch.no_grad():
            ml, _ = self.model.forward_logits(x)
            d = ml[:, 1] - ml[:, 0]
            # spread the mask logits (std 2) and centre them: half the pixels "manipulated"
            gain = 2.0 / float(d.std())
            self.model.outc.conv.weight *= gain
            self.model.outc.conv.bias[1] -= gain * float(d.median())
            # and the class logits (std 0.1 over these crops, centred): scores straddle 0.5
            c = self.model.forward_logits(x)[1][:, 0]
            cgain = 0.1 / float(c.std())
            self.model.linear_2.weight *= cgain
            self.model.linear_2.bias -= cgain * float(c.mean())
            ml, cl = self.model.forward_logits(x)
        choose_fix_point = _load_fake_xmodel().choose_fix_point
        self.mask_fix = choose_fix_point(float(ml.abs().max()) * 1.25)
        self.class_fix = choose_fix_point(float(cl.abs().max()) * 1.25)
        self.weights = root / "ref.pt"
        torch.save(self.model.state_dict(), self.weights)
        self.onnx = export_onnx(self.model, root / "lively.onnx", {"deepyn.name": "lively-w4"}, threads=1)

    @staticmethod
    def float_input(crops: np.ndarray):  # type: ignore[no-untyped-def]
        return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0

    def xmodel(self, fx, path: Path, **kw):  # type: ignore[no-untyped-def]
        kw.setdefault("input_fix", 6)
        kw.setdefault("mask_fix", self.mask_fix)
        kw.setdefault("class_fix", self.class_fix)
        return fx.write_fake_xmodel(path, self.weights, WIDTH, **kw)


def _load_fake_xmodel():  # type: ignore[no-untyped-def]
    """tests/fakes/fake_xmodel.py without putting the fakes on sys.path (it imports no xir)."""
    spec = importlib.util.spec_from_file_location("_fake_xmodel_helpers", FAKES / "fake_xmodel.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("vart"))


def int8_reference(model, crops: np.ndarray, f_in: int, f_mask: int, f_cls: int):  # type: ignore[no-untyped-def]
    """What the card must return, computed here independently of the backend's code.

    x̃ = round(clip(p/255·2^f_in, −128, 127))·2^−f_in (float64), the reference logits on x̃, then the
    softmax channel 1 and 1 − sigmoid(logit) in float64. Output quantisation is *not* applied here:
    it is the tolerance.
    """
    q = np.rint(np.clip(crops.astype(np.float64) / 255.0 * 2.0**f_in, -128, 127))
    x = torch.from_numpy((q * 2.0**-f_in).astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        ml, cl = model.forward_logits(x)
    ml64, cl64 = ml.double(), cl.double()
    mask = torch.softmax(ml64, dim=1)[:, 1].numpy()
    score = (1.0 - torch.sigmoid(cl64[:, 0])).numpy()
    return mask, score


# ---------------------------------------------------------------------------------------------------
# quantisation maths
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fix", [5, 6, 7, 8])
def test_input_quantization_matches_the_formula_and_clips(fix: int) -> None:
    p = np.arange(256, dtype=np.uint8)
    expected = np.clip(np.rint(p / 255.0 * 2.0**fix), -128, 127).astype(np.int8)
    got = vb.quantize_input(p.reshape(1, 1, 256, 1).repeat(3, axis=3), fix)
    assert got.dtype == np.int8
    assert np.array_equal(got[0, 0, :, 0], expected)
    # the original script's bug: 255 with fix 7 wrapped to -128; here it saturates
    assert int(vb.input_lut(fix)[255]) == min(127, 2**fix)
    assert (vb.input_lut(fix) >= 0).all()


def test_input_quantization_error_is_half_a_step_or_the_clip() -> None:
    assert vb.input_quantization_error(6) <= 2.0**-7 + 1e-12
    # fix 7: 255 -> 127/128, an error of exactly 1/128 (the clipping, not the rounding)
    assert vb.input_quantization_error(7) == pytest.approx(1 / 128)


def test_output_dequantization_softmax_and_sigmoid() -> None:
    codes = np.array([[[[10, -20], [0, 0], [-128, 127]]]], dtype=np.int8)  # [1,1,3,2]
    prob = vb.mask_prob_from_codes(codes, 4)
    l0, l1 = codes[..., 0] / 16.0, codes[..., 1] / 16.0
    ref = np.exp(l1) / (np.exp(l0) + np.exp(l1))
    assert prob.dtype == np.float32 and prob.shape == (1, 1, 3)
    assert np.allclose(prob, ref, atol=1e-6)
    cls = np.array([[40], [-40], [0]], dtype=np.int8)
    fake = vb.fake_score_from_codes(cls, 5)  # logit = code / 32 = P(real) before the sigmoid
    assert np.allclose(fake, 1.0 - 1.0 / (1.0 + np.exp(-cls[:, 0] / 32.0)), atol=1e-7)
    assert fake[0] < 0.5 < fake[1] and fake[2] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------
# the backend against the double
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("input_fix", [6, 7])
def test_vart_equals_the_int8_reference_up_to_output_quantisation(
    fake_vitis, setup: Setup, tmp_path: Path, input_fix: int  # type: ignore[no-untyped-def]
) -> None:
    """The backend's quantise -> DPU -> dequantise -> softmax/sigmoid chain, checked exactly.

    The reference runs on x̃ computed here from the formula, so a wrong rounding, a missing clip
    (fix 7: 255 must become 127, not −128), BGR instead of RGB or NCHW instead of NHWC would show.
    The only remaining difference is output quantisation: each logit is off by at most half a step
    2^−(f+1); mask = sigmoid(l1 − l0) and sigmoid is 1/4-Lipschitz, so |Δmask| <= 2^−f_mask / 4 and
    |Δscore| <= 2^−(f_cls+1) / 4 (+1e-6 for float32 arithmetic).
    """
    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel", input_fix=input_fix)
    with vb.VartBackend(path, threads=2) as backend:
        assert isinstance(backend, InferenceBackend)
        mask, score = backend.infer(setup.crops)
    ref_mask, ref_score = int8_reference(setup.model, setup.crops, input_fix, setup.mask_fix, setup.class_fix)
    assert mask.shape == (N_CROPS, 224, 224) and mask.dtype == np.float32
    assert score.shape == (N_CROPS,) and score.dtype == np.float32
    assert np.max(np.abs(mask - ref_mask)) <= 2.0**-setup.mask_fix / 4 + 1e-6
    assert np.max(np.abs(score - ref_score)) <= 2.0 ** -(setup.class_fix + 1) / 4 + 1e-6
    # the test means something: the outputs vary with the crop and the mask is not trivial
    assert np.ptp(ref_score) > 10 * 2.0 ** -(setup.class_fix + 1)
    assert 0.1 < float((ref_mask >= 0.5).mean()) < 0.9


def test_vart_matches_the_onnx_backend_within_the_derived_tolerance(
    fake_vitis, setup: Setup, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """VART (int8 at the card's boundaries) vs ONNX Runtime (fp32) on the same real crops.

    Derivation (triangle inequality, every term accounted for):
    VART − ONNX = [VART − P(y(x̃))] + [P(y(x̃)) − P(y(x))] + [P(y(x)) − ONNX], where y is the network's
    logits, P the softmax/sigmoid, x = p/255 and x̃ the input after int8 quantisation.

    1. Output step: each logit is rounded to within 2^−(f+1); sigmoid is 1/4-Lipschitz, mask =
       sigmoid(l1 − l0), score = sigmoid(−c), so term 1 <= 2^−f_mask/4 (mask), 2^−(f_cls+1)/4 (score)
       (shown exactly by the test above).
    2. Input step: |x̃ − x| <= 2^−(f_in+1) per value (f_in = 6: no clipping), propagated through the
       network by evaluating the reference at x̃ and at x: term 2 = |P(y(x̃)) − P(y(x))| per pixel and
       per crop. Closed forms do not work here: the worst case 2^−(f_in+1)·‖∇y‖₁ sums ~150 000 input
       sensitivities and is vacuous (order 1), and the quantisation-noise model (independent uniform
       rounding errors, σ = 2^−f_in/√12·‖∇y‖₂) under-estimates term 2 by about 2x on this smooth model:
       rounding errors are a function of the pixel value, so flat regions share them and they add up.
    3. Float arithmetic: torch vs ONNX Runtime in float32, 1e-5.

    Asserted on every pixel of every mask and every score; the tolerances are small (< 0.01 for scores,
    < 0.05 per mask pixel) and the figures are printed with -s.
    """
    from deepyn_gui.backends.onnx import OnnxBackend

    f_in = 6
    assert vb.input_quantization_error(f_in) <= 2.0 ** -(f_in + 1)  # half a step: no clipping at f_in = 6
    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel", input_fix=f_in)
    onnx_b = OnnxBackend(setup.onnx, threads=1)
    try:
        with vb.VartBackend(path, threads=2) as vart_b:
            mask_v, score_v = vart_b.infer(setup.crops)
        mask_o, score_o = onnx_b.infer(setup.crops)
    finally:
        onnx_b.close()
    q_mask, q_score = int8_reference(setup.model, setup.crops, f_in, setup.mask_fix, setup.class_fix)
    with torch.no_grad():
        ml, cl = setup.model.forward_logits(Setup.float_input(setup.crops))
    f_mask = torch.softmax(ml.double(), dim=1)[:, 1].numpy()
    f_score = (1.0 - torch.sigmoid(cl.double()[:, 0])).numpy()

    tol_score = np.abs(q_score - f_score) + 2.0 ** -(setup.class_fix + 1) / 4 + 1e-5
    tol_mask = np.abs(q_mask - f_mask) + 2.0**-setup.mask_fix / 4 + 1e-5
    d_score = np.abs(score_v - score_o)
    d_mask = np.abs(mask_v - mask_o)
    print(f"\nscore: max |Δ| {d_score.max():.2e}, tolerance {tol_score.min():.2e}..{tol_score.max():.2e}; "
          f"mask: max |Δ| {d_mask.max():.2e}, mean {d_mask.mean():.2e}, largest tolerance {tol_mask.max():.2e}")
    assert (d_score <= tol_score).all(), (d_score, tol_score)
    assert (d_mask <= tol_mask).all(), float((d_mask - tol_mask).max())
    assert tol_score.max() < 0.01 and tol_mask.max() < 0.05  # tolerances that let anything through prove nothing
    # and the agreement a user sees
    a, b = mask_v >= 0.5, mask_o >= 0.5
    assert (a & b).sum() / (a | b).sum() > 0.99
    assert ((score_v >= 0.5) == (score_o >= 0.5)).mean() >= 10 / 11


def test_padding_is_dropped_and_runners_overlap(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """17 crops = 3 DPU batches (the last padded with 7 rows) spread over 2 runners concurrently."""
    import vart as fake_vart

    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel", faults={"latency_s": 0.3})
    crops = np.concatenate([setup.crops, setup.crops[:6]])
    with vb.VartBackend(path, threads=2) as backend:
        assert backend.dpu_batch == 8
        mask, score = backend.infer(crops)
        one_mask, one_score = backend.infer(crops[:1])
    assert mask.shape == (17, 224, 224) and score.shape == (17,)
    assert fake_vart.stats["runners_created"] == 2
    assert fake_vart.stats["jobs"] == 4
    assert fake_vart.stats["max_in_flight"] == 2  # the batches ran on both runners at once
    # a crop's result does not depend on its batch or position (same input -> same output codes)
    assert np.array_equal(score[11:], score[:6])
    assert np.array_equal(one_score, score[:1])
    assert np.array_equal(one_mask, mask[:1])


def test_describe_reports_tensors_and_fix_points(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel")
    with vb.VartBackend(path, threads=3, batch_size=16) as backend:
        d = backend.describe()
        assert backend.model_info.name == "YNET"
        assert len(backend.model_info.sha256) == 64
    assert d["runners"] == 3 and d["dpu_batch"] == 8 and d["precision"] == "int8"
    assert d["input"]["fix_point"] == 6 and d["input"]["dims"] == [8, 224, 224, 3]
    assert sorted(o["fix_point"] for o in d["outputs"]) == sorted([setup.mask_fix, setup.class_fix])
    assert d["subgraph"].startswith("subgraph_YNET") and d["dpu_name"].startswith("DPUCVDX8H")


def test_sidecar_metadata_gives_the_model_identity(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    path = setup.xmodel(fake_vitis, tmp_path / "ynet.xmodel")
    (tmp_path / "ynet.json").write_text(json.dumps({"deepyn.name": "uynet-w4-int8", "deepyn.trained": "false"}))
    with vb.VartBackend(path, threads=1) as backend:
        assert backend.model_info.name == "uynet-w4-int8"
        assert backend.model_info.trained is False


# ---------------------------------------------------------------------------------------------------
# the double enforces the contract (so that passing tests mean something)
# ---------------------------------------------------------------------------------------------------


def test_double_rejects_contract_violations(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import vart as fake_vart
    import xir as fake_xir

    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel")
    g = fake_xir.Graph.deserialize(str(path))
    sg = vb.select_dpu_subgraph(g)
    cpu = g.get_root_subgraph().toposort_child_subgraph()[0]
    with pytest.raises(RuntimeError, match="not a DPU subgraph"):
        fake_vart.Runner.create_runner(cpu, "run")
    r = fake_vart.Runner.create_runner(sg, "run")
    ins, outs = r.get_input_tensors(), r.get_output_tensors()
    good_in = [np.zeros(tuple(ins[0].dims), np.int8)]
    good_out = [np.zeros(tuple(t.dims), np.int8) for t in outs]
    bad_cases = {
        "dtype": ([np.zeros(tuple(ins[0].dims), np.float32)], good_out),
        "shape": ([np.zeros((4, 224, 224, 3), np.int8)], good_out),  # short batch not padded
        "NCHW": ([np.zeros((8, 3, 224, 224), np.int8)], good_out),
        "contiguous": ([np.zeros((8, 224, 224, 6), np.int8)[..., ::2]], good_out),
        "list": (good_in[0], good_out),
    }
    for what, (i, o) in bad_cases.items():
        with pytest.raises((RuntimeError, TypeError)):
            r.execute_async(i, o)
        assert what
    job = r.execute_async(good_in, good_out)
    assert isinstance(job, tuple) and job[1] == 0
    assert r.wait(job) == 0
    with pytest.raises(RuntimeError, match="already-waited"):
        r.wait(job)
    with pytest.raises(RuntimeError, match="unknown"):
        r.wait((job[0] + 100, 0))
    with pytest.raises(RuntimeError):
        r.wait(job[0])  # the bare id is not what execute_async returned


def test_double_outputs_are_garbage_until_wait(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import vart as fake_vart
    import xir as fake_xir

    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel", faults={"latency_s": 0.3})
    r = fake_vart.Runner.create_runner(vb.select_dpu_subgraph(fake_xir.Graph.deserialize(str(path))), "run")
    inp = [vb.quantize_input(setup.crops[:8], 6)]
    out = [np.zeros(tuple(t.dims), np.int8) for t in r.get_output_tensors()]
    job = r.execute_async(inp, out)
    assert (out[0] == -128).all()  # not yet computed
    r.wait(job)
    assert not (out[0] == -128).all()


# ---------------------------------------------------------------------------------------------------
# failure paths
# ---------------------------------------------------------------------------------------------------


def test_no_runtime_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "xir", None)  # import xir -> ImportError, as without Vitis AI
    monkeypatch.setitem(sys.modules, "vart", None)
    a = vb.availability()
    assert a == Availability(False, "xir/vart not importable: install Vitis AI 3.0 runtime + XRT")
    with pytest.raises(BackendError, match="xir/vart not importable"):
        vb.VartBackend(tmp_path / "y.xmodel")
    with pytest.raises(BackendError, match="install Vitis AI 3.0"):
        vb.inspect_xmodel(tmp_path / "y.xmodel")
    from deepyn_gui.backends import create_backend, list_backends

    listed = {spec.name: av for spec, av in list_backends()}
    assert listed["vart"] == a
    with pytest.raises(BackendError, match="vart is unavailable: xir/vart not importable"):
        create_backend("vart", model_path=tmp_path / "y.xmodel")


def test_deepyn_backends_explains_what_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from deepyn_gui.cli import main

    monkeypatch.setitem(sys.modules, "xir", None)
    monkeypatch.setitem(sys.modules, "vart", None)
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("vart"))
    assert "unavailable (xir/vart not importable: install Vitis AI 3.0 runtime + XRT)" in line


def test_no_card_is_a_device_error(fake_vitis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(vb, "DEVICE_GLOBS", (str(tmp_path / "nothing*"),))
    a = vb.availability()
    assert not a.available and a.reason.startswith("device error: no Xilinx card found")


def test_model_without_dpu_subgraph(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = setup.xmodel(fake_vitis, tmp_path / "cpu_only.xmodel", devices=("CPU", "CPU"))
    a = vb.availability(path)
    assert not a.available and a.reason.startswith("no DPU subgraph in cpu_only.xmodel")
    assert "subgraph_YNET__cpu_0 [CPU]" in a.reason
    with pytest.raises(ModelError, match="no DPU subgraph"):
        vb.VartBackend(path)
    assert "not usable: no DPU subgraph" in vb.inspect_xmodel(path)


def test_model_with_several_dpu_subgraphs(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = setup.xmodel(fake_vitis, tmp_path / "split.xmodel", devices=("DPU", "CPU", "DPU"))
    with pytest.raises(ModelError, match="2 DPU subgraphs") as err:
        vb.VartBackend(path)
    assert "subgraph_YNET__UYNetForDPU__0" in str(err.value) and "subgraph_YNET__UYNetForDPU__2" in str(err.value)
    assert not vb.availability(path).available


def test_runner_creation_error_is_a_device_error(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel",
                        faults={"create_runner": "XRT: no devices found (xclProbe returned 0)"})
    with pytest.raises(BackendError, match=r"device error: cannot create a DPU runner \(XRT: no devices found"):
        vb.VartBackend(path)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"input_dims": [8, 224, 224, 1]}, "expected one input [B,224,224,3]"),
        ({"input_dims": [8, 3, 224, 224]}, "expected one input [B,224,224,3]"),
        ({"mask_dims": [8, 112, 112, 2]}, "expected two outputs"),
        ({"class_dims": [8, 2]}, "expected two outputs"),
    ],
)
def test_wrong_dims_are_refused_naming_what_was_found(
    fake_vitis, setup: Setup, tmp_path: Path, kw: dict, needle: str  # type: ignore[no-untyped-def]
) -> None:
    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel", **kw)
    with pytest.raises(ModelError) as err:
        vb.VartBackend(path)
    msg = str(err.value)
    assert needle in msg and "found inputs" in msg


def test_unreadable_xmodel_and_missing_model(fake_vitis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "junk.xmodel"
    bad.write_bytes(b"\x00\x01 not a graph")
    with pytest.raises(ModelError, match="junk.xmodel is not a readable xmodel"):
        vb.VartBackend(bad)
    with pytest.raises(ModelError, match="pass --model YNET.xmodel"):
        vb.VartBackend()
    with pytest.raises(ModelError, match="not found"):
        vb.VartBackend(tmp_path / "missing.xmodel")


def test_execute_error_raises_backend_error_and_the_next_batch_still_runs(
    fake_vitis, setup: Setup, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel", faults={"fail_jobs": [1]})
    with vb.VartBackend(path, threads=2) as backend:
        backend.infer(setup.crops[:4])  # job 0
        with pytest.raises(BackendError, match="DPU job on 4 crops failed .*DPU timeout"):
            backend.infer(setup.crops[:4])  # job 1
        _mask, score = backend.infer(setup.crops[:4])  # job 2: the runner is still usable
        assert np.isfinite(score).all()
        backend.close()
        with pytest.raises(BackendError, match="closed"):
            backend.infer(setup.crops[:1])


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "astronaut.mp4"
    return media.write_clip(path, media.astronaut_clip_frames(12, 320, 240, face_px=70), fps=12)


@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_failure_mid_run_marks_frames_error_in_the_pipeline(
    fake_vitis, setup: Setup, tmp_path: Path, face_clip: Path, on_error: str  # type: ignore[no-untyped-def]
) -> None:
    """Batch 2 of 3 fails on the card: its frames are ``error`` with the message, never scored."""
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze

    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel", faults={"fail_jobs": [1]})
    settings = AnalysisSettings(batch_size=4, on_error=on_error)  # type: ignore[arg-type]
    with vb.VartBackend(path, threads=2) as backend:
        result = analyze(str(face_clip), backend, settings)
    states = [f.state for f in result.frames]
    assert states[:4] == ["ok"] * 4
    assert states[4:8] == ["error"] * 4
    for fr in result.frames[4:8]:
        assert "DPU timeout" in (fr.error or "")
        assert all(face.fake_score is None for face in fr.faces)
    if on_error == "continue":
        assert result.complete and states[8:] == ["ok"] * 4
    else:
        assert not result.complete and len(result.frames) == 8
        assert "on_error=stop" in result.stop_reason


# ---------------------------------------------------------------------------------------------------
# xmodel inspection and the registry
# ---------------------------------------------------------------------------------------------------


def test_inspect_lists_subgraphs_devices_tensors_and_fix_points(
    fake_vitis, setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    from deepyn_gui.cli import main

    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel")
    assert main(["models", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "subgraphs  3" in out
    assert "device=DPU" in out and out.count("device=CPU") == 2
    assert "YNET__input_0_fix  dims=[8, 224, 224, 3]  dtype=xint8  fix_point=6" in out
    assert f"fix_point={setup.mask_fix}" in out and "dims=[8, 224, 224, 2]" in out
    assert "usable with --backend vart" in out


def test_registry_builds_the_vart_backend(fake_vitis, setup: Setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from deepyn_gui.backends import create_backend, list_backends

    assert {s.name: a for s, a in list_backends()}["vart"].available
    path = setup.xmodel(fake_vitis, tmp_path / "y.xmodel")
    backend = create_backend("vart", model_path=path, threads=2, batch_size=8)
    try:
        assert backend.name == "vart" and backend.batch_size == 8
        _mask, score = backend.infer(setup.crops[:2])
        assert score.shape == (2,)
    finally:
        backend.close()
    with pytest.raises(DeepYNError):
        create_backend("vart", model_path=None)


def test_device_check_can_be_skipped(fake_vitis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(vb, "DEVICE_GLOBS", (str(tmp_path / "nothing*"),))
    monkeypatch.setenv(vb.DEVICE_CHECK_ENV, "0")
    assert vb.availability().available
