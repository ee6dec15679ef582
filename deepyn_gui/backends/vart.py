"""VCK5000 backend: U-YNet compiled for the DPUCVDX8H, run through the Vitis AI 3.0 VART Python API.

Model contract (what ``packaging/vitis-ai/`` produces and this module expects): the ``.xmodel`` holds
exactly one subgraph whose ``device`` attribute is ``DPU``, with one input tensor
``[B, 224, 224, 3]`` (NHWC, RGB, int8, ``fix_point`` f_in) and two output tensors, told apart by shape:
the raw mask logits ``[B, 224, 224, 2]`` (NHWC, *before* the softmax) and the class logit
``[B, 1]`` (any shape with one value per crop, *before* the sigmoid). The DPU cannot run the softmax
or the sigmoid efficiently, so the graph exported for the DPU ends at those logits and this module
finishes the job on the CPU:

* input   q = round(clip(pixel / 255 · 2^f_in, −128, 127)) as int8 (RGB, NHWC, C-contiguous),
* outputs y = q_out · 2^−f_out,
* mask    = softmax over the two channels, channel 1 (= sigmoid(l1 − l0)),
* score   = 1 − sigmoid(class logit) = sigmoid(−logit), since the class head predicts P(real).

``xir`` and ``vart`` exist only inside the Vitis AI runtime, so they are imported lazily; without
them the backend is listed as unavailable with the reason, never an import error. One runner per
worker thread (AMD's guidance: runners are not shared between threads); a call to :meth:`infer` is
split into DPU-sized batches that run concurrently on all runners with ``execute_async``/``wait``,
while the pipeline's decode and detect threads keep working. To keep N runners busy from the
pipeline, give it batches of N x the DPU batch (``--threads 4 --batch 32`` for a batch-8 DPU).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import glob
import importlib
import json
import math
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import BackendError, DeepYNError, ModelError
from ..core.inference import Availability, check_backend_input, check_backend_output
from ..core.model.metadata import model_info_from_metadata, sha256_file
from ..core.results import CROP_SIZE, ModelInfo

if TYPE_CHECKING:
    from typing_extensions import Self

NAME = "vart"
RUNTIME_MISSING = "xir/vart not importable: install Vitis AI 3.0 runtime + XRT"
#: Device nodes a VCK5000 exposes under XRT (the Vitis AI docker passes them in with --device).
#: A test double points these at files of its own. ``DEEPYN_VART_DEVICE_CHECK=0`` skips the check
#: (then a missing card shows up as a runner-creation "device error" instead).
DEVICE_GLOBS: tuple[str, ...] = ("/dev/xclmgmt*", "/sys/bus/pci/drivers/xocl/0000:*")
DEVICE_CHECK_ENV = "DEEPYN_VART_DEVICE_CHECK"


# ---------------------------------------------------------------------------------------------------
# Runtime, device, graph
# ---------------------------------------------------------------------------------------------------


def _import_runtime() -> tuple[Any, Any]:
    """Import ``xir`` and ``vart``; BackendError with the install hint when they are not there."""
    try:
        xir = importlib.import_module("xir")
        vart = importlib.import_module("vart")
    except ImportError as exc:
        raise BackendError(f"{RUNTIME_MISSING} ({exc})") from exc
    return xir, vart


def _device_nodes() -> list[str]:
    found: list[str] = []
    for pattern in DEVICE_GLOBS:
        found.extend(sorted(glob.glob(pattern)))
    return found


def _deserialize(xir: Any, path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"xmodel file not found: {p}")
    try:
        return xir.Graph.deserialize(str(p))
    except Exception as exc:  # the runtime raises RuntimeError with its own log text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{p.name} is not a readable xmodel ({first})") from exc


def _device_of(subgraph: Any) -> str:
    return str(subgraph.get_attr("device")) if subgraph.has_attr("device") else "(no device)"


def _children(graph: Any) -> list[Any]:
    return list(graph.get_root_subgraph().toposort_child_subgraph())


def select_dpu_subgraph(graph: Any, name: str = "model") -> Any:
    """The one child subgraph whose ``device`` is DPU (never assumed to sit at a fixed index)."""
    children = _children(graph)
    dpu = [s for s in children if s.has_attr("device") and str(s.get_attr("device")).upper() == "DPU"]
    found = ", ".join(f"{s.get_name()} [{_device_of(s)}]" for s in children) or "no subgraphs at all"
    if not dpu:
        raise ModelError(f"no DPU subgraph in {name}: found {found}; compile it with vai_c_xir for DPUCVDX8H")
    if len(dpu) > 1:
        raise ModelError(
            f"{name} has {len(dpu)} DPU subgraphs ({', '.join(s.get_name() for s in dpu)}); DeepYN runs models "
            "compiled to a single DPU subgraph (an operator the DPU lacks split the graph: see packaging/vitis-ai)"
        )
    return dpu[0]


def availability(model_path: str | Path | None = None) -> Availability:
    """Runtime importable, a card visible, and (when a model is named) a usable DPU subgraph in it."""
    try:
        xir, _vart = _import_runtime()
    except BackendError:
        return Availability(False, RUNTIME_MISSING)
    if os.environ.get(DEVICE_CHECK_ENV, "1") != "0" and not _device_nodes():
        return Availability(
            False,
            "device error: no Xilinx card found (no /dev/xclmgmt* device, nothing bound to the xocl driver); "
            "check `xbutil examine` and that the Vitis AI container was started with the card's devices",
        )
    if model_path is not None:
        try:
            select_dpu_subgraph(_deserialize(xir, model_path), Path(model_path).name)
        except DeepYNError as exc:
            return Availability(False, str(exc))
    return Availability(True)


# ---------------------------------------------------------------------------------------------------
# Quantisation (pure numpy; exact, shared with the tests and the recipe)
# ---------------------------------------------------------------------------------------------------


def input_lut(fix_point: int) -> np.ndarray:
    """int8 code for every uint8 pixel: round(clip(p / 255 · 2^fix, −128, 127)), computed in float64.

    Clipping happens before the cast, so 255 with fix_point 7 becomes 127 (the original script
    wrapped it to −128). No pixel lies exactly half-way between two codes for fix_point >= 0
    (255 is odd), so the rounding mode never matters.
    """
    x = np.arange(256, dtype=np.float64) / 255.0 * math.ldexp(1.0, int(fix_point))
    return np.rint(np.clip(x, -128.0, 127.0)).astype(np.int8)


def quantize_input(crops: np.ndarray, fix_point: int, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB crops [n,224,224,3] -> int8 NHWC codes (written into ``out`` when given)."""
    lut = input_lut(fix_point)
    if out is None:
        return np.asarray(lut[crops])
    np.take(lut, crops, out=out)
    return out


