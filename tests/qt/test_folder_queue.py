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
        # faces of 70 and 90 px are smaller than the model's input: the row says so, the tooltip says why
        assert item.caution and queue.table.item(row, 1).text().endswith(" · caution")
        assert queue.table.item(row, 1).toolTip() == item.caution
    queue.open_row(1)
    qtbot.waitUntil(lambda: window.session.results_from_cache is not None, timeout=30_000)
    assert window.session.analysis_result is not None
    assert abs((window.session.verdict.fake_score or 0) - (queue.items[1].fake_score or 0)) < 1e-6
    queue.close()


def test_choosing_remote_asks_for_endpoints_and_cancel_keeps_the_backend(window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QInputDialog

    before = window.session.backend_name
    answers = iter([("url=http://127.0.0.1:1,url=http://127.0.0.1:2", True), ("", False),
                    ("url=http://h:1,token=s3cret", True)])
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: next(answers)))
    window.choose_remote()
    assert window.session.backend_name == "remote:url=http://127.0.0.1:1,url=http://127.0.0.1:2,model=uynet"
    assert window.backend_actions["remote"].isChecked()
    assert "127.0.0.1:2" in window.backend_label.text()
    window.choose_remote()  # cancelled: the remote choice stays
    assert window.session.backend_name.startswith("remote:url=http://127.0.0.1:1")
    window.set_backend(before)
    window.choose_remote()  # a token typed in is refused, the backend is kept
    assert window.session.backend_name == before
    assert "token_env" in window.last_message_box.text()


def test_the_viewer_analyses_through_a_real_remote_server(qtbot, window, open_clip, face_clip, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    pytest.importorskip("kserve")
    pytest.importorskip("tritonclient.http")
    from PySide6.QtWidgets import QInputDialog
    from serving_support import start_servers

    (server,) = start_servers(1)
    try:
        monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (f"url={server.url}", True)))
        assert window.choose_remote()
        open_clip(window, face_clip)
        with qtbot.waitSignal(window.session.analysisFinished, timeout=120_000) as done:
            window.start_analysis()
        result = done.args[0]
        faces = [f for fr in result.frames for f in fr.faces]
        assert result.backend["name"] == "remote" and result.backend["endpoints"] == [server.url]
        assert faces and all(f.state == "ok" for f in faces)
    finally:
        server.stop()
