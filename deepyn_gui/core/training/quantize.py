"""Int8 variant of a U-YNet ONNX model (static QDQ, per-channel), calibrated on real face crops.

What is quantised is chosen by measurement on the 2-core AVX2 machine (no VNNI), ONNX Runtime 1.32:

* The layers at full crop resolution (224 x 224, only 8 channels: the first DoubleConv, the last
  decoder level, the mask head) stay fp32. There ORT's int8 convolution (NHWC, im2col, requantise
  every output) took ~20 ms per layer at batch 8 against ~12 ms for its fp32 NCHWc convolution;
  quantising them made the whole model 0.84x fp32 and put their rounding into every mask pixel.
* Everything between (convolutions from 16 channels up, transposed convolutions, max-pools, the
  decoder's adds, ReLUs fused into the convolutions) is int8, so activations stay int8 from layer
  to layer: there the int8 convolutions were 1.6-2.8x faster than fp32.
* The classifier's two small linear layers and the sigmoids stay fp32 (quantising the linear
  layers moved fake scores by 0.07 on average for no speed gain).

Result on 600 validation crops (model card): 1.2-1.3x fp32 at 1 thread, batch 8, mean |delta
fake score| 0.002. The fp32 model's ``deepyn.*`` metadata is copied over with
``deepyn.precision = int8``, so the int8 file carries the same calibration and is reported as the
same model at a different precision.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError


def _nchw(crops: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)


def _reader(crops: np.ndarray, batch: int) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class CropReader(CalibrationDataReader):  # type: ignore[misc]
        """Feeds real face crops (uint8 NHWC) to the calibrator as the model's ``image`` input."""

        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = (
                {"image": _nchw(crops[i : i + batch])} for i in range(0, len(crops), batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    return CropReader()


QUANTISED_OPS = ["Conv", "ConvTranspose", "MaxPool", "Add", "Relu", "Clip"]  # Clip: ReLU6 of the lite0 encoder


def full_resolution_nodes(model: Any) -> list[str]:
    """Names of the nodes left in fp32: those whose output has the input's height (224), and the
    max-pools that read such an output (so that quantising happens after the pool, on 4x less data).
    """
    import onnx

    graph = onnx.shape_inference.infer_shapes(model).graph
    values = [*graph.value_info, *graph.input, *graph.output]
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    full = dims[graph.input[0].name][2]
    if not full:
        raise ExportError("the model's input has no fixed height: cannot tell which layers are full resolution")

    def at_full(name: str) -> bool:
        d = dims.get(name, [])
        return len(d) == 4 and d[2] == full

    def pools_full(node: Any) -> bool:
        return node.op_type == "MaxPool" and at_full(node.input[0])

    keep: list[str] = []
    for node in graph.node:
        if node.name and (any(at_full(o) for o in node.output) or pools_full(node)):
            keep.append(node.name)
    return keep


#: lite0 models keep their stem and first MBConv blocks in fp32. Measured on 118 held-out crops (ORT 1.32):
#: everything int8 moved fake scores by 0.048 on average (max 0.49); stem + 7 blocks fp32: 0.0078 (max 0.077,
#: 1.6x); stem + 9: 0.0058 (max 0.044, 1.6x); stem + 11: 0.0059 (max 0.036, 1.1-1.4x; timings drift with the
#: load). The early, high-resolution EfficientNet blocks are the sensitive ones (with the whole encoder fp32
#: the decoder alone in int8 moved scores by 0.002). 11 keeps the max under 0.05 with a margin.
LITE_FP32_BLOCKS = 11


def lite_fp32_blocks(arch: str) -> int:
    """How many MBConv blocks stay fp32 for this Lite variant: those up to the end of the stride-16 stage
    with 112 (lite0) or 120 (lite2) channels -- lite0's measured 11, the same cut in any variant."""
    from ..model.uynet_lite import VARIANTS

    stages = VARIANTS.get(arch)
    return LITE_FP32_BLOCKS if stages is None else sum(stage[4] for stage in stages[:5])


def lite_early_nodes(model: Any, n_blocks: int = LITE_FP32_BLOCKS) -> list[str]:
    """Names of the lite0 encoder's stem and first ``n_blocks`` MBConv blocks (left in fp32)."""
    keys = ["/_conv_stem", "/_bn0", *(f"/_blocks.{i}/" for i in range(n_blocks))]
    return [n.name for n in model.graph.node if n.name and any(k in n.name for k in keys)]


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calib_crops: np.ndarray, batch: int = 8) -> Path:
    """Write an int8 QDQ copy of ``fp32_path`` to ``out_path`` (atomically) calibrated on ``calib_crops``."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, out = Path(fp32_path), Path(out_path)
    if len(calib_crops) == 0:
        raise ExportError("int8 quantisation needs some real face crops for calibration")
    with tempfile.TemporaryDirectory(dir=out.parent) as td:
        pre = Path(td) / "pre.onnx"
        q = Path(td) / "q.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        pre_model = onnx.load(str(pre))
        fp32_nodes = full_resolution_nodes(pre_model)
        src_meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
        arch = src_meta.get("deepyn.arch", "")
        lite = arch.startswith("lite")
        n_early = lite_fp32_blocks(arch)
        if lite:
            fp32_nodes += [n for n in lite_early_nodes(pre_model, n_early) if n not in fp32_nodes]
        quantize_static(
            str(pre),
            str(q),
            _reader(calib_crops, batch),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=QUANTISED_OPS,
            nodes_to_exclude=fp32_nodes,
            calibrate_method=CalibrationMethod.MinMax,
        )
        proto = onnx.load(str(q))
        meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
        meta["deepyn.precision"] = "int8"
        meta["deepyn.quantization"] = (
            f"onnxruntime {__import__('onnxruntime').__version__} quantize_static QDQ, per-channel, "
            f"U8 activations / S8 weights, MinMax on {len(calib_crops)} real crops; "
            f"{'/'.join(QUANTISED_OPS)} int8 except {len(fp32_nodes)} fp32 nodes (full-resolution"
            + (f"; {arch} stem and first {n_early} encoder blocks" if lite else "")
            + "); linear head and sigmoids in fp32"
        )
        del proto.metadata_props[:]
        for k in sorted(meta):
            e = proto.metadata_props.add()
            e.key, e.value = k, meta[k]
        fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".onnx.tmp", dir=out.parent)
        os.close(fd)
        try:
            onnx.save(proto, tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a shipped model must be readable by all
            os.replace(tmp, out)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return out


def run_session(path: str | Path, crops: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray, float]:
    """(fake_score [N], mask_prob [N,224,224], median ms per crop at batch 1) with ONNX Runtime."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = _nchw(crops)
    scores, masks, times = [], [], []
    s.run(None, {"image": x[:1]})  # warm-up
    for i in range(len(x)):
        t = time.perf_counter()
        m, f = s.run(["mask_prob", "fake_score"], {"image": x[i : i + 1]})
        times.append(time.perf_counter() - t)
        scores.append(f)
        masks.append(m)
    return np.concatenate(scores), np.concatenate(masks), float(np.median(times) * 1000.0)


def agreement(fp32: tuple[np.ndarray, np.ndarray, float], int8: tuple[np.ndarray, np.ndarray, float]) -> dict[str, float]:
    """Mean/max |Δ fake_score|, mean IoU of the two masks at 0.5 (faces where either is non-empty), speed ratio."""
    s32, m32, t32 = fp32
    s8, m8, t8 = int8
    d = np.abs(s32 - s8)
    ious = []
    for a, b in zip(m32 > 0.5, m8 > 0.5):
        u = np.logical_or(a, b).sum()
        if u:
            ious.append(np.logical_and(a, b).sum() / u)
    return {
        "mean_abs_delta_score": float(d.mean()),
        "max_abs_delta_score": float(d.max()),
        "mask_iou_fp32_vs_int8": float(np.mean(ious)) if ious else float("nan"),
        "mask_iou_n": float(len(ious)),
        "ms_per_crop_fp32": t32,
        "ms_per_crop_int8": t8,
        "speedup_int8": t32 / t8 if t8 > 0 else float("nan"),
    }
