"""The contract of the viewer's one background-job class (:class:`deepyn_gui.qt.jobs.Worker`).

Every background job (hash, cache, export, analysis, compare, folder queue, display decode) runs on
it, so these are the rules they all share: items and outcomes arrive on the GUI thread in order, a
cancel stops the generator and gives exactly one ``cancelled``, an error arrives as a one-line
message, and ``ended`` comes last, once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QThread

from deepyn_gui.core.errors import Cancelled, DeepYNError
from deepyn_gui.qt.jobs import CANCELLED, FAILED, SUCCEEDED, Worker


class Recorder:
    """Every signal of one worker, with the thread it arrived on."""

    def __init__(self, worker: Worker) -> None:
        self.events: list[tuple[str, Any]] = []
        self.threads: set[QThread | None] = set()
        for name in ("yielded", "succeeded", "failed", "cancelled", "ended"):
            getattr(worker, name).connect(lambda value, n=name: self._got(n, value))

    def _got(self, name: str, value: Any) -> None:
        self.events.append((name, value))
        self.threads.add(QThread.currentThread())

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def count(self, name: str) -> int:
        return self.names().count(name)


def _run(qtbot: Any, worker: Worker, rec: Recorder, timeout: int = 10_000) -> None:
    worker.start()
    qtbot.waitUntil(lambda: rec.count("ended") == 1, timeout=timeout)
    assert worker.join(5.0)
    qtbot.wait(50)  # nothing may follow ``ended``


def test_generator_items_and_outcome_arrive_on_the_gui_thread_in_order(qtbot: Any) -> None:
    seen_on: list[threading.Thread] = []

    def job(cancel: threading.Event, emit: Callable[[Any], None]) -> Iterator[int]:
        seen_on.append(threading.current_thread())
        yield from range(5)
        return 42

    w = Worker(job, "contract-gen")
    rec = Recorder(w)
    _run(qtbot, w, rec)
    assert rec.events == [("yielded", i) for i in range(5)] + [("succeeded", 42), ("ended", SUCCEEDED)]
    assert rec.threads == {QCoreApplication.instance().thread()}  # type: ignore[union-attr]
    assert seen_on and seen_on[0] is not threading.main_thread()  # the work itself ran off the GUI thread
    assert w.outcome == SUCCEEDED


def test_plain_callable_emits_and_returns(qtbot: Any) -> None:
    def job(cancel: threading.Event, emit: Callable[[Any], None]) -> str:
        emit(("progress", 1, 2))
        emit(("progress", 2, 2))
        return "done"

    w = Worker(job, "contract-callable")
    rec = Recorder(w)
    _run(qtbot, w, rec)
    assert rec.names() == ["yielded", "yielded", "succeeded", "ended"]
    assert rec.events[2] == ("succeeded", "done")


def test_cancel_mid_run_closes_the_generator_and_reports_cancelled_once(qtbot: Any) -> None:
    started, closed = threading.Event(), threading.Event()
    produced: list[int] = []

    def job(cancel: threading.Event, emit: Callable[[Any], None]) -> Iterator[int]:
        started.set()
        try:
            i = 0
            while True:  # would never end by itself
                produced.append(i)
                yield i
                i += 1
                time.sleep(0.005)
        finally:
            closed.set()

    w = Worker(job, "contract-cancel")
    rec = Recorder(w)
    w.start()
    assert started.wait(5.0)
    qtbot.waitUntil(lambda: rec.count("yielded") >= 3, timeout=5_000)
    w.cancel()
    w.cancel()  # a second cancel changes nothing
    qtbot.waitUntil(lambda: rec.count("ended") == 1, timeout=5_000)
    assert w.join(5.0) and closed.is_set()  # the generator's finally ran
    qtbot.wait(50)
    assert rec.count("cancelled") == 1 and rec.count("succeeded") == 0 and rec.count("failed") == 0
    assert rec.events[-2:] == [("cancelled", None), ("ended", CANCELLED)]
    assert len(produced) - rec.count("yielded") <= 1  # it stopped at the next yield, not at the end
    assert w.cancelled_at is not None and w.ended_at is not None and w.ended_at >= w.cancelled_at


def test_drain_on_cancel_lets_the_generator_wind_down_and_keeps_its_partial_outcome(qtbot: Any) -> None:
    def job(cancel: threading.Event, emit: Callable[[Any], None]) -> Iterator[int]:
        done = []
        for i in range(10_000):
            if cancel.wait(0.002):  # a core stage watching the token
                break
            done.append(i)
            yield i
        return f"partial: {len(done)} items"

    w = Worker(job, "contract-drain", drain_on_cancel=True)
    rec = Recorder(w)
    w.start()
    qtbot.waitUntil(lambda: rec.count("yielded") >= 3, timeout=5_000)
    w.cancel()
    qtbot.waitUntil(lambda: rec.count("ended") == 1, timeout=5_000)
    assert w.join(5.0)
    qtbot.wait(50)
    assert rec.count("cancelled") == 1 and rec.count("succeeded") == 0
    partial = rec.events[-2][1]
    assert partial == f"partial: {rec.count('yielded')} items"


def _error_after_cancel(error: Exception) -> Callable[[threading.Event, Callable[[Any], None]], None]:
    def job(cancel: threading.Event, emit: Callable[[Any], None]) -> None:
        cancel.wait(5.0)
        raise error

    return job


@pytest.mark.parametrize(("error", "drain"), [
    (Cancelled("stopped between chunks"), False),
    (Cancelled("stopped between chunks"), True),
    (DeepYNError("decoder closed"), False),  # what a stage says when its input is pulled away
])
def test_an_error_raised_because_of_the_cancel_is_the_cancel_not_a_failure(
        qtbot: Any, error: Exception, drain: bool) -> None:
    w = Worker(_error_after_cancel(error), "contract-error-after-cancel", drain_on_cancel=drain)
    rec = Recorder(w)
    w.start()
    w.cancel()
    qtbot.waitUntil(lambda: rec.count("ended") == 1, timeout=5_000)
    qtbot.wait(50)
    assert rec.names() == ["cancelled", "ended"]


def test_errors_reach_the_gui_thread_as_one_line_not_a_traceback(qtbot: Any) -> None:
    def bug(cancel: threading.Event, emit: Callable[[Any], None]) -> Iterator[int]:
        yield 1
        raise ZeroDivisionError("division by zero")

    w = Worker(bug, "contract-bug", failure_prefix="Analysis failed: ")
    rec = Recorder(w)
    _run(qtbot, w, rec)
    assert rec.names() == ["yielded", "failed", "ended"]
    message = rec.events[1][1]
    assert message == "Analysis failed: ZeroDivisionError: division by zero"
    assert "Traceback" not in message and "\n" not in message
    assert rec.threads == {QCoreApplication.instance().thread()}  # type: ignore[union-attr]

    def refused(cancel: threading.Event, emit: Callable[[Any], None]) -> None:
        raise DeepYNError("The file is not a video.")

    w2 = Worker(refused, "contract-refused", failure_prefix="Analysis failed: ")
    rec2 = Recorder(w2)
    _run(qtbot, w2, rec2)
    assert rec2.events == [("failed", "The file is not a video."), ("ended", FAILED)]  # a user's error: as written


def test_the_gui_thread_stays_responsive_while_a_job_runs(qtbot: Any) -> None:
    """A busy job must not hold the GUI thread: its timers keep firing while the job is still working."""
    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)

    def busy(cancel: threading.Event, emit: Callable[[Any], None]) -> Iterator[int]:
        # pure-Python work (it holds the GIL) until cancelled, reporting progress every 20 ms like a real
        # job (per frame or per batch). Yielding every millisecond flooded the GUI thread's queue faster
        # than it could drain it while it waits for the GIL, so the timers starved on a loaded machine.
        n = 0
        last = time.perf_counter()
        while not cancel.is_set():
            n += 1
            if n % 1000 == 0 and time.perf_counter() - last >= 0.02:
                last = time.perf_counter()
                yield n
        return n

    w = Worker(busy, "contract-busy")
    rec = Recorder(w)
    w.start()
    try:
        qtbot.waitUntil(lambda: len(ticks) >= 10, timeout=20_000)  # a GUI thread waiting on the job gets none
        assert w.is_alive()  # ... and they came while the job was still running
    finally:
        w.cancel()
        timer.stop()
    qtbot.waitUntil(lambda: rec.count("ended") == 1, timeout=5_000)
    assert rec.events[-1] == ("ended", CANCELLED)


def test_an_export_cancelled_from_its_progress_dialog_ends_quietly_and_a_failed_one_says_why(
        qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Export menu's adapter: Cancel in the dialog stops the job (no error box, no 'done'); a
    failure is shown once, as its one-line message."""
    import deepyn_gui.qt.export_actions as ea

    shown: list[str] = []
    monkeypatch.setattr(ea.QMessageBox, "critical", staticmethod(lambda _parent, _title, text: shown.append(text)))
    done: list[Any] = []
    steps: list[int] = []

    def endless(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> str:
        while not cancel.wait(0.01):  # an export checks its token between frames
            steps.append(1)
            progress("frames", len(steps), 10_000)
        raise Cancelled("export cancelled")

    job = ea.run_with_progress(None, "Export video", endless, done.append)
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=5_000)
    from PySide6.QtWidgets import QApplication, QPushButton

    dialog = next(w for w in QApplication.topLevelWidgets()
                  if isinstance(w, ea.QProgressDialog) and w.windowTitle() == "Export video")
    dialog.findChild(QPushButton).click()  # the user presses Cancel
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=5_000)
    assert job.join(5.0)
    qtbot.wait(50)
    assert job.outcome == CANCELLED and not shown and not done

    def broken(cancel: threading.Event, progress: Callable[[str, int, int], None]) -> str:
        raise DeepYNError("The evidence changed since it was analysed; export refused.")

    job2 = ea.run_with_progress(None, "Export data", broken, done.append)
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    qtbot.wait(50)
    assert job2.outcome == FAILED and shown == ["The evidence changed since it was analysed; export refused."]
    assert not done