def input_quantization_error(fix_point: int) -> float:
    """Largest |x̃ − x| over pixels x = p/255 after quantising with ``fix_point`` (rounding or clipping)."""
    codes = input_lut(fix_point).astype(np.float64) * math.ldexp(1.0, -int(fix_point))
    return float(np.max(np.abs(codes - np.arange(256) / 255.0)))


def mask_prob_from_codes(mask_codes: np.ndarray, fix_point: int) -> np.ndarray:
    """int8 NHWC mask logits [n,H,W,2] -> float32 [n,H,W] softmax channel 1 = sigmoid(l1 − l0)."""
    d = mask_codes[..., 1].astype(np.int16) - mask_codes[..., 0].astype(np.int16)  # in [-255, 255]
    diffs = np.arange(-255, 256, dtype=np.float64) * math.ldexp(1.0, -int(fix_point))
    lut = (1.0 / (1.0 + np.exp(-diffs))).astype(np.float32)
    return lut[d + 255]


def fake_score_from_codes(class_codes: np.ndarray, fix_point: int) -> np.ndarray:
    """int8 class logits (one per crop) -> float32 fake score = 1 − sigmoid(logit) = sigmoid(−logit)."""
    logit = class_codes.reshape(class_codes.shape[0], -1)[:, 0].astype(np.float64) * math.ldexp(1.0, -int(fix_point))
    return (1.0 / (1.0 + np.exp(logit))).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Tensor layout checks
