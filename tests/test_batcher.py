"""The server's dynamic batcher: concurrent requests share one backend call; results and errors go back
to the request they belong to."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from deepyn_gui.core.errors import BackendError
from deepyn_gui.serving.batcher import DynamicBatcher


class CountingBackend:
    name = "counting"
    batch_size = 8

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail
        self.gate = threading.Event()

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.gate.wait(10)
        self.calls.append(len(crops))
        if self.fail:
            raise BackendError("card fell over")
        # each crop's score is its first pixel / 255: the caller can tell whose result it got
        score = crops[:, 0, 0, 0].astype(np.float32) / 255.0
        return np.repeat(score[:, None, None], 224, 1).repeat(224, 2), score

    @property
    def model_info(self) -> Any:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def crops(values: list[int]) -> np.ndarray:
    out = np.zeros((len(values), 224, 224, 3), np.uint8)
    out[:, 0, 0, 0] = values
    return out


def test_requests_waiting_together_share_one_call_and_get_their_own_results() -> None:
    backend = CountingBackend()
    batcher = DynamicBatcher(backend, max_batch=8, max_delay_s=1.0)
    try:
        first = batcher.submit(crops([10]))  # the batcher waits up to 1 s for company...
        futures = [batcher.submit(crops([20 + i, 30 + i])) for i in range(3)]  # ...and these arrive
        backend.gate.set()
        assert first.result(10)[1].tolist() == pytest.approx([10 / 255])
        for i, f in enumerate(futures):
            mask, score, _took, merged = f.result(10)
            assert score.tolist() == pytest.approx([(20 + i) / 255, (30 + i) / 255])
            assert mask.shape == (2, 224, 224) and merged == 7
        assert backend.calls == [7]  # four requests, one backend call
    finally:
        batcher.close()


def test_a_backend_error_reaches_every_request_of_the_batch() -> None:
    backend = CountingBackend(fail=True)
    backend.gate.set()
    batcher = DynamicBatcher(backend, max_batch=8, max_delay_s=0.05)
    try:
        futures = [batcher.submit(crops([1])) for _ in range(3)]
        for f in futures:
            with pytest.raises(BackendError, match="fell over"):
                f.result(10)
    finally:
        batcher.close()


def test_batch_size_caps_a_merge() -> None:
    backend = CountingBackend()
    batcher = DynamicBatcher(backend, max_batch=4, max_delay_s=0.2)
    try:
        first = batcher.submit(crops([0]))
        rest = [batcher.submit(crops([1, 2])) for _ in range(4)]
        backend.gate.set()
        first.result(10)
        for f in rest:
            f.result(10)
        assert max(backend.calls) <= 5 and sum(backend.calls) == 9  # merges stop once 4 crops are in
    finally:
        batcher.close()
