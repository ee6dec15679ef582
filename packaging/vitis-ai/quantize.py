#!/usr/bin/env python3
"""Quantise U-YNet to int8 for the VCK5000 (DPUCVDX8H) with Vitis AI 3.0's ``pytorch_nndct``.

Three steps (README.md has the exact docker commands):

1. ``prepare`` (host, DeepYN's environment, torch >= 1.13): load the checkpoint safely with
   ``torch.load(weights_only=True)`` through DeepYN's strict loader and write ``weights.npz`` (plain
   arrays, read back with ``allow_pickle=False``: the docker's torch 1.12 has no ``weights_only``)
   plus ``deepyn.json``, the model's ``deepyn.*`` metadata that becomes the xmodel's sidecar.
2. ``calib`` (Vitis AI 3.0 docker, ``conda activate vitis-ai-pytorch``): run the calibration crops
   through ``torch_quantizer("calib", ...)`` and ``export_quant_config()``.
3. ``test`` (same docker): ``torch_quantizer("test", ...)``, one forward pass at batch 1, compare with
   the float model on the calibration crops, ``export_xmodel()`` -> ``UYNetForDPU_int.xmodel``.

The model given to the quantiser is :class:`UYNetForDPU`: U-YNet whose outputs are the raw mask
logits [N,2,224,224] and the class logit [N,1] (before the sigmoid; the class head predicts P(real)).
Both architectures are covered: the original U-YNet (``uynet.py``, any width) and the shipped
pretrained-encoder model ``lite0`` (``uynet_lite.py``: EfficientNet-Lite0, ReLU6/depthwise/1x1 only,
whose ``forward_logits`` keeps the same two-output contract), told apart by their weight names.
The softmax and sigmoid run on the CPU in DeepYN's VART backend. The input is RGB in [0, 1] (pixel /
255, no mean/std) exactly as in training; on the DPU it becomes NHWC int8 with the input fix point.

This file must run under the docker's Python 3.7 / torch 1.12: it loads only
``deepyn_gui/core/model/uynet.py`` / ``uynet_lite.py`` (by path; no package imports) and keeps to 3.7 syntax.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UYNET_PY = REPO / "deepyn_gui" / "core" / "model" / "uynet.py"
LITE_PY = REPO / "deepyn_gui" / "core" / "model" / "uynet_lite.py"
WIDTH_KEY = "inc.double_conv.0.weight"
LITE_KEY = "_conv_stem.weight"
NNDCT_MISSING = (
    "pytorch_nndct is not importable: run this step inside the Vitis AI 3.0 PyTorch docker "
    "(xilinx/vitis-ai-pytorch-cpu:ubuntu2004-3.0.0.106, then `conda activate vitis-ai-pytorch`)"
)


class RecipeError(Exception):
    """A problem the user can fix; printed as one line."""


def load_uynet_module(path=UYNET_PY):  # type: ignore[no-untyped-def]
    """DeepYN's U-YNet definition, imported by file path (no deepyn_gui package, no Python 3.8+ code)."""
    spec = importlib.util.spec_from_file_location("deepyn_" + Path(path).stem, str(path))
    if spec is None or spec.loader is None:
        raise RecipeError(f"cannot find {path} (run from a DeepYN checkout)")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def build_dpu_model(weights):  # type: ignore[no-untyped-def]
    """U-YNet with ``weights`` (name -> array) wrapped to output (mask logits, class logit)."""
    import numpy as np
    import torch
    from torch import nn

    if LITE_KEY in weights:
        model = load_uynet_module(LITE_PY).LiteUYNet(gen_head="gen_classifier.weight" in weights)
    elif WIDTH_KEY in weights:
        model = load_uynet_module().UYNet(int(weights[WIDTH_KEY].shape[0]))
    else:
        raise RecipeError(f"the weights have neither {WIDTH_KEY} nor {LITE_KEY}: not a U-YNet")
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    model.load_state_dict(state, strict=True)

    class UYNetForDPU(nn.Module):
        """What the DPU runs: the network up to the logits (softmax/sigmoid stay on the CPU)."""

        def __init__(self, inner):  # type: ignore[no-untyped-def]
            super().__init__()
            self.model = inner

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.model.forward_logits(x)

    UYNetForDPU.__qualname__ = "UYNetForDPU"
    return UYNetForDPU(model).eval()


