"""Fixtures shared by every test module (core, CLI, GUI).

Threads are capped before torch or onnxruntime can be imported: this suite runs on 2 shared cores,
where oversubscribed threads are 5-10x slower. torch itself is imported only by the tests (and the
fixtures) that need it, so Qt and CLI tests do not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TINY_WIDTH = 4


def _torch_single_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own app data dir: `deepyn analyze`/`report` and the viewer save analyses
    there (issue 15), and the suite must never read or fill the user's."""
    data = tmp_path / "deepyn-data"
    monkeypatch.setenv("DEEPYN_DATA_DIR", str(data))
    return data


@pytest.fixture(scope="session")
def torch_threads() -> Iterator[None]:
    """Import torch with one intra-op thread; request it before building models in a test."""
    pytest.importorskip("torch")
    _torch_single_thread()
    yield


@pytest.fixture(scope="session")
def tiny_onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A width-4 U-YNet (seed 0, ``deepyn.trained=false``) as ONNX: real inference, fast."""
    pytest.importorskip("torch")
    _torch_single_thread()
    from deepyn_gui.core.model.export import export_untrained

    out = tmp_path_factory.mktemp("models") / "uynet_tiny.onnx"
    return export_untrained(TINY_WIDTH, out, seed=0, name="uynet-w4-test", threads=1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared test media (``../shared/data`` or $DEEPYN_SHARED_DATA); skips if absent."""
    env = os.environ.get("DEEPYN_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (set DEEPYN_SHARED_DATA)")
    return path
