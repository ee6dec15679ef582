"""Inference backends and the one registry both shells pick them from.

Every backend is listed whether or not it can run here; one whose runtime or model is missing is
reported unavailable with the reason, never an import error and never a fake result. Concrete
backend modules (and their runtimes: onnxruntime, xir/vart) are imported only when needed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import BackendError, BackendUnavailable, InputError
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



def model_file_for(backend: str, model_path: str | None) -> Path | None:
    """The model file backend ``backend`` would load (None when it cannot be known without loading it)."""
    if model_path:
        return Path(model_path)
    if backend in ("onnx", "onnx-int8"):
        return default_model_path(int8=backend == "onnx-int8")
    return None  # e.g. vart, remote: no default model file here

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


# --- remote: Open Inference Protocol v2 servers (backends/remote.py; tritonclient imported lazily) --


def _remote_availability() -> Availability:
    from .remote import runtime_availability

    avail = runtime_availability()
    if not avail.available:
        return avail
    return Availability(True, "give endpoints: --backend remote:url=http://host:8080[,url=...],model=NAME")


def _remote_factory(model_path: str | Path | None = None, **options: Any) -> InferenceBackend:
    from .remote import from_options

    return from_options(model_path, **options)


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
        BackendSpec(
            "remote",
            "KServe v2 / Open Inference Protocol servers (deepyn serve, Triton, KServe), pooled",
            _remote_availability,
            _remote_factory,
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


_OPTION_START = re.compile(r"[,:](?=\s*[A-Za-z_][A-Za-z0-9_]*=)")


def parse_backend_spec(text: str) -> tuple[str, dict[str, list[str]]]:
    """``name[:key=value[,key=value]...]`` -> (name, {key: [values]}); InputError when malformed.

    Options are separated by ``:`` or ``,`` before a ``key=``, so values may hold URLs
    (``remote:url=http://a:8080,url=http://b:8080,model=uynet``); a key may repeat (``url``).
    """
    name, sep, rest = text.strip().partition(":")
    opts: dict[str, list[str]] = {}
    if sep:
        for piece in _OPTION_START.split(rest):
            key, eq, value = piece.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise InputError(f"bad backend option {piece!r} in {text!r}: use {name}:key=value")
            opts.setdefault(key.strip(), []).append(value.strip())
    if not name.strip():
        raise InputError(f"empty backend name in {text!r}")
    return name.strip(), opts


def split_backend_list(text: str) -> list[str]:
    """Split ``onnx,remote:url=http://a:8080,url=http://b:8080`` into one spec per backend.

    A comma followed by ``key=`` continues the current backend's options; any other comma starts
    the next backend.
    """
    return [p.strip() for p in re.split(r",(?!\s*[A-Za-z_][A-Za-z0-9_]*=)", text) if p.strip()]


def _spec_options(name: str, opts: dict[str, list[str]], model_path: str | Path | None,
                  options: dict[str, Any]) -> tuple[str | Path | None, dict[str, Any]]:
    """Merge ``name:key=value`` options into create_backend's arguments (the spec wins)."""
    if name == "remote":
        return model_path, {**options, **opts}
    merged = dict(options)
    for key, values in opts.items():
        value = values[-1]
        if key == "model":
            model_path = value
        elif key in ("threads", "batch"):
            try:
                merged["threads" if key == "threads" else "batch_size"] = int(value)
            except ValueError:
                raise InputError(f"{key} must be a whole number, got {value!r}") from None
        else:
            raise InputError(f"unknown option {key!r} for backend {name} (known: model, threads, batch)")
    return model_path, merged


def create_backend(name: str, model_path: str | Path | None = None, **options: Any) -> InferenceBackend:
    """Build backend ``name``; BackendError naming the reason if it is unknown or cannot run here.

    ``name`` may carry options (``onnx:threads=1``, ``remote:url=http://host:8080,model=uynet``).

    ``options`` go to the backend (``threads``, ``batch_size``, ``providers`` for ONNX...). With an
    explicit ``model_path`` only the runtime has to be present; the model file is checked by the
    backend itself (ModelError if it is missing or not a U-YNet).
    """
    name, spec_opts = parse_backend_spec(name)
    if spec_opts or name == "remote":
        model_path, options = _spec_options(name, spec_opts, model_path, options)
    spec = REGISTRY.get(name)
    if spec is None:
        raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(REGISTRY)}")
    if model_path is not None and spec.runtime_availability is not None:
        avail = _safe(spec.runtime_availability)
    else:
        avail = _safe(spec.availability)
    if not avail.available:
        raise BackendUnavailable(name, avail.reason)
    return spec.factory(model_path, **options)


#: Inference threads when none are named (the CLI's --threads default, the viewer's default).
DEFAULT_THREADS = 2


def backend_label(name: str, threads: int | None = None, label: str = "") -> str:
    """THE label scheme of every shell: a given label, else the name, with ``@Nt`` when the backend
    runs with other than the default thread count (``onnx``, ``onnx@1t``)."""
    if label:
        return label
    return name if threads is None or threads == DEFAULT_THREADS else f"{name}@{threads}t"


@dataclass(frozen=True)
class BackendRequest:
    """One backend a shell asks for: registry name, model file, threads, batch, label, extra options."""

    name: str
    model_path: str | None = None
    threads: int = DEFAULT_THREADS
    label: str = ""
    batch_size: int | None = None
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()  # remote: url=..., timeout=..., token_env=...

    def display_label(self) -> str:
        return backend_label(self.name, self.threads, self.label)


@dataclass(frozen=True)
class BackendSetup:
    """What :func:`set_up_backends` made of one request: a ready backend, or the reason it cannot run."""

    label: str
    backend: InferenceBackend | None
    reason: str = ""


def set_up_backends(
    requests: Sequence[BackendRequest],
    factory: Callable[..., InferenceBackend] | None = None,
    batch_size: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[BackendSetup]:
    """Build every requested backend (the one set-up the CLI and the viewer's comparison share).

    Labels follow :func:`backend_label`, made distinct. A backend that cannot run here (or whose
    model is refused) comes back with the reason and no backend, never a stand-in; an unknown
    name is an InputError. ``cancelled`` is asked between backends (loading a model takes seconds).
    """
    from ..core.compare import unique_labels
    from ..core.errors import Cancelled, DeepYNError

    make = factory or create_backend
    labels = unique_labels([r.display_label() for r in requests])
    out: list[BackendSetup] = []
    try:
        for req, label in zip(requests, labels):
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled while loading the backends")
            if factory is None and req.name not in REGISTRY:
                raise InputError(f"unknown backend {req.name!r}; known backends: {', '.join(REGISTRY)}")
            try:
                b = make(req.name, model_path=req.model_path, threads=req.threads,
                         batch_size=req.batch_size or batch_size, **{k: list(v) for k, v in req.options})
            except Cancelled:
                raise
            except DeepYNError as exc:
                out.append(BackendSetup(label, None, exc.reason if isinstance(exc, BackendUnavailable) else str(exc)))
            else:
                out.append(BackendSetup(label, b))
    except BaseException:
        for done in out:
            if done.backend is not None:
                done.backend.close()
        raise
    return out


__all__ = [
    "DEFAULT_THREADS",
    "REGISTRY",
    "Availability",
    "BackendRequest",
    "BackendSetup",
    "BackendSpec",
    "InferenceBackend",
    "backend_label",
    "create_backend",
    "default_model_path",
    "list_backends",
    "parse_backend_spec",
    "set_up_backends",
    "split_backend_list",
]
