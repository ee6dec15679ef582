"""The viewer's one background-job class: a core generator (or a plain callable) on a thread, its
items and its outcome delivered as signals on the GUI thread, and one way to cancel it.

Every background job of the viewer -- hashing the evidence, the session cache, exports, analysis,
comparison, the folder queue and the display decoder -- is a :class:`Worker`; the classes in
:mod:`.workers`, :mod:`.compare_view`, :mod:`.export_actions` and :mod:`.folder_queue` are thin
adapters that translate its generic signals into their own.

The contract (the napari/superqt ``thread_worker`` pattern, tested in ``tests/qt/test_jobs.py``):

* ``fn(cancel, emit)`` runs on a daemon thread. ``cancel`` is the :class:`threading.Event` core
  functions already take as their cancel token; ``emit(item)`` sends an item to the GUI thread.
  If ``fn`` returns a generator, every item it yields is sent the same way and its ``return`` value
  is the outcome.
* :meth:`Worker.cancel` sets that event (once; later calls do nothing). A generator is then closed
  at its next yield (its ``finally`` runs on the worker thread), unless ``drain_on_cancel``: then the
  generator, which sees the same event, winds down itself and what it returns is the partial outcome
  (an analysis returns the frames analysed so far).
* Exactly one terminal signal, then ``ended``: ``succeeded(outcome)``; ``failed(message)`` -- a
  user-facing line, never a traceback (that goes to the log); or ``cancelled(partial or None)``, when
  :meth:`cancel` was called or the job raised :class:`~deepyn_gui.core.errors.Cancelled`. A
  :class:`~deepyn_gui.core.errors.DeepYNError` raised after :meth:`cancel` counts as the cancel; any
  other exception is a bug and always ``failed``.
* Signals are emitted from the worker thread to a QObject that lives on the GUI thread, so Qt queues
  them: receivers run on the GUI thread, in the order emitted, and the GUI thread never waits.

superqt's ``thread_worker`` is not used: its abort is seen only between yields, while core's stages
block in queues and decoders that watch a :class:`threading.Event`; that event is the token here.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..core.errors import Cancelled, DeepYNError

log = logging.getLogger(__name__)

#: ``fn(cancel, emit)``: the job; returns its outcome, or a generator whose items are emitted.
JobFn = Callable[[threading.Event, Callable[[Any], None]], Any]

SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"

_ids = itertools.count(1)


class Worker(QObject):
    """One background job on its own daemon thread (see the module docstring for the contract)."""

    yielded = Signal(object)  # each item the job emits or its generator yields
    succeeded = Signal(object)  # the outcome
    failed = Signal(str)  # a user-facing message
    cancelled = Signal(object)  # the partial outcome (drain_on_cancel) or None
    ended = Signal(str)  # always last, once: SUCCEEDED, FAILED or CANCELLED

    def __init__(self, fn: JobFn, name: str, *, drain_on_cancel: bool = False, failure_prefix: str = "",
                 numbered: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job_id = next(_ids)
        thread_name = f"deepyn-gui-{name}-{self.job_id}" if numbered else f"deepyn-gui-{name}"
        self.name = name
        self._fn = fn
        self._drain = drain_on_cancel
        self._prefix = failure_prefix
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._main, name=thread_name, daemon=True)
        self.outcome: str | None = None  # SUCCEEDED / FAILED / CANCELLED once the job has ended
        self.cancelled_at: float | None = None  # perf_counter() of the first cancel()
        self.ended_at: float | None = None  # perf_counter() when the job ended (before the signals)

    # -- GUI-thread API -------------------------------------------------------------------------------
    @property
    def cancel_event(self) -> threading.Event:
        """The token the job sees (core functions take it as ``cancel``)."""
        return self._cancel

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop; returns at once (the outcome arrives as ``cancelled``)."""
        if not self._cancel.is_set():
            self.cancelled_at = time.perf_counter()
            self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` s; True when the thread has ended (or never started)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- worker thread --------------------------------------------------------------------------------
    def emit_item(self, item: Any) -> None:
        """Send ``item`` to the GUI thread as ``yielded`` (callable jobs get this as ``emit``)."""
        try:
            self.yielded.emit(item)
        except RuntimeError:  # the receiving window is gone; the job winds down on its cancel
            pass

    def _main(self) -> None:
        kind, value = self._execute()
        self.ended_at = time.perf_counter()
        self.outcome = kind
        try:
            if kind == SUCCEEDED:
                self.succeeded.emit(value)
            elif kind == FAILED:
                self.failed.emit(value)
            else:
                self.cancelled.emit(value)
            self.ended.emit(kind)
        except RuntimeError:  # the Qt object was deleted with its window while the job wound down
            pass

    def _execute(self) -> tuple[str, Any]:
        try:
            out = self._fn(self._cancel, self.emit_item)
            if inspect.isgenerator(out):
                out = self._drive(out)
        except Cancelled:
            return CANCELLED, None
        except DeepYNError as exc:
            if self._cancel.is_set():
                log.info("%s stopped after cancel: %s", self.name, exc)
                return CANCELLED, None
            return FAILED, str(exc)
        except Exception as exc:  # a bug reaches the user as one line; the traceback goes to the log
            log.exception("background job %s failed", self.name)
            return FAILED, f"{self._prefix}{type(exc).__name__}: {exc}"
        return (CANCELLED if self._cancel.is_set() else SUCCEEDED), out

    def _drive(self, gen: Any) -> Any:
        """Forward what ``gen`` yields; on cancel close it (or let it drain); return its return value."""
        try:
            while True:
                if self._cancel.is_set() and not self._drain:
                    gen.close()  # GeneratorExit at its yield: its finally blocks run here
                    raise Cancelled(f"{self.name} cancelled")
                try:
                    item = next(gen)
                except StopIteration as stop:
                    return stop.value
                self.emit_item(item)
        finally:
            gen.close()


class JobAdapter(QObject):
    """Base of the specialised jobs (analysis, compare, short tasks): one :class:`Worker` inside, its
    signals relayed on the GUI thread to ``_on_item`` / ``_on_result`` / ``_on_cancelled`` /
    ``_on_failed``, which a subclass turns into its own typed signals. Cancel, join and the timings
    are the worker's: one contract for all of them."""

    def __init__(self, fn: JobFn, name: str, *, drain_on_cancel: bool = False, failure_prefix: str = "",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = Worker(fn, name, drain_on_cancel=drain_on_cancel, failure_prefix=failure_prefix, parent=self)
        self.worker.yielded.connect(self._on_item)
        self.worker.succeeded.connect(self._on_result)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.failed.connect(self._on_failed)

    def start(self) -> None:
        self.worker.start()

    def cancel(self) -> None:
        self.worker.cancel()

    def is_alive(self) -> bool:
        return self.worker.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        return self.worker.join(timeout)

    @property
    def cancel_requested(self) -> bool:
        return self.worker.cancel_requested

    @property
    def cancelled_at(self) -> float | None:
        return self.worker.cancelled_at

    @property
    def ended_at(self) -> float | None:
        return self.worker.ended_at

    # -- GUI thread: what the subclass makes of the worker's signals ----------------------------------
    def _on_item(self, item: Any) -> None:
        """An item the job emitted or yielded."""

    def _on_result(self, outcome: Any) -> None:
        """The job's outcome."""

    def _on_cancelled(self, partial: Any) -> None:
        """The job ended after a cancel (``partial``: what a draining generator returned, or None)."""

    def _on_failed(self, message: str) -> None:
        """The job failed; ``message`` is one user-facing line."""


__all__ = ["CANCELLED", "FAILED", "SUCCEEDED", "JobAdapter", "JobFn", "Worker"]
