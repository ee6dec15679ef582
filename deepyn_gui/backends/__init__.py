"""Inference backends and the one registry both shells pick them from.

Every backend is listed whether or not it can run here; one whose runtime or model is missing is
reported unavailable with the reason, never an import error and never a fake result. Concrete
backend modules (and their runtimes: onnxruntime, xir/vart) are imported only when needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import BackendError
from ..core.inference import Availability, InferenceBackend
from ..resources import resource_path

DEFAULT_MODEL = "uynet_default.onnx"
DEFAULT_MODEL_INT8 = "uynet_default_int8.onnx"


@dataclass(frozen=True)
class BackendSpec:
    """A named way to run U-YNet: how to tell whether it can run here, and how to build it.

    ``runtime_availability`` (optional) answers the narrower question "is the runtime there?",
    used when the caller names its own model file so a missing *default* model does not block it.
    """

    name: str
    description: str
    availability: Callable[[], Availability]
    factory: Callable[..., InferenceBackend]
    runtime_availability: Callable[[], Availability] | None = None


def default_model_path(int8: bool = False) -> Path:
    """The bundled model (``resources/models/uynet_default[_int8].onnx``); it may not exist."""
    return resource_path("models", DEFAULT_MODEL_INT8 if int8 else DEFAULT_MODEL)


# --- ONNX Runtime -------------------------------------------------------------------------------


def _onnx_availability() -> Availability:
    from .onnx import onnx_availability

    return onnx_availability(int8=False)


def _onnx_int8_availability() -> Availability:
    from .onnx import onnx_availability

    return onnx_availability(int8=True)


def _onnx_runtime_availability() -> Availability:
    from .onnx import runtime_availability

    return runtime_availability()


def _onnx_factory(model_path: str | Path | None = None, **options: Any) -> InferenceBackend:
    from .onnx import OnnxBackend

    options.setdefault("name", "onnx")
    return OnnxBackend(model_path=model_path, **options)


def _onnx_int8_factory(model_path: str | Path | None = None, **options: Any) -> InferenceBackend:
    from .onnx import OnnxBackend

    options.setdefault("name", "onnx-int8")
    path = model_path if model_path is not None else default_model_path(int8=True)
    return OnnxBackend(model_path=path, **options)


# --- VART / VCK5000 (backends/vart.py, written separately; xir/vart exist only in Vitis AI) ------


def _import_vart() -> Any:
    return importlib.import_module(".vart", __name__)


def _vart_availability() -> Availability:
    try:
        vart = _import_vart()
    except ImportError as exc:
        return Availability(False, f"the VART backend module is not available ({exc})")
    try:
        result = vart.availability()
    except Exception as exc:  # noqa: BLE001 - a broken runtime must not break listing
        return Availability(False, f"VART availability check failed ({type(exc).__name__}: {exc})")
    if not isinstance(result, Availability):
        return Availability(False, f"VART availability check returned {result!r}")
    return result


def _vart_factory(model_path: str | Path | None = None, **options: Any) -> InferenceBackend:
    try:
        vart = _import_vart()
    except ImportError as exc:
        raise BackendError(f"the VART backend module is not available ({exc})") from exc
    if model_path is not None:
        options["model_path"] = model_path
    backend: InferenceBackend = vart.VartBackend(**options)
    return backend


def _build_registry() -> dict[str, BackendSpec]:
    specs = [
        BackendSpec(
            "onnx",
            "ONNX Runtime, fp32 (CUDA when available, else CPU)",
            _onnx_availability,
            _onnx_factory,
            _onnx_runtime_availability,
        ),
        BackendSpec(
            "onnx-int8",
            "ONNX Runtime, int8 quantised model (CPU)",
            _onnx_int8_availability,
            _onnx_int8_factory,
            _onnx_runtime_availability,
        ),
        BackendSpec(
            "vart",
            "Xilinx VCK5000 through Vitis AI VART (int8 DPU)",
            _vart_availability,
            _vart_factory,
        ),
    ]
    return {s.name: s for s in specs}


REGISTRY: dict[str, BackendSpec] = _build_registry()


def _safe(check: Callable[[], Availability]) -> Availability:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - listing must never raise
        return Availability(False, f"availability check failed ({type(exc).__name__}: {exc})")


def list_backends() -> list[tuple[BackendSpec, Availability]]:
    """Every registered backend with whether it can run here (never raises)."""
    return [(spec, _safe(spec.availability)) for spec in REGISTRY.values()]


def create_backend(name: str, model_path: str | Path | None = None, **options: Any) -> InferenceBackend:
    """Build backend ``name``; BackendError naming the reason if it is unknown or cannot run here.

    ``options`` go to the backend (``threads``, ``batch_size``, ``providers`` for ONNX...). With an
    explicit ``model_path`` only the runtime has to be present; the model file is checked by the
    backend itself (ModelError if it is missing or not a U-YNet).
    """
    spec = REGISTRY.get(name)
    if spec is None:
        raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(REGISTRY)}")
    if model_path is not None and spec.runtime_availability is not None:
        avail = _safe(spec.runtime_availability)
    else:
        avail = _safe(spec.availability)
    if not avail.available:
        raise BackendError(f"backend {name} is unavailable: {avail.reason}")
    return spec.factory(model_path, **options)


__all__ = [
    "REGISTRY",
    "Availability",
    "BackendSpec",
    "InferenceBackend",
    "create_backend",
    "default_model_path",
    "list_backends",
]