# ---------------------------------------------------------------------------------------------------


def _dims(t: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in t.dims)


def _fix(t: Any) -> int:
    if not t.has_attr("fix_point"):
        raise ModelError(f"tensor {t.name} has no fix_point attribute: the xmodel was not quantised to int8")
    return int(t.get_attr("fix_point"))


def _tensor_text(tensors: Sequence[Any]) -> str:
    return ", ".join(f"{t.name} {list(_dims(t))}" for t in tensors) or "none"


class _Layout:
    """Which runner tensor is which, with dims and fix points, checked against the model contract."""

    def __init__(self, runner: Any, name: str) -> None:
        ins = list(runner.get_input_tensors())
        outs = list(runner.get_output_tensors())
        found = f"inputs {_tensor_text(ins)}; outputs {_tensor_text(outs)}"
        s = CROP_SIZE
        if len(ins) != 1 or len(_dims(ins[0])) != 4 or _dims(ins[0])[1:] != (s, s, 3):
            raise ModelError(f"{name} is not a U-YNet DPU model: expected one input [B,{s},{s},3] (NHWC); found {found}")
        self.batch = _dims(ins[0])[0]
        if self.batch < 1:
            raise ModelError(f"{name} has a DPU input batch of {self.batch}; found {found}")
        mask = [i for i, t in enumerate(outs) if _dims(t) == (self.batch, s, s, 2)]
        cls = [i for i, t in enumerate(outs) if len(_dims(t)) >= 1 and _dims(t)[0] == self.batch
               and math.prod(_dims(t)[1:]) == 1]
        if len(outs) != 2 or len(mask) != 1 or len(cls) != 1:
            raise ModelError(
                f"{name} is not a U-YNet DPU model: expected two outputs, mask logits [{self.batch},{s},{s},2] "
                f"and the class logit [{self.batch},1]; found {found}"
            )
        self.input = ins[0]
        self.outputs = outs
        self.mask_index, self.class_index = mask[0], cls[0]
        self.input_fix = _fix(ins[0])
        self.output_fix = [_fix(t) for t in outs]
        self.input_dims = _dims(ins[0])
        self.output_dims = [_dims(t) for t in outs]

    def describe(self) -> dict[str, Any]:
        return {
            "input": {"name": self.input.name, "dims": list(self.input_dims), "fix_point": self.input_fix},
            "outputs": [
                {"name": t.name, "dims": list(d), "fix_point": f}
                for t, d, f in zip(self.outputs, self.output_dims, self.output_fix)
            ],
        }


# ---------------------------------------------------------------------------------------------------
# Workers: one thread per runner
# ---------------------------------------------------------------------------------------------------

_STOP = object()


