"""Small helpers shared by the GUI tests."""

from __future__ import annotations

import threading


def wait_shown(qtbot, win, index: int, timeout: int = 5000) -> None:  # type: ignore[no-untyped-def]
    """Wait until frame ``index`` is on screen."""
    qtbot.waitUntil(lambda: win.session.shown is not None and win.session.shown.index == index, timeout=timeout)


def worker_threads() -> set[threading.Thread]:
    """Live threads this project starts (display decode, analysis, pipeline stages, hashing)."""
    return {t for t in threading.enumerate() if t.name.startswith("deepyn") and t.is_alive()}
