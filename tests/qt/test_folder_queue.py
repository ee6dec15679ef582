"""File > Open folder...: the queue fills in as clips finish; an entry opens with its cached analysis."""

from __future__ import annotations

from pathlib import Path

from media import astronaut_clip_frames, write_clip


def test_folder_queue_fills_in_and_opens_from_the_cache(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    write_clip(folder / "a.mp4", astronaut_clip_frames(4, face_px=70))
    write_clip(folder / "sub" / "b.mkv", astronaut_clip_frames(5, face_px=90))
    (folder / "readme.txt").write_text("not a clip")
    assert window.act_open_folder in window.menu_file.actions()
    queue = window.open_folder(folder)
    assert queue.table.rowCount() == 2
    qtbot.waitUntil(lambda: all(i.state == "done" for i in queue.items), timeout=120_000)
    for row, item in enumerate(queue.items):
        assert item.fake_score is not None and item.label
        assert queue.table.item(row, 2).text() == f"{item.fake_score:.3f}"
        assert queue.table.item(row, 3).text() == "done"
    queue.open_row(1)
    qtbot.waitUntil(lambda: window.session.results_from_cache is not None, timeout=30_000)
    assert window.session.analysis_result is not None
    assert abs((window.session.verdict.fake_score or 0) - (queue.items[1].fake_score or 0)) < 1e-6
    queue.close()
