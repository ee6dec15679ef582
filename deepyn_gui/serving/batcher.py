"""Dynamic batching: concurrent requests that arrive within a few milliseconds share one backend call.

A server answering several clients (or one client's pool of threads) gets many small requests; the
accelerator (a VCK5000 runs batches of 8) is used best when they run together. One worker thread owns
the backend, so a backend never sees two calls at once.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..core.inference import InferenceBackend

Outcome = tuple[np.ndarray, np.ndarray, float, int]  # mask, score, backend seconds, merged batch size


@dataclass
class _Job:
    crops: np.ndarray
    future: Future[Outcome] = field(default_factory=Future)


class DynamicBatcher:
    """Queue requests; run them together (up to ``max_batch`` crops, waiting at most ``max_delay_s``)."""

    def __init__(self, backend: InferenceBackend, max_batch: int = 8, max_delay_s: float = 0.005) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.backend = backend
        self.max_batch = int(max_batch)
        self.max_delay_s = float(max_delay_s)
        self.calls = 0
        self.crops = 0
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="deepyn-serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, crops: np.ndarray) -> Future[Outcome]:
        """Future of ``(mask_prob, fake_score, backend_seconds, merged_batch_size)`` for these crops."""
        job = _Job(crops)
        self._q.put(job)
        return job.future

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, n = [first], len(first.crops)
        deadline = time.monotonic() + self.max_delay_s
        while n < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                job = self._q.get(timeout=remaining)
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            n += len(job.crops)
        return jobs, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._q.get()
            if first is None:
                return
            jobs, stop = self._collect(first)
            crops = jobs[0].crops if len(jobs) == 1 else np.concatenate([j.crops for j in jobs])
            t0 = time.perf_counter()
            try:
                mask, score = self.backend.infer(crops)
            except BaseException as exc:  # noqa: BLE001 - every waiting request gets the error
                for j in jobs:
                    j.future.set_exception(exc)
                continue
            took = time.perf_counter() - t0
            self.calls += 1
            self.crops += len(crops)
            start = 0
            for j in jobs:
                stop_at = start + len(j.crops)
                j.future.set_result((mask[start:stop_at], score[start:stop_at], took, len(crops)))
                start = stop_at
