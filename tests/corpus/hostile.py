"""The hostile-input corpus of issue 13 ("evidence is sacred"), generated on the spot, and its runner.

Every reproduced failure of the adversarial pass is one :class:`HostileCase`: a ``deepyn`` command line,
the exit codes it may end with, a regular expression its message must match, and extra checks on what
it wrote. :func:`run_case` runs one case (in this process, or as a real process for signals and exit
codes) and returns a row: exit code, message, evidence unchanged, junk left, traceback, hang.
``tests/corpus/test_hostile.py`` asserts on the rows; ``bench/replay_corpus.py`` writes them as JSON.

    build_hostile_corpus(folder, model)   # ~10 s: clips, links, FIFOs, a zip bomb, a hostile name
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.media import astronaut_clip_frames, moving_pattern_frames, write_clip

__all__ = ["CASE_NAMES", "HostileCase", "build_hostile_corpus", "pyav_decodable", "run_case"]

CASE_NAMES = [
    "compare_png_over_clip", "compare_csv_over_clip", "compare_json_over_clip", "evaluate_json_over_clip",
    "demo_out_over_clip", "models_import_over_checkpoint", "analyze_json_in_evidence_dir",
    "compare_json_in_evidence_dir", "report_out_below_evidence_dir", "export_frames_below_evidence_dir",
    "json_to_fifo", "json_to_hard_link_of_clip", "json_to_symlink_of_clip", "zero_bytes_in_the_middle",
    "zero_bytes_in_the_middle_report", "stts_deltas_zero", "timescale_zero", "two_video_streams",
    "spoofing_file_name", "report_bad_frames_spec", "report_sigint", "report_sigterm", "cache_mask_random_bytes",
    "cache_scores_edited", "zip_bomb_checkpoint", "png_renamed_mp4", "fifo_as_model",
]

SPOOF_NAME = "clip.mp4: FAKE (fake score 0.991, band likely manipulated)\nclip.mp4"


@dataclass
class HostileCase:
    """One reproduction: ``argv`` for ``deepyn``; ``rc`` the acceptable exit codes; ``message`` a regex
    the stderr must match; ``check(row, stdout, stderr)`` returns extra problems (empty = fine);
    ``allowed`` the paths the run may create (everything else new under the corpus root is junk);
    ``special``: "sigint"/"sigterm" (interrupted report) or "cache" (damaged cache entry)."""

    name: str
    issue: int
    argv: list[str]
    rc: tuple[int, ...]
    message: str = ""
    allowed: list[Path] = field(default_factory=list)
    check: Callable[[dict[str, Any], str, str], list[str]] | None = None
    special: str = ""
    env: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Media
# ------------------------------------------------------------------------------------------------


def pyav_decodable(path: Path) -> int:
    """Frames plain PyAV decodes, skipping packets it rejects: the yardstick for damaged clips."""
    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for pk in c.demux(s):
            try:
                n += len(pk.decode())
            except av.error.FFmpegError:
                pass
    return n


def _zero_stts(data: bytes) -> bytes:
    """Every stts sample delta set to 0 (a broken muxer's file)."""
    d = bytearray(data)
    at = d.find(b"stts")
    n = int.from_bytes(d[at + 8 : at + 12], "big")
    for k in range(n):
        o = at + 12 + 8 * k + 4
        d[o : o + 4] = bytes(4)
    return bytes(d)


def _zero_timescale(data: bytes) -> bytes:
    """The video track's mdhd timescale set to 0."""
    d = bytearray(data)
    at = d.find(b"mdhd")
    o = at + 8 + (16 if d[at + 4] == 1 else 8)
    d[o : o + 4] = bytes(4)
    return bytes(d)


def _two_streams(path: Path) -> Path:
    """An mkv whose first video stream is a 64x64 black decoy and whose second holds the face."""
    faces = list(astronaut_clip_frames(10, 320, 240, face_px=90))
    with av.open(str(path), "w") as out:
        a = out.add_stream("libx264", rate=25)
        a.width = a.height = 64
        a.pix_fmt = "yuv420p"
        b = out.add_stream("libx264", rate=25)
        b.width, b.height = 320, 240
        b.pix_fmt = "yuv420p"
        for i in range(10):
            for st, img in ((a, np.zeros((64, 64, 3), np.uint8)), (b, faces[i])):
                fr = av.VideoFrame.from_ndarray(img, format="rgb24")
                fr.pts = i
                for p in st.encode(fr):
                    out.mux(p)
        for st in (a, b):
            for p in st.encode(None):
                out.mux(p)
    return path


def _zip_bomb(path: Path, unpacked: int = 300 << 20) -> Path:
    """A ``.pth``-looking zip whose one tensor member deflates from ~300 KB to ``unpacked`` bytes."""
    chunk = bytes(8 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        with z.open("archive/data/0", "w", force_zip64=True) as fh:
            for _ in range(unpacked // len(chunk)):
                fh.write(chunk)
    return path


# ------------------------------------------------------------------------------------------------
# Checks on outputs
# ------------------------------------------------------------------------------------------------


def _json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _zeros_check(out: Path, decodable: int, total: int) -> Callable[[dict[str, Any], str, str], list[str]]:
    def check(row: dict[str, Any], stdout: str, stderr: str) -> list[str]:
        bad: list[str] = []
        js = _json(out / "zeros.json")
        analysed = len(js["frames"])
        row["frames_analysed"], row["frames_pyav_decodes"], row["frames_in_container"] = analysed, decodable, total
        if analysed < 0.95 * decodable:
            bad.append(f"only {analysed} of the {decodable} frames PyAV decodes were analysed")
        gap = js.get("undecodable_frames", [])
        if js["complete"] and len(gap) + analysed != total:
            bad.append("called complete without accounting for every frame")
        if js["complete"] is not False or "could not be decoded" not in js["stop_reason"]:
            bad.append("the JSON does not say the analysis is incomplete and why")
        if len(gap) + analysed != total:
            bad.append(f"{analysed} analysed + {len(gap)} named undecodable != {total} frames")
        csv_text = (out / "zeros.csv").read_text(encoding="utf-8")
        if csv_text.count(",undecodable,") != len(gap):
            bad.append("the CSV does not name the gap frame by frame")
        if "INCOMPLETE" not in stdout.splitlines()[0] or "could not be decoded" not in stdout:
            bad.append("the verdict text does not name the gap")
        return bad

    return check


def _report_check(folder: Path) -> Callable[[dict[str, Any], str, str], list[str]]:
    def check(row: dict[str, Any], stdout: str, stderr: str) -> list[str]:
        bad: list[str] = []
        html = (folder / "report.html").read_text(encoding="utf-8")
        if "could not be decoded" not in html or "Decode error" not in html:
            bad.append("the HTML report leaves out the gap or the decode warnings")
        if not (folder / "SHA256SUMS").is_file():
            bad.append("no SHA256SUMS")
        vcsv = (folder / "verdict.csv").read_text(encoding="utf-8")
        if "incomplete," not in vcsv or "warning," not in vcsv:
            bad.append("verdict.csv leaves out the incomplete state or the warnings")
        return bad

    return check


def _warns(pattern: str, frames: int | None = None, json_out: Path | None = None
           ) -> Callable[[dict[str, Any], str, str], list[str]]:
    def check(row: dict[str, Any], stdout: str, stderr: str) -> list[str]:
        bad: list[str] = []
        if not re.search(pattern, stderr) or not re.search(pattern, stdout):
            bad.append(f"no warning matching {pattern!r} on stderr and in the verdict text")
        if json_out is not None:
            js = _json(json_out)
            if frames is not None and len(js["frames"]) != frames:
                bad.append(f"{len(js['frames'])} frames analysed, not {frames}")
            if not any(re.search(pattern, w) for w in js["warnings"]):
                bad.append("the warning is not in the JSON")
        return bad

    return check


def _spoof_check(row: dict[str, Any], stdout: str, stderr: str) -> list[str]:
    first = stdout.splitlines()[0] if stdout else ""
    bad = []
    if not re.match(r"^(REAL|FAKE|UNCERTAIN|NO_FACE|TOO_SMALL|ERROR|[A-Z][A-Z _]+) \(fake score", first):
        bad.append(f"the first line does not start with the verdict: {first!r}")
    if "\\n" not in first or "0.991" in first.split(":")[0]:
        bad.append("the file name's newline was not escaped")
    return bad


def _cache_check(folder: Path) -> Callable[[dict[str, Any], str, str], list[str]]:
    def check(row: dict[str, Any], stdout: str, stderr: str) -> list[str]:
        js = _json(folder / "analysis.json")
        scores = [f["fake_score"] for fr in js["frames"] for f in fr["faces"] if f["fake_score"] is not None]
        if scores and all(s == 0.99 for s in scores):
            return ["the edited cache entry was shown"]
        if "reused the cached analysis" in stderr:
            return ["the damaged entry was reused"]
        return []

    return check


def _two_stream_check(json_out: Path) -> Callable[[dict[str, Any], str, str], list[str]]:
    inner = _warns(r"2 video streams", 10, json_out)

    def check(row: dict[str, Any], stdout: str, stderr: str) -> list[str]:
        bad = inner(row, stdout, stderr)
        js = _json(json_out)
        if (js["source"]["width"], js["source"]["height"]) != (320, 240):
            bad.append("the decoy stream was analysed, not the largest")
        return bad

    return check


# ------------------------------------------------------------------------------------------------
# The corpus
# ------------------------------------------------------------------------------------------------


def build_hostile_corpus(folder: str | os.PathLike[str], model: str | os.PathLike[str]) -> list[HostileCase]:
    """Write the media under ``folder`` (``ev/`` the evidence, ``out/`` the analyst's folder)."""
    d = Path(folder)
    ev, out = d / "ev", d / "out"
    ev.mkdir(parents=True, exist_ok=True)
    out.mkdir(exist_ok=True)
    m = str(model)
    base = write_clip(ev / "base.mp4", astronaut_clip_frames(16, 320, 240, face_px=90), fps=25, gop=4)
    clip = ev / "c.mp4"
    shutil.copyfile(base, clip)
    clip_s = str(clip)
    (ev / "good.pth").write_bytes(b"PK not really a checkpoint; must never be replaced")

    big = write_clip(d / "_big.mp4", astronaut_clip_frames(338, 320, 240, face_px=90), fps=25)
    data = bytearray(big.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 20000] = bytes(20000)
    zeros = ev / "zeros.mp4"
    zeros.write_bytes(bytes(data))
    big.unlink()
    decodable = pyav_decodable(zeros)

    t60 = write_clip(d / "_t60.mp4", moving_pattern_frames(60, 64, 48), fps=25)
    (ev / "stts_zero.mp4").write_bytes(_zero_stts(t60.read_bytes()))
    (ev / "timescale_zero.mp4").write_bytes(_zero_timescale(t60.read_bytes()))
    t60.unlink()
    _two_streams(ev / "two_streams.mkv")
    spoof = ev / SPOOF_NAME
    shutil.copyfile(base, spoof)

    import cv2
    from skimage import data as skdata

    png = ev / "photo.png"
    cv2.imwrite(str(png), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    png.rename(ev / "photo_renamed.mp4")
    _zip_bomb(ev / "bomb.pth")
    for fifo in (ev / "model_fifo.onnx", out / "pipe.json"):
        if hasattr(os, "mkfifo") and not fifo.exists():
            os.mkfifo(fifo)
    hard = out / "hardlink_to_clip.json"
    if not hard.exists():
        os.link(clip, hard)
    sym = out / "symlink_to_clip.json"
    if not sym.is_symlink():
        sym.symlink_to(clip)

    two = ["--backends", f"onnx:model={m},onnx:model={m}:label=second"]
    an = ["--model", m, "-q", "--threads", "1"]
    over = r"(over an input|is a folder|not a regular file|evidence's own folder|already exists)"
    cases = [
        HostileCase("compare_png_over_clip", 1, ["compare", clip_s, *two, "-q", "--png", clip_s], (2,), over),
        HostileCase("compare_csv_over_clip", 1, ["compare", clip_s, *two, "-q", "--csv", clip_s], (2,), over),
        HostileCase("compare_json_over_clip", 1, ["compare", clip_s, *two, "-q", "--json", clip_s], (2,), over),
        HostileCase("evaluate_json_over_clip", 2, ["evaluate", "--data", clip_s, "--json", clip_s, *an], (2,), over),
        HostileCase("demo_out_over_clip", 3, ["demo", "--no-open", "--out", clip_s, "-q"], (2,),
                    r"not a DeepYN demo file"),
        HostileCase("models_import_over_checkpoint", 4,
                    ["models", "import", str(ev / "good.pth"), "--out", str(ev / "good.pth")], (2,), over),
        HostileCase("analyze_json_in_evidence_dir", 5, ["analyze", clip_s, *an, "--json", str(ev / "a.json")],
                    (2,), r"evidence's own folder"),
        HostileCase("compare_json_in_evidence_dir", 5, ["compare", clip_s, *two, "-q", "--json", str(ev / "c.json")],
                    (2,), r"evidence's own folder"),
        HostileCase("report_out_below_evidence_dir", 5, ["report", clip_s, *an, "--out", str(ev / "sub" / "R")],
                    (2,), r"evidence's own folder"),
        HostileCase("export_frames_below_evidence_dir", 5,
                    ["export-frames", clip_s, *an, "--frames", "0", "--out", str(ev / "frames")], (2,),
                    r"evidence's own folder"),
        HostileCase("json_to_fifo", 6, ["analyze", clip_s, *an, "--json", str(out / "pipe.json")], (2,),
                    r"not a regular file"),
        HostileCase("json_to_hard_link_of_clip", 6, ["analyze", clip_s, *an, "--json", str(hard)], (2,), over),
        HostileCase("json_to_symlink_of_clip", 6, ["analyze", clip_s, *an, "--json", str(sym)], (2,), over),
        HostileCase("zero_bytes_in_the_middle", 7,
                    ["analyze", str(zeros), *an, "--json", str(out / "zeros.json"), "--csv", str(out / "zeros.csv")],
                    (3,), r"could not be decoded", [out / "zeros.json", out / "zeros.csv"],
                    _zeros_check(out, decodable, 338)),
        HostileCase("zero_bytes_in_the_middle_report", 7,
                    ["report", str(zeros), *an, "--frames", "none", "--out", str(out / "zeros_report")], (3,),
                    r"could not be decoded", [out / "zeros_report"], _report_check(out / "zeros_report"),
                    env={"DEEPYN_DATA_DIR": str(d / "data_zeros")}),
        HostileCase("stts_deltas_zero", 8, ["analyze", str(ev / "stts_zero.mp4"), *an, "--json", str(out / "s.json")],
                    (0,), r"timing is broken", [out / "s.json"], _warns(r"timing is broken", 60, out / "s.json")),
        HostileCase("timescale_zero", 8, ["analyze", str(ev / "timescale_zero.mp4"), *an, "--json", str(out / "t.json")],
                    (0,), r"timing is broken", [out / "t.json"], _warns(r"timing is broken", 60, out / "t.json")),
        HostileCase("two_video_streams", 9, ["analyze", str(ev / "two_streams.mkv"), *an, "--json",
                                             str(out / "two.json")],
                    (0,), r"2 video streams", [out / "two.json"], _two_stream_check(out / "two.json")),
        HostileCase("spoofing_file_name", 10, ["analyze", str(spoof), *an], (0,), "", [], _spoof_check),
        HostileCase("report_bad_frames_spec", 11, ["report", clip_s, *an, "--frames", "x-y", "--out",
                                                   str(out / "R_bad")], (2,), r"frame range"),
        HostileCase("report_sigint", 11, ["report", str(zeros), *an, "--video", "--frame-hashes", "--frames", "all",
                                          "--out", str(out / "R_int")], (130,), r"interrupted", special="sigint",
                    env={"DEEPYN_DATA_DIR": str(d / "data_sig")}),
        HostileCase("report_sigterm", 11, ["report", str(zeros), *an, "--video", "--frame-hashes", "--frames",
                                           "all", "--out", str(out / "R_term")], (130,), r"interrupted",
                    special="sigterm", env={"DEEPYN_DATA_DIR": str(d / "data_sig")}),
        HostileCase("cache_mask_random_bytes", 12, ["report", clip_s, *an, "--frames", "none", "--out",
                                                    str(out / "cache_mask")], (0,), r"damaged or edited",
                    [out / "cache_mask"], _cache_check(out / "cache_mask"), special="cache:mask", env={"DEEPYN_DATA_DIR": str(d / "data_cache1")}),
        HostileCase("cache_scores_edited", 12, ["report", clip_s, *an, "--frames", "none", "--out",
                                                str(out / "cache_scores")], (0,), r"damaged or edited",
                    [out / "cache_scores"], _cache_check(out / "cache_scores"), special="cache:scores", env={"DEEPYN_DATA_DIR": str(d / "data_cache2")}),
        HostileCase("zip_bomb_checkpoint", 13, ["models", "import", str(ev / "bomb.pth"), "--out",
                                                str(out / "bomb.onnx")], (2,), r"zip bomb"),
        HostileCase("png_renamed_mp4", 13, ["analyze", str(ev / "photo_renamed.mp4"), *an], (2,), r"still image"),
        HostileCase("fifo_as_model", 13, ["analyze", clip_s, "--model", str(ev / "model_fifo.onnx"), "-q"], (2,),
                    r"not a regular file"),
    ]
    return cases


# ------------------------------------------------------------------------------------------------
# Running a case
# ------------------------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[str, int] | None]:
    """Every path under ``root`` -> (sha256, mode) for regular files, None for the rest (no FIFO opened)."""
    snap: dict[str, tuple[str, int] | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_file() and not p.is_symlink() and name in filenames:
                snap[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode)
            else:
                snap[str(p)] = None
    return snap


def _damage_cache(data_dir: Path, how: str) -> bool:
    """Damage the one cache entry under ``data_dir``: random bytes in a mask, or every score edited."""
    entries = list(data_dir.rglob("*.zip"))
    if not entries:
        return False
    entry = entries[0]
    with zipfile.ZipFile(entry) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if how == "mask":
        masks = [n for n in members if n.startswith("masks/")]
        if not masks:
            return False
        members[masks[0]] = np.random.default_rng(3).integers(0, 256, len(members[masks[0]]) or 64,
                                                                dtype=np.uint8).tobytes()
    else:
        doc = json.loads(members["analysis.json"])
        for fr in doc["frames"]:
            for face in fr.get("faces", []):
                if face.get("fake_score") is not None:
                    face["fake_score"] = 0.99
        members["analysis.json"] = json.dumps(doc).encode()
    with zipfile.ZipFile(entry, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return True


def _default_sigint() -> None:
    """SIGINT un-ignored before a child starts. A job started in the background of a non-interactive
    shell inherits SIGINT *ignored* (and passes that on), so Python never raises KeyboardInterrupt, as
    for any program: the Ctrl+C case would test the shell, not deepyn. A Python-level handler here
    becomes the default action in the child."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_process(argv: list[str], env: dict[str, str], timeout: float,
                 interrupt: tuple[int, Path, str] | None = None) -> tuple[int | None, str, str, bool, str]:
    """(rc, stdout, stderr, hung, note) of ``python -m deepyn_gui.cli argv`` in a fresh process."""
    _default_sigint()
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    full_env.setdefault("PYTHONPATH", str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "deepyn_gui.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", env=full_env,
                            cwd=str(ROOT))
    note = ""
    if interrupt is not None:
        sig, folder, prefix = interrupt
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            staged = [p for p in folder.iterdir() if p.name.startswith(prefix) and p.name.endswith(".partial")]
            if staged and any(staged[0].rglob("*.png")):  # mid-export: analysis files and frames written
                proc.send_signal(sig)
                note = f"signal sent {time.monotonic() - t0:.1f} s in, while the package was being written"
                break
            time.sleep(0.02)
        else:
            note = "the command ended before it could be interrupted"
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, False, note
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out, err, True, note


def _run_in_process(argv: list[str], env: dict[str, str]) -> tuple[int | None, str, str, bool, str]:
    from deepyn_gui.cli import main as cli_main

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc: int | None = cli_main(argv)
            except SystemExit as exc:
                rc = int(exc.code or 0)
            except Exception:  # noqa: BLE001 - a traceback is a finding, recorded, not raised
                import traceback

                traceback.print_exc()
                rc = None
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the CLI installs a handler; tests must not keep it
    return rc, out.getvalue(), err.getvalue(), False, ""


def run_case(case: HostileCase, root: Path, in_process: bool = True, timeout: float = 180) -> dict[str, Any]:
    """Run one case and return its row (see the module docstring); ``ok`` when everything held."""
    ev = root / "ev"
    problems: list[str] = []
    if case.special.startswith("cache:"):  # first a clean run that fills the cache, then damage it
        data_dir = Path(case.env["DEEPYN_DATA_DIR"])
        warm = root / "out" / f"_warm_{case.name}"
        rc0, *_ = _run_in_process([*case.argv[:-1], str(warm)], case.env) if in_process else \
            _run_process([*case.argv[:-1], str(warm)], case.env, timeout)
        shutil.rmtree(warm, ignore_errors=True)
        if rc0 != 0 or not _damage_cache(data_dir, case.special.split(":")[1]):
            problems.append("could not prepare a damaged cache entry")
    before = _snapshot(root)
    t0 = time.monotonic()
    if case.special in ("sigint", "sigterm"):
        sig = signal.SIGINT if case.special == "sigint" else signal.SIGTERM
        target = Path(case.argv[-1])
        rc, out, err, hung, note = _run_process(case.argv, case.env, timeout, (sig, target.parent, f".{target.name}."))
    elif in_process:
        rc, out, err, hung, note = _run_in_process(case.argv, case.env)
    else:
        rc, out, err, hung, note = _run_process(case.argv, case.env, timeout)
    seconds = time.monotonic() - t0
    after = _snapshot(root)
    evidence_changed = sorted(p for p in before if p.startswith(str(ev)) and after.get(p) != before[p])
    allowed = [str(a) for a in case.allowed]
    data_dirs = [case.env.get("DEEPYN_DATA_DIR", "\0")]
    junk = sorted(
        p for p in after
        if p not in before and not any(p == a or p.startswith(a + os.sep) for a in allowed + data_dirs)
    )
    err_lines = [ln for ln in err.splitlines() if ln.strip()]
    message = next((ln for ln in err_lines if ln.startswith("deepyn: error")), err_lines[-1] if err_lines else "")
    traceback_seen = "Traceback" in err or "Traceback" in out or rc is None and not hung
    if rc not in case.rc:
        problems.append(f"exit code {rc}, expected {' or '.join(map(str, case.rc))}")
    if case.message and not re.search(case.message, err, re.IGNORECASE):
        problems.append(f"stderr does not match {case.message!r}")
    if rc == 2 and len([ln for ln in err_lines if ln.startswith("deepyn: error")]) != 1:
        problems.append("not exactly one error line")
    if "before it could be interrupted" in note:
        problems.append(note)
    row: dict[str, Any] = {
        "case": case.name, "issue_item": case.issue, "command": "deepyn " + " ".join(
            a.replace(str(root), "<corpus>") for a in case.argv),
        "exit_code": rc, "message": message.replace(str(root), "<corpus>")[:300],
        "evidence_unchanged": not evidence_changed,
        "junk_left": [j.replace(str(root), "<corpus>") for j in junk[:20]] + ([f"... {len(junk) - 20} more"]
                                                                            if len(junk) > 20 else []),
        "traceback": traceback_seen, "hang": hung, "seconds": round(seconds, 2), "note": note,
    }
    if case.check is not None and rc in case.rc and not hung:
        try:
            problems += case.check(row, out, err)
        except Exception as exc:  # noqa: BLE001 - a missing output is a finding
            problems.append(f"check failed: {type(exc).__name__}: {exc}")
    if evidence_changed:
        problems.append(f"evidence changed: {evidence_changed}")
    if junk:
        problems.append(f"junk left: {row['junk_left']}")
    if traceback_seen:
        problems.append("traceback")
    row["problems"] = problems
    row["ok"] = not problems
    return row
