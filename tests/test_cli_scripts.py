"""The CLI in scripts and logs (issue 15): one analysis shared with report, quiet logs, right names."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.media import astronaut_clip_frames, write_clip


def run_cli(*args: object, module: str = "deepyn_gui.cli", timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("scripts")
    return Path(write_clip(d / "face.mp4", astronaut_clip_frames(10, 320, 240, face_px=90), fps=25))


def test_analyze_then_report_runs_the_model_once(face_clip, tiny_onnx_model, tmp_path, monkeypatch, capsys):
    """`deepyn analyze CLIP` then `deepyn report CLIP` share the viewer's saved analysis: one model run."""
    from deepyn_gui.cli import main
    from deepyn_gui.core import pipeline

    calls: list[str] = []
    real = pipeline.analyze

    def counting(path, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(pipeline, "analyze", counting)
    common = ["--model", str(tiny_onnx_model), "--threads", "1", "-q"]
    assert main(["analyze", str(face_clip), *common]) == 0
    assert len(calls) == 1
    assert main(["report", str(face_clip), "--out", str(tmp_path / "rep"), "--frames", "none", *common]) == 0
    assert len(calls) == 1, "report analysed the clip again instead of reusing analyze's result"
    assert (tmp_path / "rep" / "report.html").is_file()
    # a setting that changes the numbers misses; --no-cache and --reanalyse always run the model
    assert main(["analyze", str(face_clip), "--margin", "1.4", *common]) == 0
    assert len(calls) == 2
    assert main(["analyze", str(face_clip), "--no-cache", *common]) == 0
    assert main(["analyze", str(face_clip), "--reanalyse", *common]) == 0
    assert len(calls) == 4
    capsys.readouterr()


def test_no_cache_leaves_the_data_folder_alone(face_clip, tiny_onnx_model, _private_data_dir):
    r = run_cli("analyze", face_clip, "--model", tiny_onnx_model, "--threads", "1", "-q", "--no-cache")
    assert r.returncode == 0, r.stderr
    assert not _private_data_dir.exists() or not any(_private_data_dir.rglob("*.zip"))


def test_progress_outside_a_terminal_is_a_few_lines(face_clip, tiny_onnx_model):
    r = run_cli("analyze", face_clip, "--model", tiny_onnx_model, "--threads", "1")
    assert r.returncode == 0, r.stderr
    progress = [ln for ln in r.stderr.splitlines() if ln.startswith("analysing")]
    assert 1 <= len(progress) <= 3, r.stderr
    assert "\r" not in r.stderr and "frame/s" not in r.stderr  # no tqdm redraws in a log
    assert progress[-1].startswith("analysing: 10/10 frames (100%)")
    quiet = run_cli("analyze", face_clip, "--model", tiny_onnx_model, "--threads", "1", "-q", "--no-cache")
    assert not [ln for ln in quiet.stderr.splitlines() if ln.startswith("analysing")]


def test_progress_lines_are_rate_limited() -> None:
    """300 reports in quick succession (a 300-frame clip) give the first line and the last, not 300."""
    from deepyn_gui.commands.common import ProgressBar

    out = io.StringIO()
    bar = ProgressBar("analysing", stream=out, interval_s=5.0)
    for i in range(1, 301):
        bar(SimpleNamespace(done=i, total=300, fps=30.0))
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == ["analysing: 1/300 frames (0%), 30.0 fps", "analysing: 300/300 frames (100%), 30.0 fps"]
    silent = io.StringIO()
    q = ProgressBar("analysing", quiet=True, stream=silent)
    q(SimpleNamespace(done=1, total=2, fps=1.0))
    assert silent.getvalue() == ""


def test_nothing_is_printed_before_the_input_is_validated(tmp_path, tiny_onnx_model):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 20)
    r = run_cli("analyze", bad, "--model", tiny_onnx_model, "--threads", "1")  # not quiet
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("deepyn: error:"), r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("argv0, expected", [
    ("/usr/bin/deepyn-viewer", "deepyn-viewer"), ("deepyn-gui", "deepyn-gui"),
    ("/x/__main__.py", "deepyn-viewer"), ("C:\\deepyn-viewer.exe", "deepyn-viewer"),
])
def test_viewer_help_uses_the_name_it_was_started_as(argv0, expected, capsys):
    from deepyn_gui.qt.app import build_parser, prog_name

    assert prog_name(argv0.replace("\\", "/")) == expected
    with pytest.raises(SystemExit):
        build_parser(prog_name(argv0.replace("\\", "/"))).parse_args(["--help"])
    assert capsys.readouterr().out.startswith(f"usage: {expected} ")


def test_help_and_version_name_the_program():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("deepyn ")
    for sub in ("analyze", "report", "export-frames"):
        h = run_cli(sub, "--help")
        assert h.returncode == 0 and h.stdout.startswith(f"usage: deepyn {sub} "), h.stdout
        assert "--no-cache" in h.stdout
    v = run_cli("--help", module="deepyn_gui")
    assert v.returncode == 0 and v.stdout.startswith("usage: deepyn-viewer "), v.stdout


def test_a_reader_that_closes_early_gets_no_traceback(tmp_path: Path) -> None:
    """`deepyn analyze CLIP | head -0`: the reader is gone before the verdict is printed; the command
    ends with the shell's SIGPIPE status and no traceback."""
    (tmp_path / "ev").mkdir()
    clip = write_clip(tmp_path / "ev" / "c.mp4", astronaut_clip_frames(6, 160, 120, face_px=60), fps=25)
    env = {**os.environ, "DEEPYN_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "deepyn_gui.cli", "analyze", str(clip), "-q", "--no-cache",
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before anything is written
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert rc == 141, (rc, err)
