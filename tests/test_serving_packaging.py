"""packaging/serving: what can be checked without Triton, Kubernetes or a card (see its README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepyn_gui.backends import default_model_path
from deepyn_gui.serving import contract

SERVING = Path(__file__).resolve().parents[1] / "packaging" / "serving"

# Parsed in a child process: tritonclient.grpc's protobuf module and kserve's define overlapping
# "inference.*" symbols and cannot share one process's descriptor pool.
_PARSE = """
import json, sys
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
cfg = text_format.Parse(open(sys.argv[1]).read(), model_config_pb2.ModelConfig())
print(json.dumps(json_format.MessageToDict(cfg, preserving_proto_field_name=True)))
"""

_TYPES = {1: "TYPE_FP32"}  # ONNX TensorProto.FLOAT


def test_triton_config_parses_and_names_the_onnx_tensors() -> None:
    import importlib.util

    if importlib.util.find_spec("tritonclient") is None:  # imported in the child only (see _PARSE)
        pytest.skip("tritonclient is not installed (the remote extra)")
    onnx = pytest.importorskip("onnx")
    out = subprocess.run([sys.executable, "-c", _PARSE, str(SERVING / "triton" / "uynet" / "config.pbtxt")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["platform"] == "onnxruntime_onnx" and int(cfg["max_batch_size"]) >= 1
    assert "dynamic_batching" in cfg
    model = onnx.load(str(default_model_path()), load_external_data=False)

    def dims(vi: object) -> tuple[str, list[int]]:
        t = vi.type.tensor_type  # type: ignore[attr-defined]
        return _TYPES.get(t.elem_type, str(t.elem_type)), [d.dim_value for d in t.shape.dim][1:]  # drop batch

    onnx_tensors = {vi.name: dims(vi) for vi in [*model.graph.input, *model.graph.output]}
    for t in [*cfg["input"], *cfg["output"]]:
        assert t["name"] in onnx_tensors, t["name"]
        dtype, shape = onnx_tensors[t["name"]]
        assert t["data_type"] == dtype
        assert [int(d) for d in t.get("dims", [])] == shape, t["name"]
    # and the config is the contract the remote backend checks
    assert [t["name"] for t in cfg["input"]] == [contract.INPUT.name]
    assert [t["name"] for t in cfg["output"]] == [s.name for s in contract.OUTPUTS]


def test_kserve_manifest_is_an_inference_service_on_protocol_v2() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((SERVING / "kserve-inferenceservice.yaml").read_text())
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    model = doc["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2" and model["modelFormat"]["name"] == "onnx"
    assert model["storageUri"]
