"""Session cache: keyed by evidence + model + settings, masks kept, atomic, no pickle, re-analyse."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from deepyn_gui.core.cache import (
    AnalysisCache,
    analyse_cached,
    cache_key,
    data_dir,
    settings_hash,
)
from deepyn_gui.core.errors import ExportError
from deepyn_gui.core.pipeline import AnalysisSettings

try:
    from tests.exports_support import ColourBackend, shared_analysis, write_test_clip
except ImportError:  # pragma: no cover
    from exports_support import ColourBackend, shared_analysis, write_test_clip  # type: ignore[no-redef]


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("DEEPYN_DATA_DIR", str(d))
    return d


def test_data_dir_follows_env(_data_dir: Path) -> None:
    assert data_dir() == _data_dir
    assert AnalysisCache().root == _data_dir / "cache"


def test_key_depends_on_what_changes_results() -> None:
    s = AnalysisSettings(detector="haar").to_json()
    k = cache_key("e" * 64, "m" * 64, s)
    assert k == cache_key("e" * 64, "m" * 64, dict(reversed(list(s.items()))))  # key order irrelevant
    assert k == cache_key("e" * 64, "m" * 64, {**s, "detector_threads": 7})  # speed only
    assert k != cache_key("e" * 64, "m" * 64, {**s, "stride": 2})
    assert k != cache_key("e" * 64, "n" * 64, s)
    assert k != cache_key("f" * 64, "m" * 64, s)
    assert settings_hash(s) != settings_hash({**s, "margin": 1.5})
    with pytest.raises(ValueError):
        cache_key("", "m" * 64, s)


def test_roundtrip_keeps_everything_including_masks() -> None:
    _clip, result = shared_analysis()
    cache = AnalysisCache()
    path = cache.save(result)
    assert path.is_file() and path.is_relative_to(cache.root)
    back = cache.load(result.source.sha256, result.model.sha256, result.settings)
    assert back is not None
    assert back.to_json() == result.to_json()
    blobs = [f.mask_blob for fr in result.frames for f in fr.faces]
    assert blobs and all(b is not None for b in blobs)
    assert [f.mask_blob for fr in back.frames for f in fr.faces] == blobs
    # only JSON and raw mask bytes inside: nothing that could execute on load
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names[:2] == ["cache.json", "analysis.json"]
        assert all(n.startswith("masks/") and n.endswith(".bin") for n in names[2:])
        assert not any(b"pickle" in z.read(n)[:64] or z.read(n)[:1] == b"\x80" for n in names)
        json.loads(z.read("analysis.json"))
    assert [e.path for e in cache.entries(result.source.sha256)] == [path]


def test_other_settings_or_model_miss() -> None:
    _clip, result = shared_analysis()
    cache = AnalysisCache()
    cache.save(result)
    assert cache.load(result.source.sha256, result.model.sha256, {**result.settings, "stride": 3}) is None
    assert cache.load(result.source.sha256, "1" * 64, result.settings) is None
    assert cache.load_latest(result.source.sha256) is not None
    assert cache.load_latest(result.source.sha256, model_sha256="1" * 64) is None


def test_analyse_cached_hits_misses_and_reanalyse(tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    clip = write_test_clip(tmp_path / "ev" / "a.mp4", n=4)
    settings = AnalysisSettings(detector="haar")
    b1 = ColourBackend()
    first, cached = analyse_cached(str(clip), b1, settings)
    assert not cached and b1.calls > 0
    b2 = ColourBackend()
    second, cached = analyse_cached(str(clip), b2, settings)
    assert cached and b2.calls == 0
    assert second.to_json()["frames"] == first.to_json()["frames"]
    # a renamed copy of the same bytes hits too, and reports its own path
    copy = tmp_path / "ev" / "renamed.mp4"
    shutil.copyfile(clip, copy)
    third, cached = analyse_cached(str(copy), ColourBackend(), settings)
    assert cached and third.source.path == str(copy)
    # re-analyse ignores the cache and replaces the entry
    b4 = ColourBackend()
    _fourth, cached = analyse_cached(str(clip), b4, settings, reanalyse=True)
    assert not cached and b4.calls > 0
    # different settings: a miss
    b5 = ColourBackend()
    _r, cached = analyse_cached(str(clip), b5, AnalysisSettings(detector="haar", stride=2))
    assert not cached and b5.calls > 0


def test_damaged_entry_is_ignored_and_replaced(tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    clip = write_test_clip(tmp_path / "ev" / "a.mp4", n=3)
    settings = AnalysisSettings(detector="haar")
    result, _ = analyse_cached(str(clip), ColourBackend(), settings)
    cache = AnalysisCache()
    path = cache.path_for(result.source.sha256, result.model.sha256, result.settings)
    path.write_bytes(path.read_bytes()[:100])
    assert cache.load(result.source.sha256, result.model.sha256, result.settings) is None
    b = ColourBackend()
    again, cached = analyse_cached(str(clip), b, settings)
    assert not cached and b.calls > 0
    assert any("damaged or edited" in w for w in again.warnings)
    assert cache.load(result.source.sha256, result.model.sha256, result.settings) is not None


def test_an_entry_under_rules_that_cannot_be_applied_again_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such an entry is analysed again like a damaged one, but the user is not told it was damaged."""
    from deepyn_gui.core import cache as cache_module

    (tmp_path / "ev").mkdir()
    clip = write_test_clip(tmp_path / "ev" / "a.mp4", n=3)
    settings = AnalysisSettings(detector="haar")
    result, _ = analyse_cached(str(clip), ColourBackend(), settings)
    cache = AnalysisCache()
    retired = dataclasses.replace(result, verdict=dataclasses.replace(result.verdict, aggregator="retired-aggregator"))
    with monkeypatch.context() as m:
        m.setattr(cache_module, "verdict_rules_id", lambda: "rules-of-an-older-release")
        cache.save(retired)
    assert cache.load_checked(result.source.sha256, result.model.sha256, result.settings)[1] == "rules"
    b = ColourBackend()
    again, cached = analyse_cached(str(clip), b, settings, cache=cache)
    assert not cached and b.calls > 0
    assert any("verdict rules" in w for w in again.warnings)
    assert not any("damaged" in w for w in again.warnings)
    assert cache.load_checked(result.source.sha256, result.model.sha256, result.settings) == (
        cache.load(result.source.sha256, result.model.sha256, result.settings), None)


