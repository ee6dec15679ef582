"""Test double of Vitis AI's ``vart`` module: a DPU runner that enforces the API contract.

What it checks (each violation raises ``RuntimeError`` the way a misuse of the real runtime fails,
only louder and earlier): ``create_runner`` gets a DPU subgraph and mode ``"run"``; ``execute_async``
gets *lists* of numpy arrays, one per tensor, each ``int8``, C-contiguous, writeable (outputs) and of
exactly the tensor's dims (NHWC, full DPU batch); a runner is driven from one thread only; job ids are
unique; ``wait`` takes the job tuple returned by ``execute_async``, once, and waiting on an unknown or
already-waited job raises; the input buffer must not change while its job is in flight; outputs are
poisoned at submission and written only when the job completes, so reading them before ``wait`` gives
garbage.

What it computes: the reference U-YNet (torch, weights from a state_dict loaded with
``weights_only=True``) on the *dequantised* int8 input (q · 2^−f_in), producing the raw mask logits
(NHWC) and the class logit, quantised with each output tensor's ``fix_point`` as
round(clip(y · 2^f_out, −128, 127)) — the same int8 arithmetic as the card at its boundaries.

Fault injection for failure-path tests lives in the fake xmodel's ``faults`` object:
``create_runner`` (message), ``fail_jobs`` (0-based job numbers across the graph's runners whose
execution fails), ``fail_from_job`` (every job from that number on fails), ``latency_s`` (simulated
device time per job, so overlap between runners is observable).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import xir

__version__ = "3.0.0-fake"

_torch_lock = threading.Lock()
_models: dict[tuple[str, int], Any] = {}

#: Concurrency bookkeeping the tests read (reset with ``reset_stats``).
stats: dict[str, Any] = {"in_flight": 0, "max_in_flight": 0, "jobs": 0, "runners_created": 0}
_stats_lock = threading.Lock()


def reset_stats() -> None:
    with _stats_lock:
        stats.update({"in_flight": 0, "max_in_flight": 0, "jobs": 0, "runners_created": 0})


def _reference(path: str, width: int) -> Any:
    """The reference torch U-YNet, loaded once per weights file."""
    key = (path, width)
    with _torch_lock:
        if key not in _models:
            import torch

            from deepyn_gui.core.model.uynet import UYNet

            model = UYNet(width)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
            _models[key] = model.eval()
        return _models[key]


def _quantize(y: np.ndarray, fix: int) -> np.ndarray:
    return np.rint(np.clip(y.astype(np.float64) * math.ldexp(1.0, fix), -128, 127)).astype(np.int8)


def _graph_counter(graph: Any) -> int:
    """A job number shared by all runners of one deserialised graph (for fault injection)."""
    with _stats_lock:
        n = getattr(graph, "_fake_jobs", 0)
        graph._fake_jobs = n + 1
        return n


class _Job:
    def __init__(self, job_id: int, number: int) -> None:
        self.id = job_id
        self.number = number
        self.done = threading.Event()
        self.error: str | None = None


class Runner:
    """``vart.Runner``: create with ``Runner.create_runner(subgraph, "run")``."""

    def __init__(self, subgraph: xir.Subgraph) -> None:
        self._sg = subgraph
        self._spec = subgraph.fake_spec
        self._graph = subgraph.get_graph()
        self._faults: dict[str, Any] = dict(self._spec.get("faults", {}))
        self._inputs = subgraph.fake_inputs
        self._outputs = subgraph.fake_outputs
        self._next_id = 1
        self._jobs: dict[int, _Job] = {}
        self._owner: int | None = None
        self._lock = threading.Lock()
        with _stats_lock:
            stats["runners_created"] += 1

    @staticmethod
    def create_runner(subgraph: Any, mode: str = "run") -> Runner:
        if not isinstance(subgraph, xir.Subgraph):
            raise TypeError(f"create_runner needs an xir.Subgraph, got {type(subgraph).__name__}")
        if mode != "run":
            raise RuntimeError(f"unknown runner mode {mode!r} (use 'run')")
        if not subgraph.has_attr("device") or str(subgraph.get_attr("device")).upper() != "DPU":
            raise RuntimeError(f"[VART] subgraph {subgraph.get_name()} is not a DPU subgraph")
        msg = subgraph.fake_spec.get("faults", {}).get("create_runner")
        if msg:
            raise RuntimeError(msg)
        return Runner(subgraph)

    def get_input_tensors(self) -> list[xir.Tensor]:
        return list(self._inputs)

    def get_output_tensors(self) -> list[xir.Tensor]:
        return list(self._outputs)

    # -- contract checks ------------------------------------------------------------------------
    @staticmethod
    def _check(kind: str, arrays: Any, tensors: list[xir.Tensor], writeable: bool) -> None:
        if not isinstance(arrays, list):
            raise TypeError(f"{kind} must be a list of numpy arrays, got {type(arrays).__name__}")
        if len(arrays) != len(tensors):
            raise RuntimeError(f"{kind}: {len(arrays)} arrays for {len(tensors)} tensors")
        for a, t in zip(arrays, tensors):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{kind} {t.name}: expected a numpy array, got {type(a).__name__}")
            if a.dtype != np.int8:
                raise RuntimeError(f"{kind} {t.name}: dtype {a.dtype}, the DPU tensor is int8")
            if list(a.shape) != list(t.dims):
                raise RuntimeError(f"{kind} {t.name}: shape {list(a.shape)} != tensor dims {list(t.dims)}")
            if not a.flags["C_CONTIGUOUS"]:
                raise RuntimeError(f"{kind} {t.name}: array is not C-contiguous")
            if writeable and not a.flags["WRITEABLE"]:
                raise RuntimeError(f"{kind} {t.name}: output array is read-only")

    def execute_async(self, inputs: Any, outputs: Any) -> tuple[int, int]:
        me = threading.get_ident()
        with self._lock:
            if self._owner is None:
                self._owner = me
            elif self._owner != me:
                raise RuntimeError("runner used from two threads: create one runner per thread")
        self._check("inputs", inputs, self._inputs, writeable=False)
        self._check("outputs", outputs, self._outputs, writeable=True)
        for o in outputs:
            for i in inputs:
                if np.shares_memory(o, i):
                    raise RuntimeError("an output buffer overlaps an input buffer")
        number = _graph_counter(self._graph)
        fail_jobs = set(self._faults.get("fail_jobs", []))
        fail_from = self._faults.get("fail_from_job")
        if number in fail_jobs or (fail_from is not None and number >= int(fail_from)):
            raise RuntimeError(f"[VART] DPU timeout on job {number}: device hung (injected fault)")
        with self._lock:
            job = _Job(self._next_id, number)
            self._next_id += 1
            self._jobs[job.id] = job
        for o in outputs:
            o.fill(-128)  # poison: only valid after wait()
        snapshot = [i.copy() for i in inputs]
        with _stats_lock:
            stats["jobs"] += 1
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        threading.Thread(
            target=self._compute, args=(job, inputs, outputs, snapshot), name=f"fake-dpu-{job.id}", daemon=True
        ).start()
        return (job.id, 0)

    def _compute(self, job: _Job, inputs: list[np.ndarray], outputs: list[np.ndarray], snap: list[np.ndarray]) -> None:
        try:
            time.sleep(float(self._faults.get("latency_s", 0.0)))
            ref = self._spec["reference"]
            wpath = str(Path(self._graph.fake_path).parent / ref["state_dict"])
            model = _reference(wpath, int(ref["width"]))
            fin = int(self._inputs[0].get_attr("fix_point"))
            x = snap[0].astype(np.float32) * np.float32(math.ldexp(1.0, -fin))  # NHWC
            import torch

            with _torch_lock, torch.no_grad():
                mask_logits, class_logit = model.forward_logits(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
            values = {
                "mask": mask_logits.permute(0, 2, 3, 1).numpy(),
                "class": class_logit.numpy(),
            }
            for o, t, spec in zip(outputs, self._outputs, self._spec["outputs"]):
                y = values[spec["role"]].reshape(t.dims)
                o[...] = _quantize(y, int(t.get_attr("fix_point")))
            if any(not np.array_equal(a, b) for a, b in zip(inputs, snap)):
                job.error = "input buffer was modified while its job was in flight"
        except Exception as exc:  # noqa: BLE001 - surfaced by wait()
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            with _stats_lock:
                stats["in_flight"] -= 1
            job.done.set()

    def wait(self, job: Any, timeout: int = -1) -> int:
        if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[0], int)):
            raise RuntimeError(f"wait() takes the (job_id, status) tuple returned by execute_async, got {job!r}")
        with self._lock:
            j = self._jobs.pop(job[0], None)
        if j is None:
            raise RuntimeError(f"wait() on unknown or already-waited job {job[0]}")
        j.done.wait(None if timeout is None or timeout < 0 else timeout / 1000.0)
        if j.error:
            raise RuntimeError(j.error)
        return 0
