"""Annotated video: H.264, one output frame per source frame, the source's timestamps, cancellable."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from deepyn_gui.core.errors import Cancelled, ExportError
from deepyn_gui.core.export.video import export_annotated_video
from deepyn_gui.core.video import VideoSource

try:
    from tests.exports_support import TINTED, analyse_clip, shared_analysis, write_test_clip
except ImportError:  # pragma: no cover
    from exports_support import TINTED, analyse_clip, shared_analysis, write_test_clip  # type: ignore[no-redef]


def test_same_frame_count_rate_and_timestamps(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    seen: list[tuple[int, int]] = []
    out = export_annotated_video(result, clip, tmp_path / "annotated.mp4", on_progress=lambda d, t: seen.append((d, t)))
    assert out.problems == ()
    with VideoSource(clip) as src, VideoSource(out.path) as dst:
        assert dst.info.frames == src.info.frames == out.frames == out.expected
        assert dst.info.fps == pytest.approx(src.info.fps)
        assert dst.info.codec == "h264"
        assert dst.timestamps() == pytest.approx(src.timestamps(), abs=1e-6)
        assert dst.info.width == src.info.width and dst.info.height > src.info.height  # caption strip
        # the overlay is burned in on a tinted (flagged) frame, not on a clean one far from it
        h = src.info.height
        face = result.frames[TINTED[1]].faces[0]
        x, y, w, fh = (int(v) for v in face.box)
        sl = (slice(y + 6, y + fh - 6), slice(x + 6, x + w - 6))
        a, b = src.frame_at(TINTED[1]).rgb, dst.frame_at(TINTED[1]).rgb[:h]
        assert np.abs(a[sl].astype(int) - b[sl].astype(int)).mean() > 20
        a0, b0 = src.frame_at(0).rgb, dst.frame_at(0).rgb[:h]
        assert np.abs(a0[h - 30 :, :40].astype(int) - b0[h - 30 :, :40].astype(int)).mean() < 6  # codec noise only
    assert seen[-1] == (out.expected, out.expected) and len(seen) == out.expected
    with av.open(str(out.path)) as c:
        assert c.streams.video[0].time_base is not None


def test_frames_not_analysed_are_kept(tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    clip = write_test_clip(tmp_path / "ev" / "c.mp4", n=7, fps=30000 / 1001)  # NTSC rate, B-frames
    result = analyse_clip(clip, stride=3)  # analyses 0, 3, 6 only
    assert [f.index for f in result.frames] == [0, 3, 6]
    out = export_annotated_video(result, clip, tmp_path / "a.mkv")
    with VideoSource(clip) as src, VideoSource(out.path) as dst:
        assert dst.info.frames == 7
        assert dst.timestamps() == pytest.approx(src.timestamps(), abs=1e-3)


def test_cancel_leaves_nothing(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        export_annotated_video(result, clip, tmp_path / "a.mp4", on_progress=progress, cancel=cancel)
    assert os.listdir(tmp_path) == []


def test_bad_extension(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    with pytest.raises(ExportError):
        export_annotated_video(result, clip, tmp_path / "a.gif")
