"""``deepyn demo``: write the project's own demo clip, then open it in the viewer and analyse it.

Without a display (or with ``--headless``) the clip is analysed exactly as ``deepyn analyze`` would
(the same command code runs) and the verdict is printed, followed by a comparison with the known
ground truth of the clip (which frames were manipulated). Never imports Qt unless it opens the viewer.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import add_analysis_options, add_backend_options


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo", help="write the demo clip, open it in the viewer and analyse it (or print the verdict)",
        description="Write DeepYN Viewer's own demo clip (a public-domain NASA portrait filmed by a moving "
                    "virtual camera; from 3 s to 6 s the face is self-blended, ground-truth masks saved beside "
                    "it), then open it in the viewer and start the analysis. Without a display, or with "
                    "--headless, analyse it in the terminal like `deepyn analyze` and compare with the truth.",
    )
    p.add_argument("--out", default=None,
                   help="clip path (.mp4) or folder to write into (default: the user data folder, "
                        "$DEEPYN_DATA_DIR/demo if set)")
    p.add_argument("--force", action="store_true", help="rewrite the clip even if a current one exists")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-open", action="store_true", help="only write the clip; print where it is")
    mode.add_argument("--headless", action="store_true",
                      help="analyse in the terminal even when a display is available")
    add_backend_options(p)
    add_analysis_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def resolve_out(out: str | None) -> Path:
    """``--out`` as the clip path: a folder (existing, or written with a trailing slash, or without a
    video suffix) gets ``deepyn-demo.mp4`` inside it."""
    from ..core.demo import CLIP_NAME, default_demo_path

    if out is None:
        return default_demo_path()
    p = Path(out).expanduser()
    if p.is_dir() or out.endswith(("/", os.sep)) or p.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        return p / CLIP_NAME
    return p


def display_available() -> bool:
    """True when a window can be shown: Windows/macOS, or an X11/Wayland display (not Qt offscreen)."""
    if os.environ.get("QT_QPA_PLATFORM", "").lower() in ("offscreen", "minimal", "vnc"):
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def gui_importable() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("PySide6", "pyqtgraph"))


def ensure_demo(out: str | None, force: bool = False, quiet: bool = False) -> Any:
    """Write the demo (unless a current one is there) and say where it is."""
    from ..core.demo import write_demo

    path = resolve_out(out)
    from types import SimpleNamespace

    from .common import ProgressBar

    # prints nothing until the first frame, so reusing an existing clip says nothing; a log gets a line
    # every few seconds instead of a bar redrawn per frame
    bar = ProgressBar("writing demo clip", quiet=quiet)

    def progress(done: int, total: int) -> None:
        bar(SimpleNamespace(done=done, total=total, fps=None))

    try:
        demo = write_demo(path, force=force, on_progress=progress)
    finally:
        bar.close()
    span = demo.info.get("manipulated_span", {})
    what = "wrote" if demo.created else "using existing"
    print(f"deepyn demo: {what} {demo.clip}")
    print(f"  {demo.info.get('frames')} frames at {demo.info.get('fps')} fps; face self-blended on frames "
          f"{span.get('start_frame')}–{span.get('stop_frame', 1) - 1} ({span.get('start_s'):.1f}–"
          f"{span.get('stop_s'):.1f} s); ground truth in {demo.manifest.name} + {demo.masks.name}")
    return demo


def compare_with_truth(result: Any, manipulated: set[int]) -> dict[str, Any]:
    """How the per-frame scores line up with the frames known to be manipulated."""
    thr = float(result.model.threshold)
    inside: list[float] = []
    outside: list[float] = []
    no_score = 0
    for fr in result.frames:
        s = fr.max_score
        if s is None:
            no_score += 1
            continue
        (inside if fr.index in manipulated else outside).append(float(s))

    def stats(v: list[float]) -> dict[str, Any]:
        if not v:
            return {"frames": 0, "mean": None, "flagged": 0}
        return {"frames": len(v), "mean": sum(v) / len(v), "flagged": sum(1 for s in v if s >= thr)}

    return {"threshold": thr, "manipulated": stats(inside), "clean": stats(outside), "no_score": no_score}


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def run_headless(args: argparse.Namespace, demo: Any) -> int:
    """``deepyn analyze`` on the demo clip (same code), then the scores against the ground truth."""
    from ..core.results import AnalysisResult
    from . import analyze

    with tempfile.TemporaryDirectory(prefix="deepyn-demo-") as tmp:
        ns = argparse.Namespace(**vars(args))
        ns.clip = str(demo.clip)
        ns.json_out = str(Path(tmp) / "analysis.json")
        ns.csv_out = None
        rc = analyze.run(ns)
        data = json.loads(Path(ns.json_out).read_text(encoding="utf-8"))
    result = AnalysisResult.from_json(data)
    c = compare_with_truth(result, set(demo.manipulated_frames))
    m, k = c["manipulated"], c["clean"]
    print(f"ground truth: frames {min(demo.manipulated_frames)}–{max(demo.manipulated_frames)} are manipulated")
    print(f"  manipulated frames: mean fake score {_fmt(m['mean'])}, {m['flagged']}/{m['frames']} at or above "
          f"the threshold {c['threshold']:.3f}")
    print(f"  clean frames:       mean fake score {_fmt(k['mean'])}, {k['flagged']}/{k['frames']} at or above "
          f"the threshold")
    if not result.model.trained:
        print("  (the model is UNTRAINED: these numbers mean nothing)")
    return rc


def guard_demo_out(out: str | None, force: bool, inputs: list[str | None]) -> None:
    """The demo clip and its two companions: never over an input; an existing file that is not one of
    our demo files is replaced only with --force (``demo --out c.mp4`` once overwrote a real video)."""
    from ..core.demo import companion_paths
    from ..core.output_guard import OutputRefused, check_output_file, safe_name

    clip = resolve_out(out)
    manifest, masks = companion_paths(clip)
    ours = False
    try:
        ours = "demo_version" in json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        ours = False
    for p in (clip, manifest, masks):
        if not p.parent.exists():
            continue  # the folder is created by write_demo; nothing in it to protect
        check_output_file(p, inputs=inputs)
        if os.path.lexists(p) and not ours and not force:
            raise OutputRefused(
                f"{safe_name(p)} already exists and is not a DeepYN demo file; it is not replaced "
                "(choose another --out, or --force to replace it)."
            )


def run(args: argparse.Namespace) -> int:
    guard_demo_out(args.out, args.force, [args.model, getattr(args, "detector_model", None)])
    folder = resolve_out(args.out).parent
    missing = [d for d in (folder, *folder.parents) if not d.exists()]
    try:
        demo = ensure_demo(args.out, force=args.force, quiet=args.quiet)
    except BaseException:
        for d in missing:  # deepest first: a failed write leaves no empty folder it made
            try:
                d.rmdir()
            except OSError:
                break
        raise
    if args.no_open:
        return 0
    if not args.headless and display_available() and gui_importable():
        from ..qt.app import main as gui_main

        argv = [str(demo.clip), "--analyze"]
        if args.backend and args.backend != "onnx":  # the default: leave the viewer's own choice alone
            argv += ["--backend", args.backend]
        if args.model:
            argv += ["--model", args.model]
        print("deepyn demo: opening the viewer (the analysis starts on its own)")
        return int(gui_main(argv))
    if not args.headless:
        why = "no display" if not display_available() else "PySide6/pyqtgraph not installed (pip install -e '.[gui]')"
        print(f"deepyn demo: {why}; analysing in the terminal instead")
    return run_headless(args, demo)
