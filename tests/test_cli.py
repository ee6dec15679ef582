"""The deepyn CLI as a user runs it: exit codes, one-line errors, JSON contents, input untouched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import astronaut_clip_frames, moving_pattern_frames, truncate_copy, write_clip


def run_cli(*args, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "deepyn_gui.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


def digest(p: Path):
    st = p.stat()
    return hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    face = write_clip(d / "face.mp4", astronaut_clip_frames(12, 320, 240, face_px=90), fps=25)
    noface = write_clip(d / "noface.mp4", moving_pattern_frames(8, 64, 48), fps=25)
    zero = d / "zero.mp4"
    zero.write_bytes(b"")
    text = d / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    trunc = truncate_copy(face, d / "trunc.mp4", 0.5)
    return {"face": Path(face), "noface": Path(noface), "zero": zero, "text": text, "trunc": Path(trunc)}


def test_analyze_writes_the_documented_json(clips, tiny_onnx_model, tmp_path):
    before = digest(clips["face"])
    out = tmp_path / "a.json"
    csv_out = tmp_path / "a.csv"
    r = run_cli("analyze", clips["face"], "--model", tiny_onnx_model, "--json", out, "--csv", csv_out, "-q",
                "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "UNTRAINED" in r.stderr
    d = json.loads(out.read_text())
    assert d["schema"] == "deepyn.analysis/1"
    assert d["source"]["sha256"] == before[0]
    assert {k for k in ("path", "sha256", "frames", "fps", "width", "height")} <= d["source"].keys()
    assert d["model"]["name"] == "uynet-w4-test" and len(d["model"]["sha256"]) == 64
    assert d["backend"]["name"] == "onnx"
    assert len(d["frames"]) == 12
    f0 = d["frames"][0]
    assert f0["state"] == "ok" and {"index", "pts_s", "faces"} <= f0.keys()
    face = f0["faces"][0]
    assert {"track", "box", "fake_score"} <= face.keys() and len(face["box"]) == 4
    assert d["verdict"]["label"] in ("fake", "real", "uncertain")
    for key in ("fake_score", "label", "aggregator", "band", "explanation"):
        assert key in d["verdict"]
    # the test clip's face is small: the export carries the same caution as the terminal, and reads back
    assert len(d["cautions"]) == 1 and d["cautions"][0].startswith("The faces in this clip are small")
    from deepyn_gui.core.results import AnalysisResult
    from deepyn_gui.core.verdict import clip_cautions

    assert clip_cautions(AnalysisResult.from_json(d)) == d["cautions"]
    assert csv_out.read_text().splitlines()[0].startswith("frame,pts_s,frame_state,track")
    assert digest(clips["face"]) == before  # evidence unchanged


def test_no_face_clip(clips, tiny_onnx_model, tmp_path):
    out = tmp_path / "n.json"
    r = run_cli("analyze", clips["noface"], "--model", tiny_onnx_model, "--json", out, "-q")
    assert r.returncode == 0, r.stderr
    assert "NO FACE FOUND" in r.stdout  # the one vocabulary (core.verdict.VERDICT_WORDS)
    d = json.loads(out.read_text())
    assert d["verdict"]["label"] == "no_face" and d["verdict"]["fake_score"] is None
    assert d["cautions"] == []  # no score, no caution about it


@pytest.mark.parametrize("name", ["zero", "text", "trunc", "missing", "dir"])
def test_bad_inputs_give_one_clear_line(clips, tiny_onnx_model, name, tmp_path):
    path = {"missing": tmp_path / "nope.mp4", "dir": tmp_path}.get(name) or clips[name]
    before = digest(path) if Path(path).is_file() else None
    r = run_cli("analyze", path, "--model", tiny_onnx_model, "-q")
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("deepyn: error:"), r.stderr
    assert "Traceback" not in r.stderr
    if before:
        assert digest(path) == before


@pytest.mark.parametrize("where", ["evidence", "missing_folder", "folder"])
def test_output_targets_are_checked_before_the_run(clips, tiny_onnx_model, tmp_path, where):
    """A bad --json/--csv target is refused at once (not after a long run), and never the evidence."""
    import shutil

    clip = tmp_path / "exhibit.mp4"
    shutil.copyfile(clips["face"], clip)
    before = digest(clip)
    target = {"evidence": clip, "missing_folder": tmp_path / "no" / "such" / "a.json", "folder": tmp_path}[where]
    r = run_cli("analyze", clip, "--model", tiny_onnx_model, "--json", target, "-q")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("deepyn: error:"), r.stderr
    assert "analysing" not in r.stderr and "UNTRAINED" not in r.stderr  # refused before any work
    assert digest(clip) == before


def test_missing_model_is_clear(clips, tmp_path):
    r = run_cli("analyze", clips["face"], "--model", tmp_path / "none.onnx", "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "deepyn: error:" in r.stderr


def test_backends_lists_reasons():
    r = run_cli("backends")
    assert r.returncode == 0
    assert "onnx" in r.stdout and "vart" in r.stdout
    assert "unavailable (xir/vart not importable" in r.stdout


def test_torch_free_install_gets_one_line_for_torch_commands(monkeypatch, capsys):
    import builtins

    from deepyn_gui import cli

    real_import = builtins.__import__

    def no_torch(name, *a, **k):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    for mod in [m for m in list(__import__("sys").modules) if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(__import__("sys").modules, mod)
    for mod in [m for m in list(__import__("sys").modules) if m.startswith("deepyn_gui.core.model.")]:
        monkeypatch.delitem(__import__("sys").modules, mod)
    rc = cli.main(["models", "import", "x.pth", "--out", "y.onnx"])
    err = capsys.readouterr().err
    assert rc == 2 and "needs PyTorch" in err


def test_analyze_prints_the_model_cards_first_limits_beside_a_verdict(clips, tiny_onnx_model, tmp_path):
    """A reader of the terminal summary learns what the model misses, from the card beside the model
    file; a clip without faces has no score, so no limits line."""
    model = tmp_path / "mine.onnx"
    model.write_bytes(Path(tiny_onnx_model).read_bytes())
    (tmp_path / "mine.md").write_text("# mine\n\n## Known limits\n\n- **Misses generated heads.** Details.\n"
                                      "- Flags webcams: often.\n- Third.\n", encoding="utf-8")
    r = run_cli("analyze", clips["face"], "--model", model, "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "Known limits of this model (its card): Misses generated heads. Flags webcams: often." in r.stdout
    assert "Third" not in r.stdout and "Details" not in r.stdout
    # the test clip's face is small (its crop covers well under the model's 224 px): the clip's own caution
    assert "Caution for this clip: The faces in this clip are small" in r.stdout
    r = run_cli("analyze", clips["noface"], "--model", model, "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "NO FACE FOUND" in r.stdout and "Known limits" not in r.stdout and "Caution" not in r.stdout


def test_models_info_names_the_threshold_and_the_span_level():
    """`deepyn models info` shows the two numbers the verdict rests on, so an analyst can check a report."""
    from deepyn_gui.backends import default_model_path
    from deepyn_gui.core.model.metadata import read_model_info
    from deepyn_gui.core.verdict import span_level

    info = read_model_info(default_model_path())
    r = run_cli("models", "info")
    assert r.returncode == 0, r.stderr
    assert f"threshold  {info.threshold:.3f}" in r.stdout
    assert f"span level {span_level(info):.3f} (" in r.stdout
