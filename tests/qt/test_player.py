"""The real window driven offscreen: open, show exact frames, step, play, seek from the timeline, errors."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
import pytest
from media import decode_pattern_index
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from qt_helpers import wait_shown

from deepyn_gui.core.video import VideoSource


@pytest.fixture(scope="module")
def pattern_frames(pattern_clip) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Reference pixels: every frame decoded sequentially from the start."""
    with VideoSource(pattern_clip) as src:
        return [f.rgb for f in src.frames()]


def _mss(t: float) -> str:
    return f"{int(t // 60)}:{t % 60:04.1f}"


def rendered_pixels(win) -> np.ndarray:  # type: ignore[no-untyped-def]
    """What the image item hands to Qt for painting, read back through Qt as RGB."""
    from PySide6.QtGui import QImage

    item = win.player.frame_view.image
    item.render()
    assert item.qimage.format() == QImage.Format.Format_RGB32  # the fast path, not a LUT/levels path
    rgb = item.qimage.convertToFormat(QImage.Format.Format_RGB888)
    return np.asarray(pg.functions.ndarray_from_qimage(rgb))[..., :3].copy()


def assert_shows(win, frames: list[np.ndarray], index: int) -> None:  # type: ignore[no-untyped-def]
    shown = win.session.shown
    assert shown is not None and shown.index == index
    np.testing.assert_array_equal(win.player.frame_view.displayed_rgb(), frames[index])
    np.testing.assert_array_equal(rendered_pixels(win), frames[index])
    assert decode_pattern_index(frames[index]) == index


def test_open_shows_first_frame_title_and_counter(window, open_clip, pattern_clip, pattern_frames):  # type: ignore[no-untyped-def]
    assert window.windowTitle() == "DeepYN Viewer"
    open_clip(window, pattern_clip)
    assert pattern_clip.name in window.windowTitle()
    assert_shows(window, pattern_frames, 0)
    assert "Frame 0 / 59" in " ".join(window.player.counter.text().split())  # padded to a fixed width
    assert "00:00:00.000" in window.player.counter.text()
    assert window.timeline.n_frames == len(pattern_frames) == 60
    # the timeline's axis labels ticks with the frame's own time, from the packet timestamps
    with VideoSource(pattern_clip) as src:
        times = src.timestamps()
    np.testing.assert_array_equal(window.timeline.time_axis.times, times)
    fps = window.session.info.fps
    assert window.timeline.time_axis.tickStrings([0, 20, 20.5], 1.0, 10) == ["0\n0:00.0", f"20\n{_mss(20 / fps)}", ""]
    assert window.prefs.recent_files()[0] == str(pattern_clip.resolve())
    # zoomed-in evidence pixels are not smoothed
    from PySide6.QtGui import QPainter

    assert not window.player.frame_view.renderHints() & QPainter.RenderHint.SmoothPixmapTransform


def test_keyboard_stepping_is_exact(window, open_clip, qtbot, pattern_clip, pattern_frames):  # type: ignore[no-untyped-def]
    open_clip(window, pattern_clip)
    steps = [
        (Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier, 1),
        (Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier, 11),
        (Qt.Key.Key_Left, Qt.KeyboardModifier.NoModifier, 10),
        (Qt.Key.Key_End, Qt.KeyboardModifier.NoModifier, 59),
        (Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier, 49),
        (Qt.Key.Key_Home, Qt.KeyboardModifier.NoModifier, 0),
    ]
    for key, mod, expected in steps:
        qtbot.keyClick(window, key, mod)
        wait_shown(qtbot, window, expected)
        assert_shows(window, pattern_frames, expected)
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)  # clamps at 0
    wait_shown(qtbot, window, 0)
    window.session.seek(49)
    wait_shown(qtbot, window, 49)
    assert "00:00:01.960" in window.player.counter.text()  # 49 / 25 fps, from the frame's PTS


def test_random_seeks_match_sequential_decode(window, open_clip, qtbot, pattern_clip, pattern_frames):  # type: ignore[no-untyped-def]
    open_clip(window, pattern_clip)
    for index in (37, 5, 59, 23, 24, 12, 0, 48):
        window.session.seek(index)
        wait_shown(qtbot, window, index)
        assert_shows(window, pattern_frames, index)
    assert len(window.session.seek_latencies_s) >= 8


def test_scrub_burst_newest_request_wins(window, open_clip, qtbot, pattern_clip, pattern_frames):  # type: ignore[no-untyped-def]
    open_clip(window, pattern_clip)
    for index in range(1, 50):  # a fast drag: 49 requests without giving the decoder time
        window.session.seek(index)
    wait_shown(qtbot, window, 49)
    assert_shows(window, pattern_frames, 49)
    assert window.session.decoder.dropped_requests > 0  # stale requests were replaced, not decoded


