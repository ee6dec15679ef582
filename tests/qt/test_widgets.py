"""Widget pieces on their own: mask drawing, flagged spans, formats, settings, and the Qt binding."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from deepyn_gui.core.faces import mask_to_frame
from deepyn_gui.core.results import CropTransform, FaceResult, FrameResult, compress_mask
from deepyn_gui.qt.overlay import COLORMAPS, MaskOverlay, OverlayOptions, _lut, mask_rgba
from deepyn_gui.qt.style import format_duration, format_timecode
from deepyn_gui.qt.timeline import STATE_LANES, ScoreTimeline, flagged_spans


def test_signal_emit_keeps_reference_counts(qapp):  # type: ignore[no-untyped-def]
    """PySide6 6.12.0 dropped a reference to True on every emit, aborting Python 3.11 (see pyproject)."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        sig = Signal(int, object)

    e = Emitter()
    e.sig.connect(lambda *_: None)
    before = sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)
    for i in range(200):
        e.sig.emit(i, None)
    after = sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)
    assert all(abs(a - b) < 20 for a, b in zip(before, after)), (before, after)


def test_mask_rgba_fill_respects_threshold_and_colormap() -> None:
    roi = np.array([[0, 100, 128], [200, 255, 127]], np.uint8)
    lut = _lut("Red")
    rgba = mask_rgba(roi, 0.5, lut, "fill")
    assert rgba.shape == (2, 3, 4)
    np.testing.assert_array_equal(rgba[..., 3] > 0, roi >= 128)
    np.testing.assert_array_equal(rgba[..., :3], lut[roi])
    assert (mask_rgba(roi, 0.0, lut, "fill")[..., 3] > 0).sum() == 5  # a zero mask is never drawn
    assert (mask_rgba(roi, 1.0, lut, "fill")[..., 3] > 0).sum() == 1
    for name in COLORMAPS:
        assert _lut(name).shape == (256, 3)


def test_mask_rgba_contour_draws_only_the_outline() -> None:
    roi = np.zeros((40, 40), np.uint8)
    roi[10:30, 10:30] = 230
    fill = mask_rgba(roi, 0.5, _lut("Inferno"), "fill")
    line = mask_rgba(roi, 0.5, _lut("Inferno"), "contour")
    assert (fill[..., 3] > 0).sum() == 400
    drawn = line[..., 3] > 0
    assert 0 < drawn.sum() < 100
    assert not drawn[15:25, 15:25].any()  # the inside stays clear
    assert drawn[10, 10:30].all()


def _face(track: int, score: float | None, state: str = "ok", with_mask: bool = True) -> FaceResult:
    mask = np.zeros((224, 224), np.float32)
    mask[56:168, 56:168] = 0.9
    return FaceResult(
        track=track, box=(40.0, 30.0, 60.0, 60.0), state=state, fake_score=score,  # type: ignore[arg-type]
        crop=CropTransform(25.0, 15.0, 90.0), mask_blob=compress_mask(mask) if with_mask else None,
        error="boom" if state == "error" else None,
    )


def test_overlay_places_mask_in_frame_coordinates(qapp):  # type: ignore[no-untyped-def]
    import pyqtgraph as pg

    vb = pg.ViewBox()
    ov = MaskOverlay(vb)
    fr = FrameResult(3, 0.12, "ok", (_face(1, 0.91), _face(2, None, "too_small", with_mask=False)))
    ov.set_result(fr, (120, 160))
    assert len(ov.mask_items) == 1 and len(ov.box_items) == 2
    assert ov.labels() == ["P1  0.91", "P2  too small"]
    item = ov.mask_items[0]
    # the crop square (25, 15, side 90) maps back to frame pixels 25..114 x 15..104
    assert (item.pos().x(), item.pos().y()) == (25, 15)
    assert item.image.shape[:2] == (90, 90)
    face = fr.faces[0]
    x, y, roi = mask_to_frame(face.mask(), face.crop, (120, 160))  # the core mapping, drawn as is
    assert (x, y) == (25, 15)
    np.testing.assert_array_equal(item.image[..., 3] > 0, roi >= 128)
    opaque = np.argwhere(item.image[..., 3] > 0)
    assert opaque.min(axis=0).tolist() in ([22, 22], [23, 23]) and opaque.max(axis=0).tolist() in ([66, 66], [67, 67])
    ov.set_options(OverlayOptions(show_mask=False))
    assert ov.mask_items == [] and len(ov.box_items) == 2
    ov.set_options(OverlayOptions(show_boxes=False))
    assert ov.box_items == [] and len(ov.mask_items) == 1
    ov.set_result(None, (120, 160))
    assert ov.mask_items == [] and ov.box_items == []


