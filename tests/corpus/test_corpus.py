"""The bad-input corpus through the real CLI: one clear line or an honest result, never a crash or a hang.

Most cases run ``deepyn_gui.cli.main([...])`` in-process (fast); a few run ``python -m deepyn_gui.cli``
in a subprocess, for the cases where a hang or a crash of the whole process is the risk. Every case
checks that the input's bytes and modification time are unchanged and nothing was written next to it.
Inference uses the tiny untrained ONNX U-YNet from ``tests/conftest.py`` (real onnxruntime, fast); the
CLI warns that it is untrained, and that one known warning line is set aside when counting lines.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deepyn_gui.cli import main as cli_main
from deepyn_gui.core.verdict import verdict_words
from tests.corpus.make_corpus import CASES, Case, build_corpus

UNTRAINED_LINE = "deepyn: warning: the model is UNTRAINED; its scores mean nothing."
ISSUE_KINDS = {  # every kind of input issue 7 lists, and the case(s) that cover it
    "zero-byte file": ["zero_bytes"],
    "text renamed .mp4": ["text_renamed_mp4"],
    "truncated mp4 10/50/99 %": ["truncated_10", "truncated_50", "truncated_99", "truncated_faststart_50",
                                 "truncated_faststart_99"],
    "corrupt bytes in the middle": ["corrupt_middle"],
    "wrong extension": ["mkv_named_mp4", "mp4_named_avi"],
    "1-frame clip": ["one_frame"],
    "0-fps / missing fps": ["avi_zero_fps", "raw_h264_no_fps"],
    "variable frame rate": ["variable_frame_rate"],
    "rotation 90": ["rotation_90"],
    "odd sizes 1x1, 7x5, 8Kx8K": ["size_1x1", "size_7x5", "size_8k_square"],
    "grayscale": ["gray8_ffv1"],
    "16-bit / unusual pixel formats": ["gray16_ffv1", "rgb48_png", "yuv422p10_prores", "gif_pal8"],
    "audio-only": ["audio_only"],
    "very long but cheap": ["long_cheap_10min"],
    "non-ASCII and very long names": ["non_ascii_name", "long_name_240"],
    "a directory": ["directory"],
    "disappears mid-analysis": ["vanishes_mid_run"],
    "no faces": ["no_faces"],
    "20 faces": ["twenty_faces"],
    "faces at the border": ["faces_at_border"],
    "tiny faces": ["tiny_faces"],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    cases = build_corpus(tmp_path_factory.mktemp("corpus"))
    return {c.name: c for c in cases}


def fingerprint(p: Path) -> tuple[str, int, int] | None:
    """(sha256, mtime_ns, size) of a regular file, None for anything else."""
    if not p.is_file() or p.is_symlink() and not p.exists():
        return None
    st = p.stat()
    return hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size


def meaningful_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and ln.strip() != UNTRAINED_LINE]


def deepyn_threads() -> list[str]:
    deadline = time.monotonic() + 3.0
    while True:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("deepyn-")]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def check_result_json(case: Case, js: dict) -> None:
    frames = js["frames"]
    assert len(frames) >= case.min_frames, f"{case.name}: only {len(frames)} frames analysed"
    assert [f["index"] for f in frames] == sorted(f["index"] for f in frames)
    for fr in frames:
        assert fr["state"] in ("ok", "no_face", "error")
        for face in fr["faces"]:
            if face["state"] == "ok":
                assert face["fake_score"] is not None and 0.0 <= face["fake_score"] <= 1.0
            else:
                assert face["fake_score"] is None  # no silent score on a face that was not judged
    v = js["verdict"]
    if case.verdicts:
        assert v["label"] in case.verdicts, f"{case.name}: verdict {v['label']}"
    if v["label"] in ("no_face", "too_small", "error"):
        assert v["fake_score"] is None
    assert len(js["source"]["sha256"]) == 64
    for key in ("width", "height", "frames"):
        if key in case.extra:
            assert js["source"][key] == case.extra[key], f"{case.name}: {key}"
    if "pts_s" in case.extra:
        got = [f["pts_s"] for f in frames]
        assert all(math.isclose(a, b, abs_tol=1e-3) for a, b in zip(got, case.extra["pts_s"])), got
    if case.faces_at_least:
        most = max(len(f["faces"]) for f in frames)
        assert most >= case.faces_at_least, f"{case.name}: at most {most} faces on a frame"
    if case.warns:
        assert js["warnings"], f"{case.name}: damaged data must be reported"


def test_corpus_covers_every_kind_in_the_issue(corpus: dict[str, Case]) -> None:
    assert len(corpus) >= 30
    assert list(corpus) == CASES
    for kind, names in ISSUE_KINDS.items():
        assert set(names) <= set(corpus), f"no case for {kind}"


GENERIC = [n for n in CASES if n not in ("fifo", "vanishes_mid_run")]


SLOW = {"size_8k_square", "long_cheap_10min"}  # a few seconds each: decode 200 MB frames / 15000 packets


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in GENERIC])
def test_cli_on_corpus_case(name: str, corpus: dict[str, Case], tiny_onnx_model: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    case = corpus[name]
    before = fingerprint(case.path)
    folder = case.path.parent
    listing = sorted(os.listdir(folder))
    out_json = tmp_path / "result.json"
    rc, out, err = run_in_process(capsys, "analyze", case.path, "--model", tiny_onnx_model, "-q", "--threads", "1",
                                  "--json", out_json, *case.args)
    assert "Traceback" not in out + err
    if case.expect == "error":
        lines = meaningful_lines(err)
        assert rc == 2, (rc, err)
        assert len(lines) == 1 and lines[0].startswith("deepyn: error: "), err
        assert len(lines[0]) < 300, "one clear line, not a dump"
        import re

        assert re.search(case.message, lines[0], re.IGNORECASE), lines[0]
        assert not out_json.exists()
    else:
        js = json.loads(out_json.read_text(encoding="utf-8"))
        check_result_json(case, js)
        if case.partial:  # frames lost to damage: never "complete", the gap named frame by frame
            assert rc == 3, (rc, err)
            assert js["complete"] is False and js["undecodable_frames"], js["stop_reason"]
            assert "could not be decoded" in js["stop_reason"]
        else:
            assert rc == 0, (rc, err)
            assert js["complete"] is True and js["undecodable_frames"] == []
        verdict_line = out.splitlines()[0]
        # the verdict first (never a name), in the same words as the viewer and the report
        assert verdict_line.startswith(verdict_words(js["verdict"]["label"]))
        warn_lines = [ln for ln in meaningful_lines(err)]
        assert all(ln.startswith("deepyn: warning: ") for ln in warn_lines), err
        assert len(warn_lines) == len(js["warnings"]) + (0 if js["complete"] else 1)
        for w in js["warnings"]:  # every warning is in the verdict text too
            assert any(w[:40] in ln for ln in out.splitlines()), (w, out)
    assert fingerprint(case.path) == before, "the input was modified"
    assert sorted(os.listdir(folder)) == listing, "something was written next to the input"
    assert not deepyn_threads()


def _run_cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LC_ALL": "C", "LANG": "C"}
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "deepyn_gui.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=root, encoding="utf-8", errors="replace",
                          check=False)


@pytest.mark.timeout(120)
def test_fifo_is_refused_without_blocking(corpus: dict[str, Case], tiny_onnx_model: Path) -> None:
    """A named pipe would block ``open()`` until a writer appears: refused in one line, in a real process."""
    case = corpus["fifo"]
    if not case.path.exists():
        pytest.skip("no mkfifo on this platform")
    r = _run_cli("analyze", case.path, "--model", tiny_onnx_model, "-q", timeout=60)
    lines = meaningful_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "not a regular file" in lines[0] and "Traceback" not in r.stderr


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["non_ascii_name"])
def test_cases_in_a_real_process(name: str, corpus: dict[str, Case], tiny_onnx_model: Path, tmp_path: Path) -> None:
    """Under the C locale (non-UTF-8 terminal), with the real entry point and exit code."""
    case = corpus[name]
    before = fingerprint(case.path)
    out_json = tmp_path / "r.json"
    r = _run_cli("analyze", case.path, "--model", tiny_onnx_model, "-q", "--threads", "1", "--json", out_json)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    js = json.loads(out_json.read_text(encoding="utf-8"))
    check_result_json(case, js)
    assert js["source"]["path"] == str(case.path)
    assert fingerprint(case.path) == before


# ------------------------------------------------------------------------------------------------
# The file that disappears while it is analysed
# ------------------------------------------------------------------------------------------------


def _hook_first_inference(monkeypatch: pytest.MonkeyPatch, action) -> list[int]:  # type: ignore[no-untyped-def]
    """Run ``action()`` inside the first backend call, i.e. while the pipeline is mid-run."""
    from deepyn_gui.backends.onnx import OnnxBackend

    calls: list[int] = []
    original = OnnxBackend.infer

    def infer(self, crops):  # type: ignore[no-untyped-def]
        calls.append(len(crops))
        if len(calls) == 1:
            action()
        return original(self, crops)

    monkeypatch.setattr(OnnxBackend, "infer", infer)
    return calls


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["delete", "rename"])
def test_file_vanishing_mid_run_keeps_results(how: str, corpus: dict[str, Case], tiny_onnx_model: Path,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Deleted or renamed while analysed: the open file keeps decoding (POSIX), every frame is analysed,
    the evidence hash is either correct or its absence is reported; the renamed file is unchanged."""
    src = corpus["vanishes_mid_run"].path
    (tmp_path / "ev").mkdir()
    clip = tmp_path / "ev" / f"evidence_{how}.mp4"
    clip.write_bytes(src.read_bytes())
    digest, mtime, size = fingerprint(clip)  # type: ignore[misc]
    moved = tmp_path / "moved_away.mp4"
    calls = _hook_first_inference(monkeypatch, clip.unlink if how == "delete" else lambda: clip.rename(moved))
    (tmp_path / "out").mkdir()
    out_json = tmp_path / "out" / "r.json"  # not beside the evidence: that folder is refused
    rc, _out, err = run_in_process(capsys, "analyze", clip, "--model", tiny_onnx_model, "-q", "--threads", "1",
                                  "--json", out_json)
    assert calls, "the hook never ran"
    assert not clip.exists()
    assert "Traceback" not in err
    assert rc == 0, err
    js = json.loads(out_json.read_text(encoding="utf-8"))
    assert len(js["frames"]) == 10 and all(f["state"] == "ok" for f in js["frames"])
    sha = js["source"]["sha256"]
    if sha:
        assert sha == digest
    else:
        assert any("SHA-256" in w for w in js["warnings"]), js["warnings"]
    if how == "rename":
        assert fingerprint(moved) == (digest, mtime, size)
    assert not deepyn_threads()


@pytest.mark.timeout(60)
def test_file_vanishing_before_decoding_is_one_line(corpus: dict[str, Case], tiny_onnx_model: Path,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Gone between the first look and decoding: one clear line, no traceback from the hashing thread."""
    from deepyn_gui.core import pipeline

    clip = tmp_path / "gone_soon.mp4"
    clip.write_bytes(corpus["vanishes_mid_run"].path.read_bytes())
    probe = pipeline.source_info

    def probe_then_delete(path: str, sha256: str, *rest):  # type: ignore[no-untyped-def]
        info = probe(path, sha256, *rest)
        Path(path).unlink()
        return info

    monkeypatch.setattr(pipeline, "source_info", probe_then_delete)
    hook_errors: list[object] = []
    monkeypatch.setattr(threading, "excepthook", lambda a: hook_errors.append(a))
    rc, _out, err = run_in_process(capsys, "analyze", clip, "--model", tiny_onnx_model, "-q", "--threads", "1")
    lines = meaningful_lines(err)
    assert rc == 2 and len(lines) == 1 and "not found" in lines[0], err
    assert not hook_errors, "a thread died with an unhandled exception"
    assert not deepyn_threads()
