"""One engine: the CLI path and the viewer's worker give the same AnalysisResult for the same clip.

Clean, damaged (a cut-off download with a faststart index: decodable prefix, damage warnings) and a
backend failing on one batch. Compared: everything in the result except when it was made, and the
cache decision each shell takes with the result (core.cache's one rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from media import astronaut_clip_frames, truncate_copy, write_clip

from deepyn_gui.core.cache import AnalysisCache, analyse_cached, save_analysis
from deepyn_gui.core.errors import BackendError
from deepyn_gui.core.pipeline import AnalysisSettings, analyze
from deepyn_gui.core.results import AnalysisResult, ModelInfo
from deepyn_gui.qt.workers import AnalysisJob, AnalysisWorker


class FlakyBackend:
    """Scores each crop by its brightness (deterministic); fails on batch ``fail_on_batch`` if given."""

    name = "fake"

    def __init__(self, fail_on_batch: int | None = None) -> None:
        self.calls = 0
        self.fail_on_batch = fail_on_batch

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo("fake", "1" * 64, trained=True)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        if self.calls == self.fail_on_batch:
            raise BackendError("card fell off the bus")
        n = len(crops)
        mask = np.zeros((n, 224, 224), np.float32)
        mask[:, 80:140, 80:140] = 0.75
        return mask, (crops.reshape(n, -1).mean(axis=1) / 255.0).astype(np.float32)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def engine_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("one_engine")
    clean = write_clip(d / "clean.mp4", astronaut_clip_frames(16, 320, 240, face_px=60), fps=25)
    fast = write_clip(d / "fast.mp4", astronaut_clip_frames(16, 320, 240, face_px=60), fps=25, faststart=True)
    damaged = truncate_copy(fast, d / "damaged.mp4", 0.6)
    return {"clean": Path(clean), "damaged": Path(damaged)}


def _comparable(result: AnalysisResult) -> dict[str, Any]:
    doc = result.to_json()
    doc.pop("created_utc")
    doc["masks"] = [f.mask_blob for fr in result.frames for f in fr.faces]
    return doc


def _viewer_result(qtbot: Any, path: Path, settings: AnalysisSettings, fail_on_batch: int | None) -> AnalysisResult:
    job = AnalysisJob(path=str(path), backend="fake", settings=settings, nice=0)
    worker = AnalysisWorker(job, backend_factory=lambda *_a, **_k: FlakyBackend(fail_on_batch))
    got: list[AnalysisResult | None] = []
    worker.finished.connect(lambda _rid, result: got.append(result))
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    assert worker.join(10)
    assert got and got[0] is not None
    return got[0]


@pytest.mark.parametrize(("clip", "fail_on_batch"), [("clean", None), ("damaged", None), ("clean", 2)])
def test_cli_and_viewer_give_equal_results(qtbot: Any, engine_clips: dict[str, Path], tmp_path: Path,
                                           clip: str, fail_on_batch: int | None) -> None:
    path = engine_clips[clip]
    settings = AnalysisSettings(batch_size=4)
    cli = analyze(str(path), FlakyBackend(fail_on_batch), settings)
    gui = _viewer_result(qtbot, path, settings, fail_on_batch)
    assert _comparable(cli) == _comparable(gui)
    # the cases are what they claim to be, so the equality above says something
    if clip == "damaged":
        assert len(cli.warnings) >= 2 and not cli.complete and cli.undecodable_frames and cli.frames
    if fail_on_batch:
        assert any(fr.state == "error" for fr in cli.frames) and any(fr.state == "ok" for fr in cli.frames)
    if clip == "clean" and not fail_on_batch:
        assert cli.complete and not cli.warnings and all(fr.state == "ok" for fr in cli.frames)
    # the cache decision: the CLI's analyse_cached and the viewer's save take the same one
    cli_cache = AnalysisCache(tmp_path / "cli")
    again, cached = analyse_cached(str(path), FlakyBackend(fail_on_batch), settings, cache=cli_cache)
    assert not cached
    cli_saved = cli_cache.path_for(again.source.sha256, again.model.sha256, again.settings).is_file()
    gui_saved = save_analysis(gui, tmp_path / "gui") is not None
    assert cli_saved == gui_saved == (clip == "clean" and not fail_on_batch)