def test_flagged_spans() -> None:
    s = np.array([np.nan, 0.2, 0.6, 0.7, 0.4, 0.5, np.nan, 0.9], np.float32)
    assert flagged_spans(s, 0.5) == [(2, 3), (5, 5), (7, 7)]
    assert flagged_spans(s, 0.95) == []
    assert flagged_spans(np.zeros(0, np.float32), 0.5) == []


def test_timeline_lanes_tracks_and_spans(qtbot):  # type: ignore[no-untyped-def]
    tl = ScoreTimeline()
    qtbot.addWidget(tl)
    tl.set_clip(10)
    frames = [
        FrameResult(0, 0.0, "no_face"),
        FrameResult(1, 0.04, "ok", (_face(1, 0.8),)),
        FrameResult(2, 0.08, "ok", (_face(1, 0.7), _face(2, 0.2))),
        FrameResult(3, 0.12, "ok", (_face(2, None, "too_small"),)),
        FrameResult(4, 0.16, "error", error="decode failed"),
        FrameResult(5, 0.20, "ok", (_face(2, 0.1),)),
    ]
    tl.add_results(frames)
    tl.redraw()
    assert sorted(tl.curves) == [1, 2]
    x1, y1 = tl.curves[1].getData()
    assert x1.tolist() == [0, 1, 2, 3, 4, 5]  # every analysed frame; NaN breaks the line where P1 is absent
    np.testing.assert_allclose(y1, [np.nan, 0.8, 0.7, np.nan, np.nan, np.nan], rtol=1e-6)
    np.testing.assert_allclose(tl.curves[2].getData()[1], [np.nan, np.nan, 0.2, np.nan, np.nan, 0.1], rtol=1e-6)
    assert tl.state_frames("no_face") == [0]
    assert tl.state_frames("too_small") == [3]
    assert tl.state_frames("error") == [4]
    for state, lane in STATE_LANES.items():
        ys = tl.state_items[state].getData()[1]
        assert np.all(ys == lane) and lane < 0
    assert len(set(STATE_LANES.values())) == 3
    assert tl.spans() == [(1, 2)]
    tl.set_threshold(0.75)
    assert tl.spans() == [(1, 1)]
    tl.clear_results()
    assert tl.curves == {} and tl.spans() == [] and tl.state_frames("no_face") == []


def test_formats() -> None:
    assert format_timecode(0) == "00:00:00.000"
    assert format_timecode(3725.0406) == "01:02:05.041"
    assert format_duration(None) == "—"
    assert format_duration(42.4) == "42 s"
    assert format_duration(185) == "3 min 05 s"


def test_recent_files_are_deduplicated_and_capped(prefs, tmp_path):  # type: ignore[no-untyped-def]
    for i in range(14):
        prefs.add_recent(str(tmp_path / f"clip{i}.mp4"))
    prefs.add_recent(str(tmp_path / "clip3.mp4"))
    files = prefs.recent_files()
    assert len(files) == 10
    assert files[0].endswith("clip3.mp4") and files[1].endswith("clip13.mp4")
    assert len(set(files)) == 10


def test_python_m_deepyn_gui_runs_the_gui(monkeypatch):  # type: ignore[no-untyped-def]
    import runpy

    from deepyn_gui.qt import app

    seen: list[object] = []
    monkeypatch.setattr(app, "main", lambda argv=None: seen.append(argv) or 0)
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("deepyn_gui", run_name="__main__")
    assert exc.value.code == 0 and seen == [None]
    assert app.build_parser().parse_args(["clip.mp4", "--analyze"]).clip == "clip.mp4"


def test_short_timecode_for_axis_ticks():  # type: ignore[no-untyped-def]
    from deepyn_gui.qt.timeline import short_timecode

    assert short_timecode(0.0) == "0:00.0"
    assert short_timecode(65.25) == "1:05.2" or short_timecode(65.25) == "1:05.3"
    assert short_timecode(3599.9) == "59:59.9"
    assert short_timecode(3725.0) == "1:02:05"


def test_verdict_panel_lists_what_was_not_analysed_and_the_models_known_limits(qapp):  # type: ignore[no-untyped-def]
    from deepyn_gui.qt.verdict_panel import VerdictPanel

    panel = VerdictPanel()
    panel.set_coverage(["The audio track."], ["Misses <generated> heads."])
    text = panel.text()
    assert "Not analysed:" in text and "Known limits of this model (its card):" in text
    assert "&lt;generated&gt;" in panel.coverage.text()  # card text is escaped, never markup
    panel.set_coverage(["The audio track."], [])
    assert "Known limits" not in panel.text() and "The audio track." in panel.text()
    panel.set_coverage(["The audio track."], ["A limit."], ["Faces are <small>."])
    text = panel.coverage.text()
    assert text.index("Caution for this clip:") < text.index("Not analysed:")  # the clip's own caution first
    assert "Faces are &lt;small&gt;." in text
    panel.set_coverage([])
    assert not panel.coverage.isVisibleTo(panel) and panel.coverage.text() == ""
