"""The benchmarks that read ../shared/data skip cleanly (exit 0, a line on stderr, no JSON) on a clone
without it, as CI's second run (no ../shared beside the clone) needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,extra", [
    ("face_size_causes", []), ("accuracy_face_size", []), ("accuracy_real_video", []), ("span_level", ["model.onnx"]),
    ("real_video_memorisation", ["model.onnx"]), ("calibration_stability", ["model.onnx"]),
    ("background_cue", ["model.onnx"]), ("source_probe", ["imagenet"]),
])
def test_data_benchmarks_skip_without_the_shared_data(tmp_path: Path, script: str, extra: list[str]) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / f"{script}.py"), *extra, "--data", str(tmp_path / "none")],
                          check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"{script}: skipped, missing" in done.stderr
