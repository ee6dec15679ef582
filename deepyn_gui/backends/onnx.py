"""ONNX Runtime backend: U-YNet on CPU (or CUDA when the installed onnxruntime offers it).

onnxruntime is imported lazily so that listing backends or starting the CLI never fails, or
slows down, because of it. Thread counts are explicit: on a small shared machine oversubscribed
threads were 5-10x slower (DESIGN.md §4).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import BackendError, DeepYNError, ModelError
from ..core.inference import Availability, check_backend_input, check_backend_output
from ..core.model.metadata import (
    INPUT_NAME,
    OUTPUT_NAMES,
    model_info_from_metadata,
    model_precision,
    sha256_file,
    validate_model_interface,
)
from ..core.results import CROP_SIZE, ModelInfo

RUNTIME = "onnxruntime"


def _default_model(int8: bool = False) -> Path:
    from . import default_model_path  # the registry owns where bundled models live

    return default_model_path(int8=int8)


def runtime_availability() -> Availability:
    """Whether onnxruntime can be imported here."""
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken native library
        return Availability(False, f"onnxruntime cannot be imported ({type(exc).__name__}: {exc})")
    return Availability(True)


def onnx_availability(model_path: str | Path | None = None, int8: bool = False) -> Availability:
    """onnxruntime importable and the model file (default: the bundled one) present."""
    runtime = runtime_availability()
    if not runtime.available:
        return runtime
    path = Path(model_path) if model_path is not None else _default_model(int8)
    if os.path.lexists(path) and not path.is_file():
        from ..core.input_limits import check_model_file

        try:
            check_model_file(path)
        except ModelError as exc:
            return Availability(False, str(exc))
    if not path.is_file():
        what = (
            "the model file"
            if model_path is not None
            else ("the bundled int8 model" if int8 else "the bundled model")
        )
        return Availability(False, f"{what} is missing: {path}")
    return Availability(True)


def _pick_providers(requested: list[str] | None) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise BackendError(
                f"onnxruntime here does not offer {', '.join(missing)} (it offers {', '.join(available)})"
            )
        return list(requested)
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxBackend:
    """Runs an ONNX U-YNet with onnxruntime; implements :class:`deepyn_gui.core.inference.InferenceBackend`."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        threads: int = 2,
        batch_size: int = 8,
        providers: list[str] | None = None,
        name: str = "onnx",
    ) -> None:
        if threads < 1:
            raise BackendError(f"threads must be at least 1, got {threads}")
        if batch_size < 1:
            raise BackendError(f"batch size must be at least 1, got {batch_size}")
        runtime = runtime_availability()
        if not runtime.available:
            raise BackendError(runtime.reason)
        import onnxruntime as ort

        # Belt and braces for a host program that imported onnxruntime before deepyn_gui set
        # ORT_DISABLE_TELEMETRY (deepyn_gui/__init__.py): at least no telemetry event is sent.
        ort.disable_telemetry_events()
        self.name = name
        self.batch_size = int(batch_size)
        self.threads = int(threads)
        self.model_path = Path(model_path) if model_path is not None else _default_model()
        from ..core.input_limits import check_model_file

        check_model_file(self.model_path)  # not found / not a regular file / over the size limit
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: warnings would land in the user's terminal
        # Idle intra-op threads must sleep, not spin: the pipeline decodes and detects on the same
        # cores while a batch runs, and spinning workers took the CPU they needed. 720p end to end
        # with 2 inference threads: 23.7 -> 27.0 fps at load 1.5, 9.3 -> 13 fps at load 6. Inference
        # alone loses ~7 % (63.6 -> 59.5 crops/s at load 1.4): the pipeline is what users run.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = _pick_providers(providers)
        try:
            self._session: Any = ort.InferenceSession(str(self.model_path), opts, providers=chosen)
        except Exception as exc:  # InvalidProtobuf, Fail, NotImplemented...
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"{self.model_path.name} cannot be loaded as an ONNX model ({first})") from exc
        validate_model_interface(self._session)
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        self._model_info = model_info_from_metadata(self.model_path, meta, sha256_file(self.model_path))
        self.precision = model_precision(self.model_path, meta)
        self._version = ort.__version__

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses (CUDA may have been refused at load)."""
        return list(self._session.get_providers()) if self._session is not None else []

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runtime": RUNTIME,
            "version": self._version,
            "providers": self.providers,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "model_path": str(self.model_path.resolve()),
            "precision": self.precision,
        }

    @staticmethod
    def _to_nchw(chunk: np.ndarray, buf: np.ndarray) -> np.ndarray:
        """uint8 NHWC -> float32 NCHW / 255 in one pass into ``buf`` (no float64 temporary)."""
        out = buf[: chunk.shape[0]]
        np.divide(chunk.transpose(0, 3, 1, 2), np.float32(255.0), out=out, dtype=np.float32)
        return out

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._session is None:
            raise BackendError(f"backend {self.name} is closed")
        crops = check_backend_input(crops, self.name)
        n = crops.shape[0]
        mask = np.empty((n, CROP_SIZE, CROP_SIZE), dtype=np.float32)
        score = np.empty((n,), dtype=np.float32)
        # One input buffer per call (not per backend) keeps concurrent infer() calls safe.
        buf = np.empty((min(n, self.batch_size), 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            x = self._to_nchw(crops[start:stop], buf)
            try:
                m, s = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
            except DeepYNError:
                raise
            except Exception as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise BackendError(f"onnxruntime failed on a batch of {stop - start} crops: {first}") from exc
            check_backend_output(np.asarray(m), np.asarray(s), stop - start)
            mask[start:stop] = m
            score[start:stop] = s
        check_backend_output(mask, score, n)
        return mask, score

    def close(self) -> None:
        """Drop the session (frees the model's memory); later calls to infer raise BackendError."""
        self._session = None

    def __repr__(self) -> str:
        return f"OnnxBackend(name={self.name!r}, model={self.model_path.name!r}, providers={self.providers})"