class _Worker(threading.Thread):
    """Owns one runner and its int8 buffers; takes DPU batches from the shared queue."""

    def __init__(self, index: int, runner: Any, layout: _Layout, tasks: queue.Queue[Any], label: str) -> None:
        super().__init__(name=f"deepyn-vart-{index}", daemon=True)
        self.runner = runner
        self.layout = layout
        self.tasks = tasks
        self.label = label
        self.in_buf = np.zeros(layout.input_dims, dtype=np.int8, order="C")
        self.out_bufs = [np.zeros(d, dtype=np.int8, order="C") for d in layout.output_dims]

    def run(self) -> None:
        while True:
            item = self.tasks.get()
            if item is _STOP:
                return
            crops, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._run_batch(crops))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(exc)

    def _run_batch(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = crops.shape[0]
        lay = self.layout
        quantize_input(crops, lay.input_fix, out=self.in_buf[:n])
        if n < lay.batch:
            self.in_buf[n:] = 0  # padding rows: computed by the DPU, dropped below
        try:
            job = self.runner.execute_async([self.in_buf], self.out_bufs)
            status = job[1] if isinstance(job, tuple) and len(job) > 1 else 0
            if status:
                raise RuntimeError(f"execute_async returned status {status}")
            done = self.runner.wait(job)
            if isinstance(done, int) and done != 0:
                raise RuntimeError(f"wait returned status {done}")
        except DeepYNError:
            raise
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{self.label}: DPU job on {n} crops failed ({msg})") from exc
        mask = mask_prob_from_codes(self.out_bufs[lay.mask_index][:n], lay.output_fix[lay.mask_index])
        score = fake_score_from_codes(self.out_bufs[lay.class_index][:n], lay.output_fix[lay.class_index])
        return mask, score


# ---------------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------------


def _model_info(path: Path, graph: Any) -> ModelInfo:
    """Identity from a ``NAME.json`` beside the xmodel (written by the recipe), else the file itself.

    The sidecar carries the ``deepyn.*`` metadata of the ONNX/checkpoint the xmodel was quantised
    from (name, trained, calibration), so scores are read with the same bands.
    """
    meta: dict[str, str] = {}
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{sidecar.name} beside the xmodel is not readable JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{sidecar.name} beside the xmodel must hold a JSON object of deepyn.* metadata")
        meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    if "deepyn.name" not in meta:
        with contextlib.suppress(Exception):  # a name is a nicety
            meta["deepyn.name"] = str(graph.get_name())
    return model_info_from_metadata(path, meta, sha256_file(path))


class VartBackend:
    """U-YNet on a VCK5000 through VART; implements :class:`deepyn_gui.core.inference.InferenceBackend`.

    ``threads`` is the number of runners (each with its own worker thread and int8 buffers).
    ``batch_size`` is how many crops callers send per :meth:`infer` (any number is accepted; the
    DPU batch itself is fixed by the xmodel, see ``dpu_batch``).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        threads: int = 2,
        batch_size: int = 8,
        name: str = NAME,
        **options: Any,
    ) -> None:
        if options:
            raise BackendError(f"the vart backend does not take option(s) {', '.join(sorted(options))}")
        if model_path is None:
            raise ModelError("the vart backend needs a compiled model: pass --model YNET.xmodel (see packaging/vitis-ai)")
        if threads < 1:
            raise BackendError(f"threads (runners) must be at least 1, got {threads}")
        if batch_size < 1:
            raise BackendError(f"batch size must be at least 1, got {batch_size}")
        self.name = name
        self.batch_size = int(batch_size)
        self.threads = int(threads)
        self.model_path = Path(model_path)
        xir, vart = _import_runtime()
        graph = _deserialize(xir, self.model_path)
        self._subgraph = select_dpu_subgraph(graph, self.model_path.name)
        self._model_info = _model_info(self.model_path, graph)
        self._runners: list[Any] = []
        try:
            for _ in range(self.threads):
                self._runners.append(vart.Runner.create_runner(self._subgraph, "run"))
        except Exception as exc:
            self._runners.clear()
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"device error: cannot create a DPU runner ({msg})") from exc
        try:
            self._layout = _Layout(self._runners[0], self.model_path.name)
        except BaseException:
            self._runners.clear()
            raise
        self.dpu_batch = self._layout.batch
        self._version = str(getattr(vart, "__version__", "") or "")
        self._tasks: queue.Queue[Any] = queue.Queue()
        self._workers = [
            _Worker(i, r, self._layout, self._tasks, f"{name} runner {i}") for i, r in enumerate(self._runners)
        ]
        for w in self._workers:
            w.start()
        self._closed = False
        self._lock = threading.Lock()

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info

    def describe(self) -> dict[str, Any]:
        sg = self._subgraph
        info: dict[str, Any] = {
            "name": self.name,
            "runtime": "vart",
            "version": self._version,
            "device": "DPU",
            "subgraph": sg.get_name(),
            "runners": self.threads,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "dpu_batch": self.dpu_batch,
            "model_path": str(self.model_path.resolve()),
            "precision": "int8",
            **self._layout.describe(),
        }
        for attr in ("dpu_name", "dpu_fingerprint"):
            if sg.has_attr(attr):
                info[attr] = str(sg.get_attr(attr))
        return info

    def submit(self, crops: np.ndarray) -> list[cf.Future[tuple[np.ndarray, np.ndarray]]]:
        """Queue ``crops`` as DPU batches on the runners; one future per batch, in order."""
        with self._lock:
            if self._closed:
                raise BackendError(f"backend {self.name} is closed")
            futures: list[cf.Future[tuple[np.ndarray, np.ndarray]]] = []
            for start in range(0, crops.shape[0], self.dpu_batch):
                fut: cf.Future[tuple[np.ndarray, np.ndarray]] = cf.Future()
                self._tasks.put((crops[start : start + self.dpu_batch], fut))
                futures.append(fut)
            return futures

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        crops = check_backend_input(crops, self.name)
        n = crops.shape[0]
        if n == 0:
            return np.empty((0, CROP_SIZE, CROP_SIZE), np.float32), np.empty((0,), np.float32)
        futures = self.submit(crops)
        masks: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        first_error: BaseException | None = None
        for fut in futures:  # wait for every batch, even after a failure: no job is left running
            try:
                m, s = fut.result()
                masks.append(m)
                scores.append(s)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                first_error = first_error or exc
        if first_error is not None:
            if isinstance(first_error, DeepYNError):
                raise first_error
            raise BackendError(f"{self.name}: {type(first_error).__name__}: {first_error}") from first_error
        mask = np.concatenate(masks)
        score = np.concatenate(scores)
        check_backend_output(mask, score, n)
        return mask, score

    def close(self) -> None:
        """Stop the workers and drop the runners (the card's resources are freed with them)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._workers:
                self._tasks.put(_STOP)
        for w in self._workers:
            w.join(timeout=10.0)
        self._workers.clear()
        self._runners.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # half-built object, or interpreter shutdown
            self.close()

    def __repr__(self) -> str:
        return f"VartBackend(model={self.model_path.name!r}, runners={self.threads}, dpu_batch={self.dpu_batch})"


# ---------------------------------------------------------------------------------------------------
# xmodel inspection (``deepyn models inspect``)
# ---------------------------------------------------------------------------------------------------


def inspect_xmodel(path: str | Path) -> str:
    """Subgraphs, devices, tensors, dims and fix points of an xmodel, as text for the terminal."""
    xir, _vart = _import_runtime()
    p = Path(path)
    graph = _deserialize(xir, p)
    lines = [f"xmodel     {p}", f"graph      {graph.get_name()}", f"sha256     {sha256_file(p)}"]
    children = _children(graph)
    lines.append(f"subgraphs  {len(children)}")
    for i, sg in enumerate(children):
        lines.append(f"  [{i}] {sg.get_name()}  device={_device_of(sg)}")
        for attr in ("dpu_name", "dpu_fingerprint"):
            if sg.has_attr(attr):
                lines.append(f"        {attr}={sg.get_attr(attr)}")
        for kind, tensors in (("in ", sg.get_input_tensors()), ("out", sg.get_output_tensors())):
            for t in sorted(tensors, key=lambda t: str(t.name)):
                fix = t.get_attr("fix_point") if t.has_attr("fix_point") else "-"
                lines.append(f"        {kind} {t.name}  dims={list(_dims(t))}  dtype={t.dtype}  fix_point={fix}")
    try:
        select_dpu_subgraph(graph, p.name)
        lines.append("DeepYN     one DPU subgraph: usable with --backend vart")
    except ModelError as exc:
        lines.append(f"DeepYN     not usable: {exc}")
    return "\n".join(lines)
