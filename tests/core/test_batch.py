"""Batch triage with the local backend: clip discovery, the output check, the summary, resuming."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from media import astronaut_clip_frames, write_clip

from deepyn_gui.core.batch import (
    BatchItem,
    check_batch_output,
    find_clips,
    run_batch,
    sort_by_score,
    summary_csv_bytes,
    summary_html_bytes,
    write_summary,
)
from deepyn_gui.core.cache import AnalysisCache
from deepyn_gui.core.errors import ExportError, InputError
from deepyn_gui.core.pipeline import AnalysisSettings


def make_clips(folder: Path, n: int) -> list[Path]:
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        where = folder / "sub" if i % 3 == 2 else folder
        out.append(write_clip(where / f"clip{i:02d}.mp4", astronaut_clip_frames(4 + i % 3, face_px=60 + 5 * i)))
    (folder / "notes.txt").write_text("not a clip")
    (folder / ".hidden").mkdir(exist_ok=True)
    write_clip(folder / ".hidden" / "skip.mp4", astronaut_clip_frames(2))
    return out


def test_find_clips_recurses_keeps_video_only_and_no_repeats(tmp_path: Path) -> None:
    clips = make_clips(tmp_path / "in", 4)
    found = find_clips([tmp_path / "in", clips[0]])
    assert sorted(map(str, found)) == sorted(map(str, clips))
    with pytest.raises(InputError, match="not a video"):
        find_clips([tmp_path / "in" / "notes.txt"])
    with pytest.raises(InputError, match="no such"):
        find_clips([tmp_path / "missing"])


def test_batch_output_is_never_a_folder_holding_evidence(tmp_path: Path) -> None:
    clips = make_clips(tmp_path / "in", 3)
    with pytest.raises(ExportError, match="evidence"):
        check_batch_output(tmp_path / "in" / "sub", clips)
    with pytest.raises(ExportError, match="evidence"):
        check_batch_output(tmp_path / "in", clips)
    with pytest.raises(ExportError, match="reads clips from"):
        check_batch_output(tmp_path / "in" / "triage", clips, [tmp_path / "in"])
    assert not (tmp_path / "in" / "triage").exists()
    assert check_batch_output(tmp_path / "out", clips, [tmp_path / "in"]).is_dir()


def test_summary_sorted_by_score_and_html_escaped(tmp_path: Path) -> None:
    items = [
        BatchItem("a.mp4", "done", "real", 0.1, report="clips/a/report.html"),
        BatchItem("<script>alert(1)</script>.mp4", "done", "fake", 0.9, report="clips/x y/report.html"),
        BatchItem("n.mp4", "done", "no_face", None),
        BatchItem("m.mp4", "done", "uncertain", 0.5, caution="The faces in this clip are <small>."),
    ]
    assert [i.clip for i in sort_by_score(items)][:3] == ["<script>alert(1)</script>.mp4", "m.mp4", "a.mp4"]
    rows = list(csv.DictReader(io.StringIO(summary_csv_bytes(items).decode())))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"] and rows[-1]["clip"] == "n.mp4"
    page = summary_html_bytes(items, {"model": {"name": "<b>m</b>"}}).decode()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;m" in page
    assert 'href="clips/x%20y/report.html"' in page
    # the clip's own caution reaches every triage format (a small-faced clip is flagged for care)
    assert rows[1]["caution"] == "The faces in this clip are <small>." and rows[0]["caution"] == ""
    assert "Caution for this clip" in page and "are &lt;small&gt;." in page
    paths = write_summary(items, tmp_path, {})
    assert [p.name for p in paths] == ["summary.csv", "summary.json", "index.html"]
    assert json.loads(paths[1].read_text())["clips"][0]["fake_score"] == 0.9
    assert json.loads(paths[1].read_text())["clips"][1]["caution"].startswith("The faces in this clip")
    assert not list(tmp_path.glob(".*.part"))  # atomic writes leave no temp files


def test_interrupted_batch_finishes_only_the_rest(tmp_path: Path, tiny_onnx_model: Path) -> None:
    from deepyn_gui.backends import create_backend

    clips = make_clips(tmp_path / "in", 5)
    out = check_batch_output(tmp_path / "out", clips)
    cache = AnalysisCache(tmp_path / "cache")
    backend = create_backend("onnx", model_path=tiny_onnx_model, threads=1)
    settings = AnalysisSettings(batch_size=8)
    cancel = threading.Event()
    seen: list[Any] = []

    def stop_after_two(_i: int, item: BatchItem) -> None:
        seen.append(item)
        if sum(1 for s in seen if s.state == "done") == 2:
            cancel.set()

    try:
        first = run_batch(clips, backend, settings, out_dir=out, cache=cache, cancel=cancel, on_item=stop_after_two)
        states = [i.state for i in first.items]
        assert states.count("done") == 2 and states.count("cancelled") == 3
        second = run_batch(clips, backend, settings, out_dir=out, cache=cache)
    finally:
        backend.close()
    again = [i.state for i in second.items]
    assert again.count("cached") == 2 and again.count("done") == 3
    for before, after in zip(first.items, second.items):
        if before.state == "done":
            assert after.state == "cached" and after.fake_score == pytest.approx(before.fake_score, abs=1e-6)
    assert all((out / i.report).is_file() for i in second.items)
    # the test clips' faces are small: each analysed item carries the clip's caution, fresh or from the cache
    assert all(i.caution.startswith("The faces in this clip are small") for i in second.items)
