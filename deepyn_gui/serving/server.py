"""``deepyn serve``: a backend behind kserve's ModelServer (Open Inference Protocol v2, REST + gRPC).

kserve is imported only here, and with ``sys.argv`` hidden: it parses the command line at import
time, and ``--model`` would otherwise be read as its own ``--model_name``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import numpy as np

from ..core.inference import InferenceBackend
from . import contract
from .batcher import DynamicBatcher


def import_kserve() -> Any:
    """Import kserve without letting it read our command line."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        import kserve
        import kserve.model_server
    finally:
        sys.argv = saved
    return kserve


def keep_binary_inputs_binary() -> None:
    """Make kserve keep binary request tensors as bytes (numpy reads them without copying).

    kserve 0.21's ``InferRequest.from_bytes`` turns every binary input into a Python list and back:
    measured here, 1.3 s of a 1.4 s round trip for 8 crops (4.8 MB). This replacement is the same
    parser without that detour; requests without binary inputs still go to kserve's own code.
    """
    import orjson
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

    original = InferRequest.from_bytes
    if getattr(original, "__deepyn_fast__", False):
        return

    def from_bytes(cls: Any, req_bytes: bytes, json_length: int, model_name: str) -> Any:
        try:
            doc = orjson.loads(req_bytes[:json_length])
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"Unrecognized request format: {exc}") from exc
        inputs_doc = doc.get("inputs") if isinstance(doc, dict) else None
        if not isinstance(inputs_doc, list) or not any(
            isinstance(i, dict) and "data" not in i and "binary_data_size" in (i.get("parameters") or {})
            for i in inputs_doc
        ):
            return original.__func__(cls, req_bytes, json_length, model_name)
        start = json_length
        inputs = []
        for entry in inputs_doc:
            params = entry.get("parameters") or None
            tensor = InferInput(name=entry["name"], shape=entry["shape"], datatype=entry["datatype"],
                                parameters=params)
            if entry.get("data") is not None:
                tensor.data = entry["data"]
            elif params and params.get("binary_data_size") is not None:
                end = start + int(params["binary_data_size"])
                if end > len(req_bytes):
                    raise InvalidInput(f"input {entry['name']!r} is shorter than its binary_data_size")
                tensor._raw_data = req_bytes[start:end]
                start = end
            else:
                raise InvalidInput(f"'data' field is missing for input '{entry['name']}' for model '{model_name}'")
            inputs.append(tensor)
        outputs = None
        if doc.get("outputs") is not None:
            outputs = [RequestedOutput(name=o["name"], parameters=o.get("parameters")) for o in doc["outputs"]]
        return cls(model_name=model_name, request_id=doc.get("id"), parameters=doc.get("parameters"),
                   infer_inputs=inputs, request_outputs=outputs)

    from_bytes.__deepyn_fast__ = True  # type: ignore[attr-defined]
    InferRequest.from_bytes = classmethod(from_bytes)


def build_model(name: str, backend: InferenceBackend, batcher: DynamicBatcher) -> Any:
    """A kserve Model named ``name`` that answers with ``backend`` through ``batcher``."""
    kserve = import_kserve()
    from kserve.errors import InferenceError, InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    info_param = contract.model_info_parameter(backend.model_info)

    class UYNetModel(kserve.Model):  # type: ignore[misc, name-defined]
        """U-YNet with the contract's tensors; metadata says so, so a client can check before sending."""

        def load(self) -> bool:
            self.ready = True
            return True

        def get_input_types(self) -> list[dict[str, Any]]:
            return [contract.INPUT.to_json()]

        def get_output_types(self) -> list[dict[str, Any]]:
            return [t.to_json() for t in contract.OUTPUTS]

        async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            if not isinstance(payload, InferRequest):
                try:
                    payload = InferRequest.from_grpc(payload)
                except Exception as exc:
                    raise InvalidInput(f"expected an Open Inference Protocol v2 request ({exc})") from exc
            tensor = payload.get_input_by_name(contract.INPUT.name)
            if tensor is None:
                raise InvalidInput(f"the request has no input named {contract.INPUT.name!r}")
            if tensor.datatype != contract.DATATYPE:
                raise InvalidInput(f"input {contract.INPUT.name!r} must be {contract.DATATYPE}, got {tensor.datatype}")
            try:
                crops = contract.input_to_crops(np.asarray(tensor.as_numpy(), dtype=np.float32))
            except (ValueError, TypeError) as exc:
                raise InvalidInput(str(exc)) from exc
            try:
                mask, score, took, merged = await asyncio.wrap_future(batcher.submit(crops))
            except Exception as exc:
                raise InferenceError(f"{backend.name} failed: {exc}") from exc
            outputs = []
            for spec, arr in zip(contract.OUTPUTS, (mask, score)):
                arr = np.ascontiguousarray(arr, dtype=np.float32)
                out = InferOutput(name=spec.name, shape=list(arr.shape), datatype=spec.datatype)
                # as bytes: kserve 0.21's gRPC encoder tests an ndarray's truth value and fails on it;
                # REST turns the bytes back into JSON numbers when the client did not ask for binary
                out.set_data_from_numpy(arr, binary_data=True)
                outputs.append(out)
            return InferResponse(
                response_id=payload.id or uuid.uuid4().hex,  # kserve's response needs a string id
                model_name=self.name,
                infer_outputs=outputs,
                parameters={
                    contract.PARAM_MODEL_INFO: info_param,
                    contract.PARAM_BACKEND: backend.name,
                    contract.PARAM_INFER_US: round(took * 1e6),
                    contract.PARAM_BATCH: int(merged),
                },
                use_binary_outputs=payload.use_binary_outputs,
                requested_outputs=payload.request_outputs,
            )

    model = UYNetModel(name)
    model.load()
    return model


def serve(
    backend: InferenceBackend,
    name: str = "uynet",
    http_port: int = 8080,
    grpc_port: int | None = None,
    host: str = "127.0.0.1",
    max_batch: int = 8,
    max_delay_ms: float = 5.0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. gRPC (when ``grpc_port`` is given) listens on every interface:
    kserve 0.21 fixes that address; only the REST address follows ``host``."""
    import_kserve()
    import kserve.model_server as ms

    class _HostRESTServer(ms.RESTServer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host  # kserve 0.21 hard-codes 0.0.0.0

    ms.RESTServer = _HostRESTServer  # this process exists only to serve
    keep_binary_inputs_binary()
    batcher = DynamicBatcher(backend, max_batch=max_batch, max_delay_s=max_delay_ms / 1000.0)
    model = build_model(name, backend, batcher)
    server = ms.ModelServer(
        http_port=http_port,
        grpc_port=grpc_port if grpc_port is not None else 0,
        enable_grpc=grpc_port is not None,
        grace_period=2,
        enable_latency_logging=False,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    try:
        server.start([model])
    finally:
        batcher.close()
        backend.close()
