"""Backend calls that can be given up on: ``backend.infer`` on a helper thread with a timeout.

A backend call that does not return within ``AnalysisSettings.infer_timeout_s`` counts as a failure.
Python cannot kill a thread stuck in native code (an onnxruntime or VART call that never returns), so
the hung call is *abandoned*: it stays on its own daemon thread ``deepyn-infer-abandoned`` until the
native call returns (or the process exits), its result is discarded, and the next batch runs on a
fresh caller thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .inference import InferenceBackend

_POLL_S = 0.05  # how often a waiting caller looks at the stop flag


class _BackendTimeout(Exception):
    """A backend call ran past the inference timeout and was abandoned."""


class _Abandon(Exception):
    """The run is stopping while a backend call is still in flight."""


class _CallJob:
    __slots__ = ("crops", "done", "exc", "result")

    def __init__(self, crops: np.ndarray) -> None:
        self.crops = crops
        self.done = threading.Event()
        self.result: tuple[Any, Any] | None = None
        self.exc: BaseException | None = None


class _InferCaller:
    """Runs ``backend.infer`` on a helper thread so that a hung call can be given up on.

    One long-lived thread serves every call of a run (backends such as VART keep per-thread state,
    and a thread per batch would cost more than it saves). When a call times out, its thread is
    renamed ``deepyn-infer-abandoned``, told to exit once the call returns, and a new thread serves
    the next call. A hung native call cannot be killed from Python; it is only left behind.
    """

    def __init__(self, backend: InferenceBackend) -> None:
        self._backend = backend
        self._jobs: queue.SimpleQueue[_CallJob | None] | None = None
        self._thread: threading.Thread | None = None
        self.abandoned: list[threading.Thread] = []

    def _serve(self, jobs: queue.SimpleQueue[_CallJob | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                job.result = self._backend.infer(job.crops)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting stage
                job.exc = exc
            finally:
                job.crops = None  # type: ignore[assignment]  # free the batch even if nobody waits
                job.done.set()

    def call(self, crops: np.ndarray, timeout: float, stopping: Callable[[], bool]) -> tuple[Any, Any]:
        """The backend's answer; raises its exception, _BackendTimeout, or _Abandon when stopping."""
        if self._thread is None or self._jobs is None:
            self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=self._serve, args=(self._jobs,), name="deepyn-infer-call", daemon=True
            )
            self._thread.start()
        job = _CallJob(crops)
        self._jobs.put(job)
        deadline = time.monotonic() + timeout
        while not job.done.wait(min(_POLL_S, max(0.0, deadline - time.monotonic()))):
            if stopping():
                raise _Abandon()
            if time.monotonic() >= deadline:
                self._abandon()
                raise _BackendTimeout()
        if job.exc is not None:
            raise job.exc
        assert job.result is not None
        return job.result

    def _abandon(self) -> None:
        if self._thread is not None and self._jobs is not None:
            self._thread.name = "deepyn-infer-abandoned"
            self._jobs.put(None)  # the thread exits as soon as the hung call returns
            self.abandoned.append(self._thread)
        self._thread, self._jobs = None, None

    def close(self, timeout: float) -> None:
        """Let the serving thread finish its current call and exit; abandon it after ``timeout`` s."""
        thread, jobs = self._thread, self._jobs
        self._thread, self._jobs = None, None
        if thread is not None and jobs is not None:
            jobs.put(None)
            thread.join(max(0.0, timeout))
            if thread.is_alive():
                thread.name = "deepyn-infer-abandoned"
                self.abandoned.append(thread)