def load_weights(path):  # type: ignore[no-untyped-def]
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"weights file not found: {p} (run `quantize.py prepare` first)")
    with np.load(str(p), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_calibration(calib, limit=None):  # type: ignore[no-untyped-def]
    """calib.npy (uint8 [N,224,224,3] RGB from build_calibration_set.py) -> float NCHW in [0, 1]."""
    import numpy as np
    import torch

    p = Path(calib)
    if p.is_dir():
        p = p / "calib.npy"
    if not p.is_file():
        raise RecipeError(f"calibration set not found: {p} (run build_calibration_set.py)")
    arr = np.load(str(p), allow_pickle=False)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (224, 224, 3):
        raise RecipeError(f"{p} holds {arr.dtype} {list(arr.shape)}, expected uint8 [N,224,224,3]")
    if limit:
        arr = arr[: int(limit)]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div(255.0)


def prepare(checkpoint, out, onnx=None):  # type: ignore[no-untyped-def]
    """Host step: checkpoint -> weights.npz (+ deepyn.json). Uses DeepYN's weights_only loader."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from deepyn_gui.core.model.checkpoint import load_checkpoint, load_lite_checkpoint

    try:
        state, width = load_checkpoint(checkpoint)
        arch = "uynet"
    except Exception as exc:  # not the original layout: the lite0 model's training checkpoint?
        if type(exc).__name__ != "ModelError":
            raise
        state, arch = load_lite_checkpoint(checkpoint), "lite0"
        width = 0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().numpy() for k, v in state.items()}
    tmp = out / ".weights.npz.part"
    with open(str(tmp), "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(out / "weights.npz")
    meta = {"deepyn.name": Path(checkpoint).stem, "deepyn.width": str(width), "deepyn.arch": arch}
    if onnx:
        from deepyn_gui.core.model.metadata import read_metadata_props

        meta.update({k: v for k, v in read_metadata_props(onnx).items() if k.startswith("deepyn.")})
    meta["deepyn.precision"] = "int8"
    meta["deepyn.notes"] = (meta.get("deepyn.notes", "") + " Quantised to int8 for the VCK5000 (Vitis AI 3.0).").strip()
    tmp = out / ".deepyn.json.part"
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out / "deepyn.json")
    return out / "weights.npz"


def _nndct():  # type: ignore[no-untyped-def]
    try:
        from pytorch_nndct.apis import torch_quantizer
    except ImportError:
        raise RecipeError(NNDCT_MISSING) from None
    return torch_quantizer


def quantize(mode, weights, calib, out, batch=8, limit=None, device="cpu"):  # type: ignore[no-untyped-def]
    """Docker step: ``calib`` collects the ranges; ``test`` checks and exports the xmodel."""
    import torch

    torch_quantizer = _nndct()  # fail first, before any heavy work
    model = build_dpu_model(load_weights(weights))
    data = load_calibration(calib, limit)
    dev = torch.device(device)
    dummy = torch.rand(1, 3, 224, 224)
    quantizer = torch_quantizer(mode, model, (dummy,), output_dir=str(out), device=dev)
    qmodel = quantizer.quant_model
    with torch.no_grad():
        if mode == "calib":
            for start in range(0, data.shape[0], batch):
                qmodel(data[start: start + batch].to(dev))
            quantizer.export_quant_config()
            print(f"calibrated on {data.shape[0]} crops; now run: quantize.py test ...")
            return None
        diffs = []
        for start in range(0, data.shape[0], batch):
            x = data[start: start + batch].to(dev)
            _qm, qc = qmodel(x)
            _fm, fc = model(x)
            diffs.append((torch.sigmoid(-qc) - torch.sigmoid(-fc)).abs().flatten())
        d = torch.cat(diffs)
        print(f"int8 vs float fake score on the calibration crops: mean |d| {float(d.mean()):.4f}, max {float(d.max()):.4f}")
        qmodel(data[:1].to(dev))  # export needs a batch-1 forward pass in test mode
        quantizer.export_xmodel(output_dir=str(out), deploy_check=False)
    xmodel = Path(out) / "UYNetForDPU_int.xmodel"
    print(f"wrote {xmodel}; now run: compile.sh {xmodel}")
    return xmodel


def build_parser():  # type: ignore[no-untyped-def]
    p = argparse.ArgumentParser(prog="quantize.py", description="Quantise U-YNet for the VCK5000 (Vitis AI 3.0).")
    sub = p.add_subparsers(dest="step", metavar="STEP")
    sub.required = True
    pre = sub.add_parser("prepare", help="host: checkpoint -> weights.npz + deepyn.json (safe load)")
    pre.add_argument("--checkpoint", required=True, help="U-YNet state_dict (.pth/.pt), loaded with weights_only=True")
    pre.add_argument("--onnx", default=None, help="DeepYN ONNX export of the same model: copy its deepyn.* metadata")
    pre.add_argument("--out", default="work", help="work folder (default work)")
    for mode in ("calib", "test"):
        q = sub.add_parser(mode, help=f"docker: {mode} mode of pytorch_nndct")
        q.add_argument("--weights", default="work/weights.npz", help="from the prepare step")
        q.add_argument("--calib", default="work/calib", help="folder (or calib.npy) from build_calibration_set.py")
        q.add_argument("--out", default="work/quantize_result", help="quantiser output folder")
        q.add_argument("--batch", type=int, default=8, help="calibration batch (default 8)")
        q.add_argument("--limit", type=int, default=None, help="use at most this many crops")
        q.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the quantiser runs")
    return p


def main(argv=None):  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(argv)
    try:
        if args.step == "prepare":
            path = prepare(args.checkpoint, args.out, args.onnx)
            print("wrote {} and {}".format(path, Path(args.out) / "deepyn.json"))
        else:
            if args.batch < 1:
                raise RecipeError("--batch must be at least 1")
            quantize(args.step, args.weights, args.calib, args.out, args.batch, args.limit, args.device)
    except RecipeError as exc:
        print(f"quantize.py: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # DeepYN's own errors (prepare) are one clear sentence too
        if type(exc).__name__.endswith("Error") and type(exc).__module__.startswith("deepyn_gui"):
            print(f"quantize.py: error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
