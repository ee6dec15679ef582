"""Nothing leaves the machine and nothing identifying is left behind (issue 15).

The main commands run in a subprocess with a fresh, empty HOME, a private temp folder and an empty
working folder. Afterwards files may exist only in the app's data folder (saved analyses), the output
folder and the temp folder; in particular ONNX Runtime must not have written its device identifier
under ``~/.cache/Microsoft/DeveloperTools``. A Python audit hook records every socket created,
connected, bound or name-resolved; there must be none. (The hook sees Python-level sockets; native
code's own network calls are covered by ORT_DISABLE_TELEMETRY, whose effect the HOME check shows.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import astronaut_clip_frames, write_clip

RUNNER = r"""
import json, sys
events = []
WATCH = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
         "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg", "urllib.Request", "http.client.connect"}
def hook(event, args):
    if event in WATCH:
        events.append([event, repr(args)[:200]])
sys.addaudithook(hook)
from deepyn_gui.cli import main
try:
    rc = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as fh:
        json.dump(events, fh)
sys.exit(rc)
"""


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()} if root.exists() else set()


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, Path]:
    d = {k: tmp_path / k for k in ("home", "tmp", "cwd", "out", "evidence")}
    for p in d.values():
        p.mkdir()
    return d


def _run(fresh: dict[str, Path], *argv: str) -> subprocess.CompletedProcess[str]:
    events = fresh["tmp"].parent / f"events-{len(list(fresh['tmp'].parent.glob('events-*')))}.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(fresh["home"]),
        "TMPDIR": str(fresh["tmp"]),
        "OMP_NUM_THREADS": "1",
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[1]),
                                                  os.environ.get("PYTHONPATH", "")] if p),
    }
    r = subprocess.run([sys.executable, "-c", RUNNER, str(events), *argv], cwd=fresh["cwd"], env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    seen = json.loads(events.read_text()) if events.exists() else ["the runner did not finish"]
    assert seen == [], f"network activity: {seen}"
    return r


def test_main_commands_write_only_data_output_and_temp(fresh, tiny_onnx_model):
    clip = Path(write_clip(fresh["evidence"] / "face.mp4", astronaut_clip_frames(8, 320, 240, face_px=90), fps=25))
    model = fresh["evidence"] / "model.onnx"
    model.write_bytes(Path(tiny_onnx_model).read_bytes())
    evidence_before = _files(fresh["evidence"])
    common = ["--model", str(model), "--threads", "1", "-q"]

    r = _run(fresh, "analyze", str(clip), *common, "--json", str(fresh["out"] / "a.json"))
    assert r.returncode == 0, r.stderr
    report = ["report", str(clip), "--out", str(fresh["out"] / "rep"), *common]
    try:
        import PySide6  # noqa: F401

        report.append("--pdf")
    except ImportError:
        pass
    r = _run(fresh, *report)
    assert r.returncode == 0, r.stderr
    r = _run(fresh, "export-frames", str(clip), "--frames", "0,3", "--out", str(fresh["out"] / "fr"), *common)
    assert r.returncode == 0, r.stderr

    assert (fresh["out"] / "rep" / "report.html").is_file()
    data_dir = fresh["home"] / ".local" / "share" / "deepyn-viewer"
    home_files = _files(fresh["home"])
    assert home_files, "the saved analysis should be in the data folder under HOME"
    outside = sorted(str(p.relative_to(fresh["home"])) for p in home_files if data_dir not in p.parents)
    assert outside == [], f"written outside the data folder: {outside}"
    assert not (fresh["home"] / ".cache" / "Microsoft").exists()  # ONNX Runtime's device id
    assert _files(fresh["cwd"]) == set()
    assert _files(fresh["evidence"]) == evidence_before


def test_onnxruntime_telemetry_is_switched_off_before_it_loads():
    """The switch only works if set before onnxruntime is imported; importing deepyn_gui sets it."""
    code = ("import os; assert 'ORT_DISABLE_TELEMETRY' not in os.environ; import deepyn_gui, sys; "
            "assert 'onnxruntime' not in sys.modules; print(os.environ['ORT_DISABLE_TELEMETRY'])")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
