"""Measuring responsiveness: how long the GUI thread was kept from running its event loop.

Used by the tests and ``bench/bench_gui.py`` (and handy in a debugging session): a fast QTimer ticks
on the GUI thread; any gap between ticks longer than its interval is time the thread was busy.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class StallProbe(QObject):
    """Longest GUI-thread stall (seconds) while running, from the gaps between timer ticks."""

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_s = interval_ms / 1000.0
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.longest_s = 0.0
        self.gaps: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            gap = max(0.0, now - self._last - self.interval_s)
            self.gaps.append(gap)
            self.longest_s = max(self.longest_s, gap)
        self._last = now

    def start(self) -> None:
        self._last = None
        self.longest_s = 0.0
        self.gaps = []
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def percentile(self, q: float) -> float:
        if not self.gaps:
            return 0.0
        s = sorted(self.gaps)
        return s[min(len(s) - 1, round(q / 100.0 * (len(s) - 1)))]
