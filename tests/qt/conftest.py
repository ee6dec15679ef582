"""Fixtures for the GUI tests: offscreen Qt, private settings, and small clips made on the spot.

``QT_QPA_PLATFORM`` must be set before the QApplication exists, so it is set here at import time
(pytest-qt creates the application lazily in its ``qapp`` fixture).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for media.py)

from media import astronaut_clip_frames, moving_pattern_frames, write_clip

PATTERN_FRAMES = 60
PATTERN_FPS = 25.0


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qt_clips")


@pytest.fixture(scope="session")
def pattern_clip(clip_dir: Path) -> Path:
    """60 frames of H.264 with B-frames (64x48, 25 fps); each frame's index is stamped in its pixels."""
    return write_clip(clip_dir / "pattern.mp4", moving_pattern_frames(PATTERN_FRAMES, w=64, h=48),
                      fps=PATTERN_FPS, bframes=2, gop=12)


@pytest.fixture(scope="session")
def face_clip(clip_dir: Path) -> Path:
    """12 frames of a real face (the public-domain astronaut portrait) large enough to be judged."""
    return write_clip(clip_dir / "face.mp4", astronaut_clip_frames(12, w=320, h=240, face_px=50), fps=25)


@pytest.fixture(scope="session")
def long_face_clip(clip_dir: Path) -> Path:
    """150 frames with a face: long enough to cancel or close mid-run."""
    return write_clip(clip_dir / "face_long.mp4", astronaut_clip_frames(150, w=320, h=240, face_px=50), fps=25)


@pytest.fixture(scope="session")
def bad_clip(clip_dir: Path) -> Path:
    """Bytes that are not a video, under a video name."""
    p = clip_dir / "corrupt.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    return p


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every GUI test gets its own app data dir: the session cache and evidence index never touch the user's."""
    data = tmp_path / "deepyn-data"
    monkeypatch.setenv("DEEPYN_DATA_DIR", str(data))
    return data


@pytest.fixture
def prefs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Preferences in a private INI file: the suite never touches the user's settings."""
    from PySide6.QtCore import QSettings

    from deepyn_gui.qt.settings import Preferences

    return Preferences(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, prefs) -> Iterator:  # type: ignore[no-untyped-def]
    """The real main window, shown offscreen; closed (joining its workers) after the test."""
    from deepyn_gui.qt.main_window import MainWindow

    win = MainWindow(prefs=prefs)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture
def open_clip(qtbot) -> Callable:  # type: ignore[no-untyped-def]
    def _open(win, path: Path, timeout: int = 10000):  # type: ignore[no-untyped-def]
        with qtbot.waitSignal(win.session.clipOpened, timeout=timeout):
            win.open_file(path)
        qtbot.waitUntil(lambda: win.session.shown is not None and win.session.shown.index == 0, timeout=timeout)
        return win

    return _open


@pytest.fixture
def stall_probe() -> Iterator:  # type: ignore[type-arg]
    from deepyn_gui.qt.diagnostics import StallProbe

    probe = StallProbe()
    yield probe
    probe.stop()