def test_failed_save_keeps_the_previous_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    _clip, result = shared_analysis()
    cache = AnalysisCache()
    path = cache.save(result)
    good = path.read_bytes()
    real_fsync = os.fsync

    def boom(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(ExportError):
        cache.save(result)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == good
    assert os.listdir(path.parent) == [path.name]


def test_incomplete_results_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clip, result = shared_analysis()
    partial = dataclasses.replace(result, complete=False, stop_reason="decode error")
    from deepyn_gui.core import pipeline

    monkeypatch.setattr(pipeline, "analyze", lambda *a, **k: partial)
    clip = tmp_path / "same.mp4"
    shutil.copyfile(_clip, clip)
    got, cached = analyse_cached(str(clip), ColourBackend(), AnalysisSettings(detector="haar"))
    assert got is partial and not cached
    assert AnalysisCache().entries(result.source.sha256) == []


def test_a_stored_verdict_is_recomputed_with_the_current_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry written by an older release (other span level, no brief-person rule) must not show its
    old verdict: the frames are reused, the verdict is derived again from them."""
    from deepyn_gui.core import cache as cache_module
    from deepyn_gui.core.results import Verdict
    from deepyn_gui.core.verdict import video_verdict

    _clip, result = shared_analysis()
    current = video_verdict(result.frames, result.model, result.verdict.aggregator)
    stale = Verdict(
        label="real" if current.label != "real" else "fake",
        fake_score=0.01 if current.label != "real" else 0.99,
        aggregator=result.verdict.aggregator, band="low", explanation="decided by an older rule",
        threshold=result.verdict.threshold,
    )
    old = dataclasses.replace(result, verdict=stale)
    cache = AnalysisCache()
    with monkeypatch.context() as m:  # not monkeypatch.undo(): that would also undo the test's data folder
        m.setattr(cache_module, "verdict_rules_id", lambda: "rules-of-an-older-release")
        cache.save(old)
    back = cache.load(result.source.sha256, result.model.sha256, result.settings)
    assert back is not None
    assert back.verdict.to_json() == current.to_json()
    assert back.verdict.label != stale.label and "older rule" not in back.verdict.explanation
    assert back.to_json()["frames"] == old.to_json()["frames"]
    # an older entry whose aggregator no longer exists is analysed again, never shown or crashed on
    with monkeypatch.context() as m:
        m.setattr(cache_module, "verdict_rules_id", lambda: "rules-of-an-older-release")
        cache.save(dataclasses.replace(old, verdict=dataclasses.replace(stale, aggregator="retired-aggregator")))
    assert cache.load(result.source.sha256, result.model.sha256, result.settings) is None
    # an entry made under the current rules keeps its stored verdict exactly (no rounding drift)
    cache.save(result)
    same = cache.load(result.source.sha256, result.model.sha256, result.settings)
    assert same is not None and same.verdict.to_json() == result.verdict.to_json()
