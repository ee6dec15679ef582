"""The one output guard (issue 13): unit checks, and every command's every output option walked through it.

The walk reads the real argparse tree: any option whose help says it writes something must be listed
in ``commands.common.OUTPUT_OPTIONS`` (so a new output option cannot skip the guard unnoticed), and every
listed option is then aimed at the evidence itself, a hard link and a symlink to it, a FIFO and the
evidence's folder: each must be refused with exit 2 and one line, the evidence byte-identical, nothing
left behind.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
from pathlib import Path

import pytest

from deepyn_gui.cli import build_parser
from deepyn_gui.cli import main as cli_main
from deepyn_gui.commands.common import OUTPUT_OPTIONS
from deepyn_gui.core.errors import ExportError
from deepyn_gui.core.output_guard import (
    OutputRefused,
    check_output_dir,
    check_output_file,
    refuse_special_file,
    safe_name,
)
from tests.media import astronaut_clip_frames, write_clip

# -------------------------------------------------------------------------------------------------
# The guard itself
# -------------------------------------------------------------------------------------------------


@pytest.fixture()
def evidence(tmp_path: Path) -> Path:
    (tmp_path / "ev").mkdir()
    p = tmp_path / "ev" / "exhibit.mp4"
    p.write_bytes(b"not really a video, but evidence all the same")
    (tmp_path / "out").mkdir()
    return p


def test_the_evidence_itself_by_any_name_is_refused(evidence: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    os.link(evidence, out / "hard.json")
    (out / "sym.json").symlink_to(evidence)
    for target in (evidence, out / "hard.json", out / "sym.json", out / ".." / "ev" / "exhibit.mp4"):
        with pytest.raises(OutputRefused, match="over an input"):
            check_output_file(target, inputs=[evidence], evidence=[evidence], allow_evidence_dir=True)


def test_the_evidence_folder_and_below_need_permission(evidence: Path, tmp_path: Path) -> None:
    for target in (evidence.parent / "a.json", evidence.parent / "sub" / "deeper" / "a.json"):
        with pytest.raises(OutputRefused, match="evidence's own folder"):
            check_output_file(target, evidence=[evidence])
    with pytest.raises(OutputRefused, match="evidence's own folder"):
        check_output_dir(evidence.parent / "sub", evidence=[evidence])
    assert check_output_file(evidence.parent / "a.json", evidence=[evidence], allow_evidence_dir=True)
    assert check_output_file(tmp_path / "out" / "a.json", evidence=[evidence])
    assert check_output_dir(tmp_path / "out" / "R", evidence=[evidence]) == tmp_path / "out" / "R"


def test_what_is_not_a_regular_file_is_never_replaced(evidence: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "out" / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputRefused, match="not a regular file"):
        check_output_file(fifo, evidence=[evidence])
    with pytest.raises(OutputRefused, match="is a folder"):
        check_output_file(tmp_path / "out", evidence=[evidence])
    link = tmp_path / "out" / "to_pipe.json"
    link.symlink_to(fifo)
    with pytest.raises(OutputRefused, match="not a regular file"):
        refuse_special_file(link)
    # and the low-level atomic writer refuses it too, whoever calls it
    from deepyn_gui.core.export.atomic import write_bytes_atomic

    with pytest.raises(ExportError, match="not a regular file"):
        write_bytes_atomic(fifo, b"x")
    assert fifo.exists() and not fifo.is_file()


def test_existing_files_are_kept_unless_replacing_is_documented(evidence: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.json"
    target.write_text("{}")
    with pytest.raises(OutputRefused, match="already exists"):
        check_output_file(target, evidence=[evidence], overwrite=False)
    assert check_output_file(target, evidence=[evidence]) == target
    (tmp_path / "out" / "pkg").mkdir()
    (tmp_path / "out" / "pkg" / "x").write_text("x")
    with pytest.raises(OutputRefused, match="not empty"):
        check_output_dir(tmp_path / "out" / "pkg", evidence=[evidence], must_be_empty=True)


def test_names_are_escaped_like_ls_b() -> None:
    assert safe_name("a\nb") == "a\\nb"
    assert safe_name("x\x1b[31mred") == "x\\033[31mred"
    assert safe_name("tab\there") == "tab\\there"
    assert safe_name("bidi\u202eevil") == "bidi\\u202eevil"
    assert safe_name("plain ünïcødé.mp4") == "plain ünïcødé.mp4"


# -------------------------------------------------------------------------------------------------
# Every command's every output option
# -------------------------------------------------------------------------------------------------

_WRITES = re.compile(r"\b(write|written|to write|folder to write|ONNX file to write|crop cache)\b", re.IGNORECASE)


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix} {name}".strip()
                out[full] = sub
                out.update(_subparsers(sub, full))
    return out


def test_every_output_option_is_in_the_guarded_table() -> None:
    found: dict[str, set[str]] = {}
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            takes_path = isinstance(action, argparse._StoreAction)  # not a flag
            if takes_path and action.option_strings and action.help and _WRITES.search(action.help):
                found.setdefault(name, set()).add(max(action.option_strings, key=len))
    missing = {c: sorted(opts - set(OUTPUT_OPTIONS.get(c, ()))) for c, opts in found.items()}
    assert not any(missing.values()), f"output options not in OUTPUT_OPTIONS (so maybe not guarded): {missing}"


@pytest.fixture(scope="module")
def walk_env(tmp_path_factory: pytest.TempPathFactory, tiny_onnx_model: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("guard_walk")
    ev = root / "ev"
    ev.mkdir()
    clip = write_clip(ev / "c.mp4", astronaut_clip_frames(4, 160, 120, face_px=60), fps=25)
    ckpt = ev / "good.pth"
    ckpt.write_bytes(b"PK checkpoint stand-in")
    out = root / "out"
    out.mkdir()
    os.link(clip, out / "hard.mp4")
    (out / "sym.mp4").symlink_to(clip)
    os.mkfifo(out / "fifo.out")
    return {"root": root, "ev": ev, "clip": clip, "ckpt": ckpt, "out": out, "model": tiny_onnx_model}


def _argv(command: str, option: str, target: Path, env: dict[str, Path]) -> list[str]:
    clip, m = str(env["clip"]), str(env["model"])
    base = {
        "analyze": ["analyze", clip, "--model", m, "-q"],
        "compare": ["compare", clip, "--backends", f"onnx:model={m},onnx:model={m}:label=b", "-q"],
        "evaluate": ["evaluate", "--data", clip, "--model", m, "-q"],
        "models import": ["models", "import", str(env["ckpt"])],
        "train": ["train", "--data", str(env["ev"])],
        "report": ["report", clip, "--model", m, "-q"],
        "export-frames": ["export-frames", clip, "--frames", "0", "--model", m, "-q"],
        "demo": ["demo", "--no-open", "-q"],
        "batch": ["batch", clip, "--model", m, "-q"],
    }[command]
    argv = [*base, option, str(target)]
    if command == "train" and option not in ("--out", "--make-val-set"):
        argv += ["--out", str(env["out"] / "never.onnx")]
    if command == "models import" and option != "--out":
        argv += ["--out", str(env["out"] / "never.onnx")]
    return argv


def _snapshot(root: Path) -> dict[str, str | None]:
    snap: dict[str, str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            snap[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and n in filenames else None
    return snap


WALK = [(c, o) for c, opts in OUTPUT_OPTIONS.items() for o in opts]
TARGETS = ["the_evidence", "hard_link", "symlink", "fifo", "evidence_folder"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("command", "option"), WALK)
@pytest.mark.parametrize("target", TARGETS)
def test_every_output_option_refuses_every_hostile_target(
    command: str, option: str, target: str, walk_env: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = walk_env["out"]
    evidence = walk_env["ckpt"] if command == "models import" else walk_env["clip"]
    path = {
        "the_evidence": evidence,
        "hard_link": out / "hard.mp4",
        "symlink": out / "sym.mp4",
        "fifo": out / "fifo.out",
        "evidence_folder": walk_env["ev"] / "written_here",
    }[target]
    if command == "models import" and target in ("hard_link", "symlink"):
        pytest.skip("the links point at the clip, which models import does not read")
    if command in ("models import", "demo") and target == "evidence_folder":
        pytest.skip("these read no evidence: there is no evidence folder to protect")
    before = _snapshot(walk_env["root"])
    try:
        rc = cli_main(_argv(command, option, path, walk_env))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("deepyn: error: "), err
    assert "Traceback" not in err
    assert _snapshot(walk_env["root"]) == before, "something was written, removed or changed"