def test_play_keeps_clock_and_stops_at_end(window, open_clip, qtbot, pattern_clip, pattern_frames):  # type: ignore[no-untyped-def]
    open_clip(window, pattern_clip)
    window.session.seek(35)
    wait_shown(qtbot, window, 35)
    shown: list[int] = []
    window.session.frameShown.connect(lambda sf: shown.append(sf.index))
    t0 = time.perf_counter()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.session.playing
    qtbot.waitUntil(lambda: not window.session.playing, timeout=8000)
    elapsed = time.perf_counter() - t0
    wait_shown(qtbot, window, 59)
    expected = 24 / 25.0  # frames 35 -> 59 at 25 fps
    print(f"\nplayback of 24 frames took {elapsed:.3f} s (expected {expected:.3f} s); "
          f"{len(set(shown))} frames shown, {window.session.frames_dropped} dropped")
    assert elapsed >= expected * 0.9, "playback ran ahead of the clip's frame rate"
    assert elapsed < expected + 2.0, "playback drifted far behind the clock"
    assert shown == sorted(shown), "frames were shown out of order"
    assert shown[-1] == 59
    assert_shows(window, pattern_frames, 59)
    # Space again at the end starts over from the first frame
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.session.playing


def test_clicking_the_timeline_seeks(window, open_clip, qtbot, pattern_clip, pattern_frames):  # type: ignore[no-untyped-def]
    open_clip(window, pattern_clip)
    tl = window.timeline
    x, y = tl.x_to_pixel(30, 0.3)
    qtbot.mouseClick(tl.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    qtbot.waitUntil(lambda: window.session.shown is not None and window.session.shown.index != 0, timeout=5000)
    index = window.session.shown.index
    assert abs(index - 30) <= 1
    assert round(tl.cursor.value()) == index
    assert_shows(window, pattern_frames, index)
    # dragging the current-frame line seeks too
    tl.cursor.setValue(44)
    tl.cursor.sigDragged.emit(tl.cursor)
    wait_shown(qtbot, window, 44)
    assert_shows(window, pattern_frames, 44)


def test_corrupt_file_shows_message_and_window_stays_usable(window, open_clip, qtbot, bad_clip, pattern_clip,
                                                             pattern_frames):  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.session.openFailed, timeout=10000) as blocker:
        window.open_file(bad_clip)
    assert bad_clip.name in blocker.args[1]
    box = window.last_message_box
    assert box is not None and box.isVisible() and not box.isModal()
    assert bad_clip.name in box.text()
    assert window.windowTitle() == "DeepYN Viewer"
    open_clip(window, pattern_clip)  # still usable, without dismissing the message
    assert_shows(window, pattern_frames, 0)
    # a failed open keeps the clip that is already open
    with qtbot.waitSignal(window.session.openFailed, timeout=10000):
        window.open_file(bad_clip.parent / "missing.mp4")
    window.session.seek(7)
    wait_shown(qtbot, window, 7)
    assert_shows(window, pattern_frames, 7)
    assert pattern_clip.name in window.windowTitle()


def test_drop_a_file_opens_it(window, qtbot, pattern_clip):  # type: ignore[no-untyped-def]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(pattern_clip))])
    ev = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.session.clipOpened, timeout=10000):
        window.dropEvent(ev)
    assert pattern_clip.name in window.windowTitle()


def test_preferences_survive_a_restart(qtbot, prefs, open_clip, pattern_clip):  # type: ignore[no-untyped-def]
    from deepyn_gui.qt.main_window import MainWindow
    from deepyn_gui.qt.overlay import OverlayOptions

    win = MainWindow(prefs=prefs)
    qtbot.addWidget(win)
    win.show()
    open_clip(win, pattern_clip)
    chosen = OverlayOptions(show_mask=True, show_boxes=False, opacity=0.3, threshold=0.7, colormap="Inferno",
                            mode="contour")
    win.overlay_controls.set_options(chosen)
    win.resize(700, 520)  # inside the offscreen screen (800x600), which restoreGeometry clamps to
    height = win.size().height()
    win.close()
    saved = prefs.qs.value("window/geometry")
    win2 = MainWindow(prefs=prefs)
    qtbot.addWidget(win2)
    assert win2.overlay_controls.options() == chosen
    assert win2.overlay.options == chosen
    assert not win2.act_show_boxes.isChecked()
    assert saved is not None and not saved.isEmpty()
    assert win2.size().height() == height  # (the width may be clamped to the small offscreen screen)
    win2._fill_recent()
    assert next(a.toolTip() for a in win2.menu_recent.actions()) == str(pattern_clip.resolve())
    win2.close()
