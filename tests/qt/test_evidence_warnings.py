"""Issue 13: what an analysis could not do is said in the viewer's evidence bar, not only in files."""

from __future__ import annotations

from types import SimpleNamespace

from deepyn_gui.qt.evidence_bar import EvidenceBar


def test_incomplete_analysis_and_decode_warnings_reach_the_evidence_bar(qtbot) -> None:  # type: ignore[no-untyped-def]
    bar = EvidenceBar()
    qtbot.addWidget(bar)
    result = SimpleNamespace(
        complete=False,
        stop_reason="35 frame(s) could not be decoded (damaged data): frames 166-200",
        warnings=["Decode error at 6.840 s: Invalid data found when processing input; skipped to the next packet.",
                  "The file holds 2 video streams (...); stream 1 was analysed"],
    )
    bar.set_result_warnings(result)
    assert bar.warnings.isVisibleTo(bar)
    text = bar.text()
    assert "INCOMPLETE" in text and "frames 166-200" in text
    assert "Decode error at 6.840 s" in text and "2 video streams" in text
    bar.set_result_warnings(SimpleNamespace(complete=True, stop_reason="", warnings=[]))
    assert not bar.warnings.isVisibleTo(bar) and "INCOMPLETE" not in bar.text()
    bar.set_result_warnings(None)
    assert not bar.warnings.isVisibleTo(bar)


def test_a_file_with_several_video_streams_is_said_and_the_stream_can_be_chosen(window, qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.corpus.hostile import _two_streams

    clip = _two_streams(tmp_path / "two.mkv")
    said: list[str] = []
    window.session.message.connect(lambda level, text, _dialog: said.append(f"{level}: {text}"))
    with qtbot.waitSignal(window.session.clipOpened, timeout=10000) as opened:
        window.session.open(clip)
    info = opened.args[0]
    assert (info.width, info.height, info.video_streams, info.stream) == (320, 240, 2, 1)  # not the 64x64 decoy
    assert any(s.startswith("warning:") and "2 video streams" in s for s in said), said
    assert window.act_stream.isEnabled()
    assert len(info.stream_labels) == 2 and "64x64" in info.stream_labels[0] and "320x240" in info.stream_labels[1]
    assert f"{info.frames} frames" in info.stream_labels[1]  # counted for the stream shown
    # Analysis > Video stream... lists the streams by size, codec and frames (not a bare number box)
    from PySide6.QtWidgets import QInputDialog

    asked: list[tuple[list[str], int]] = []

    def pick_first(_parent, _title, _text, items, current, _editable):  # type: ignore[no-untyped-def]
        asked.append((list(items), current))
        return items[0], True

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(pick_first))
    with qtbot.waitSignal(window.session.clipOpened, timeout=10000) as opened:
        window.choose_stream()
    assert asked == [(list(info.stream_labels), 1)]  # offered every stream, the one shown preselected
    assert (opened.args[0].width, opened.args[0].stream) == (64, 0)
    assert window.session.settings.video_stream == 0  # the analysis reads the same stream as the picture
