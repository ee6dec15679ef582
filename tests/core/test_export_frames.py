"""Frame PNG exports: the right frames, raw pixels exact, and atomic writes (no half files)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from deepyn_gui.core.errors import ExportError, InputError
from deepyn_gui.core.export.annotate import decode_png
from deepyn_gui.core.export.atomic import write_atomic
from deepyn_gui.core.export.frames import (
    export_frames,
    export_raw_frames,
    flagged_frames,
    frame_file_name,
    parse_frame_spec,
    select_frames,
)
from deepyn_gui.core.video import VideoSource

try:
    from tests.exports_support import TINTED, shared_analysis
except ImportError:  # pragma: no cover
    from exports_support import TINTED, shared_analysis  # type: ignore[no-redef]


def test_parse_frame_spec() -> None:
    assert parse_frame_spec("10,20-23, 5", 100) == [5, 10, 20, 21, 22, 23]
    assert parse_frame_spec("3,3,2-3", 10) == [2, 3]
    for bad in ("", "x", "5-2", "1-", "100", "-3"):
        with pytest.raises(InputError):
            parse_frame_spec(bad, 100)


def test_flagged_frames_are_the_tinted_ones() -> None:
    _clip, result = shared_analysis()
    assert flagged_frames(result) == list(TINTED)
    assert select_frames(result, "flagged") == list(TINTED)
    assert select_frames(result, "all") == list(range(len(result.frames)))
    assert select_frames(result, "none") == []
    assert select_frames(result, "1,8") == [1, 8]


def test_export_annotated_and_raw(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    written = export_frames(result, clip, [2, 5], tmp_path, raw=True)
    assert [p.name for p in written] == [
        frame_file_name(2), frame_file_name(2, raw=True), frame_file_name(5), frame_file_name(5, raw=True),
    ]
    with VideoSource(clip) as src:
        f5 = src.frame_at(5).rgb
    raw5 = decode_png((tmp_path / frame_file_name(5, raw=True)).read_bytes())
    assert np.array_equal(raw5, f5)  # raw = exactly the decoded pixels, lossless
    ann5 = decode_png((tmp_path / frame_file_name(5)).read_bytes())
    h, w = f5.shape[:2]
    assert ann5.shape[1] == w and ann5.shape[0] > h  # caption strip below
    face = result.frames[5].faces[0]
    x, y, bw, bh = (int(v) for v in face.box)
    inside = (slice(y + 8, y + bh - 8), slice(x + 8, x + bw - 8))
    assert not np.array_equal(ann5[:h][inside], f5[inside])  # overlay drawn on the flagged face
    far = (slice(h - 20, h), slice(0, 20))
    assert np.array_equal(ann5[:h][far], f5[far])  # nothing drawn far from the face
    # a second export gives the same bytes
    (tmp_path / "again").mkdir()
    again = export_frames(result, clip, [5], tmp_path / "again")
    assert again[0].read_bytes() == (tmp_path / frame_file_name(5)).read_bytes()


def test_raw_export_needs_no_analysis(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    out = export_raw_frames(clip, [0, 9], tmp_path, expected_sha256=result.source.sha256)
    assert [p.name for p in out] == [frame_file_name(0, raw=True), frame_file_name(9, raw=True)]
    with pytest.raises(InputError):
        export_frames(result, clip, [99], tmp_path)


def test_atomic_write_failure_leaves_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "analysis.json"
    target.write_bytes(b"previous version")

    def half_then_fail(fh) -> None:  # type: ignore[no-untyped-def]
        fh.write(b"{ half a fi")
        raise OSError(28, "No space left on device")

    with pytest.raises(ExportError):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"previous version"
    assert os.listdir(tmp_path) == ["analysis.json"]


def test_frame_export_failure_mid_write_leaves_no_half_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip, result = shared_analysis()
    old = tmp_path / frame_file_name(4)
    old.write_bytes(b"old png")
    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second file fails after its bytes were written, before the rename
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ExportError):
        export_frames(result, clip, [3, 4, 5], tmp_path)
    names = sorted(os.listdir(tmp_path))
    assert names == [frame_file_name(3), frame_file_name(4)]  # 3 complete, 4 still the old file, no .part
    assert old.read_bytes() == b"old png"
    assert decode_png((tmp_path / frame_file_name(3)).read_bytes()).ndim == 3
