"""The comparison's worker: both backends set up and run on the same crops, off the GUI thread.

:class:`CompareWorker` is a thin adapter over the viewer's one job class (:mod:`.jobs`): it drives
core's :class:`~deepyn_gui.core.compare.Comparison` (the same stages as ``deepyn compare``) and turns
what it yields into the signals :class:`~.compare_view.CompareWindow` draws from.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..backends import BackendRequest, BackendSetup, set_up_backends
from ..core.compare import Comparison, ComparisonResult
from ..core.errors import Cancelled, DeepYNError
from ..core.pipeline import AnalysisSettings
from .jobs import JobAdapter

log = logging.getLogger(__name__)

#: One side of the comparison: the backends' own request type (name, model file, threads, label).
BackendChoice = BackendRequest


BackendFactory = Callable[..., Any]


def _default_factory(name: str, model_path: str | None = None, **options: Any) -> Any:
    from ..backends import create_backend

    if name == "remote" and model_path:  # the model field holds the endpoints: url=...,url=...,model=NAME
        return create_backend(f"remote:{model_path}", **options)
    return create_backend(name, model_path=model_path, **options)


def backend_catalogue() -> list[tuple[str, str, bool, str]]:
    """(name, description, selectable, reason) for every registered backend, never raising.

    A backend is selectable when it is available, or when only its *default* model is missing but
    its runtime is there (the user can name a model file). Otherwise it is greyed out with the reason.
    """
    from ..backends import REGISTRY, list_backends

    out = []
    for spec, avail in list_backends():
        selectable = avail.available
        if not selectable and spec.runtime_availability is not None:
            try:
                selectable = spec.runtime_availability().available
            except Exception:  # noqa: BLE001 - a broken runtime is simply not selectable
                selectable = False
        out.append((spec.name, spec.description, selectable, "" if avail.available else avail.reason))
    assert all(n in REGISTRY for n, *_ in out)
    return out


# --------------------------------------------------------------------------------------------------
# Worker
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ready:
    """Both backends are set up: per side its label (None: unavailable), reason and model note."""

    labels: list[str | None]
    reasons: list[str]
    notes: list[str]


@dataclass(frozen=True)
class _Problem:
    """The comparison stopped early with this message; the frames so far still make a result."""

    message: str


class CompareWorker(JobAdapter):
    """One comparison: an adapter over :class:`~.jobs.Worker`; signals arrive on the GUI thread."""

    ready = Signal(object, object, object)  # per side: label (None: unavailable), reason, model note
    batchReady = Signal(object)  # CompareBatch
    failed = Signal(str)
    finished = Signal(object)  # ComparisonResult | None

    def __init__(
        self,
        path: str,
        choices: list[BackendChoice],
        settings: AnalysisSettings,
        factory: BackendFactory | None = None,
        parent: QObject | None = None,
    ) -> None:
        self.path = path
        self.choices = list(choices)
        self.settings = settings
        self._factory = factory or _default_factory
        # Comparison sees the cancel itself and its result keeps the frames so far: drain, do not close
        super().__init__(self._items, "compare", drain_on_cancel=True, failure_prefix="Comparison failed: ",
                         parent=parent)

    def _items(self, cancel: threading.Event, _emit: Callable[[Any], None]) -> Generator[Any, None, ComparisonResult | None]:
        """Set up both backends, then yield each compared batch; returns the ComparisonResult."""
        setups: list[BackendSetup] = []
        try:
            setups = set_up_backends(self.choices, self._factory, self.settings.batch_size, cancel.is_set)
            backends = [st.backend for st in setups if st.backend is not None]
            side_labels = [st.label if st.backend is not None else None for st in setups]
            reasons = [st.reason for st in setups]
            notes = [
                "" if st.backend is None else st.backend.model_info.name
                + ("" if st.backend.model_info.trained else " — UNTRAINED model: its scores mean nothing")
                for st in setups
            ]
            yield _Ready(side_labels, reasons, notes)
            if not backends:
                raise DeepYNError("No backend of the comparison can run here: " + "; ".join(r for r in reasons if r))
            unavailable = [(st.label, st.reason) for st in setups if st.backend is None]
            with ThreadPoolExecutor(1, thread_name_prefix="deepyn-gui-compare-sha256") as pool:
                digest = pool.submit(self._hash, cancel)
                run = Comparison(self.path, backends, [lab for lab in side_labels if lab], self.settings, cancel,
                                 unavailable)
                try:
                    yield from run
                except Cancelled:
                    run.complete, run.stop_reason = False, "cancelled by the user"
                except DeepYNError as exc:
                    run.complete, run.stop_reason = False, str(exc)
                    yield _Problem(str(exc))
                sha = digest.result()
            try:
                return run.result(sha)
            except DeepYNError:
                return None  # nothing was decoded
        finally:
            for b in (st.backend for st in setups if st.backend is not None):
                try:
                    b.close()
                except Exception:
                    log.exception("closing a backend failed")

    def _hash(self, cancel: threading.Event) -> str:
        try:
            from ..core.evidence import sha256_file

            return sha256_file(self.path, cancel=cancel)
        except Exception as exc:  # noqa: BLE001 - the result then carries no hash
            log.info("hashing %s for the comparison stopped: %s", self.path, exc)
            return ""

    # -- GUI thread -----------------------------------------------------------------------------------
    def _on_item(self, item: Any) -> None:
        if isinstance(item, _Ready):
            self.ready.emit(item.labels, item.reasons, item.notes)
        elif isinstance(item, _Problem):
            self.failed.emit(item.message)
        else:
            self.batchReady.emit(item)

    def _on_result(self, result: ComparisonResult | None) -> None:
        self.finished.emit(result)

    def _on_cancelled(self, partial: ComparisonResult | None) -> None:
        self._on_result(partial)  # a stopped comparison still reports the frames compared so far

    def _on_failed(self, message: str) -> None:
        self.failed.emit(message)
        self.finished.emit(None)


__all__ = ["BackendChoice", "BackendFactory", "CompareWorker", "backend_catalogue"]
