"""The Open Inference Protocol interface of a U-YNet model, as served by ``deepyn serve`` and Triton.

It is the bundled ONNX model's own interface (so Triton or AMD Inference Server can serve the same
file unchanged): input ``image`` FP32 [N,3,224,224] = RGB pixel / 255; outputs ``mask_prob`` FP32
[N,224,224] and ``fake_score`` FP32 [N]. Every backend takes 8-bit pixels, so the server rounds the
input to the nearest 1/255 step (exact for what the client sends).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.model.metadata import INPUT_NAME, OUTPUT_NAMES
from ..core.results import CROP_SIZE, ModelInfo

DATATYPE = "FP32"
#: Response parameters ``deepyn serve`` adds (a foreign server may not: then the model is unidentified).
PARAM_MODEL_INFO = "deepyn_model_info"
PARAM_BACKEND = "deepyn_backend"
PARAM_INFER_US = "deepyn_infer_us"  # an integer: kserve's gRPC encoder refuses float parameters
PARAM_BATCH = "deepyn_server_batch"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 = any size (the batch axis)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


INPUT = TensorSpec(INPUT_NAME, DATATYPE, (-1, 3, CROP_SIZE, CROP_SIZE))
OUTPUTS: tuple[TensorSpec, TensorSpec] = (
    TensorSpec(OUTPUT_NAMES[0], DATATYPE, (-1, CROP_SIZE, CROP_SIZE)),
    TensorSpec(OUTPUT_NAMES[1], DATATYPE, (-1,)),
)


def _check_tensors(kind: str, wanted: Sequence[TensorSpec], got: Any) -> str | None:
    if not isinstance(got, list):
        return f"its metadata lists no {kind}"
    by_name = {t.get("name"): t for t in got if isinstance(t, Mapping)}
    for spec in wanted:
        t = by_name.get(spec.name)
        if t is None:
            names = ", ".join(str(n) for n in by_name) or "none"
            return f"it has no {kind[:-1]} {spec.name!r} (it has {names})"
        if str(t.get("datatype", "")).upper() != spec.datatype:
            return f"{kind[:-1]} {spec.name!r} is {t.get('datatype')}, the contract needs {spec.datatype}"
        try:
            shape = [int(v) for v in t.get("shape", [])]
        except (TypeError, ValueError):
            return f"{kind[:-1]} {spec.name!r} has an unreadable shape {t.get('shape')!r}"
        if len(shape) != len(spec.shape) or shape[0] != -1 or shape[1:] != list(spec.shape[1:]):
            return (f"{kind[:-1]} {spec.name!r} has shape {shape}, the contract needs "
                    f"{list(spec.shape)} (-1 = any batch)")
    return None


def check_metadata(meta: Mapping[str, Any]) -> str | None:
    """None when a v2 model metadata response fits the contract, else the reason in one line."""
    return _check_tensors("inputs", [INPUT], meta.get("inputs")) or _check_tensors(
        "outputs", list(OUTPUTS), meta.get("outputs")
    )


def crops_to_input(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB crops [N,224,224,3] -> the contract's FP32 [N,3,224,224] / 255 (as OnnxBackend does)."""
    out = np.empty((crops.shape[0], 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)
    np.divide(crops.transpose(0, 3, 1, 2), np.float32(255.0), out=out, dtype=np.float32)
    return out


def input_to_crops(x: np.ndarray) -> np.ndarray:
    """The contract's FP32 input back to uint8 crops; ValueError naming what is wrong."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
        raise ValueError(f"input {INPUT_NAME!r} must have shape [N,3,{CROP_SIZE},{CROP_SIZE}], got {list(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"input {INPUT_NAME!r} holds no image")
    if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
        raise ValueError(f"input {INPUT_NAME!r} must hold finite pixel/255 values in [0, 1]")
    scaled = np.rint(x.astype(np.float32) * np.float32(255.0)).astype(np.uint8)
    return np.ascontiguousarray(scaled.transpose(0, 2, 3, 1))


def model_info_parameter(info: ModelInfo) -> str:
    """The served model's identity and calibration, for the response parameters (JSON text)."""
    d = info.to_json()
    d["path"] = ""  # a server's file layout is not the client's business
    return json.dumps(d, sort_keys=True)


def model_info_from_parameter(text: str) -> ModelInfo:
    """Inverse of :func:`model_info_parameter`; ValueError when it is not one."""
    try:
        return ModelInfo.from_json(json.loads(text))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"the server's {PARAM_MODEL_INFO} parameter is malformed ({exc})") from exc
