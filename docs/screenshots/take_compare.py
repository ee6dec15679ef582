"""Take ``compare.png``: the comparison window on the project's own demo clip (a real X11 window).

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        python docs/screenshots/take_compare.py [--clip DEMO.mp4] [--backends onnx,onnx-int8] [--max-frames 150]

Without ``--clip`` the demo clip is written (``deepyn demo --no-open``) into a temporary folder, so the
screenshot shows only footage the project owns. The window runs the two backends to the end (or
``--max-frames``) and is grabbed as the X server shows it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from take import pump, save, settle  # the sibling screenshot helpers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=None, help="clip (default: the demo clip, written to a temp folder)")
    ap.add_argument("--backends", default="onnx,onnx-int8", help="two registry backends, comma-separated")
    ap.add_argument("--max-frames", type=int, default=150)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "compare.png"))
    ap.add_argument("--size", default="1500x950")
    ap.add_argument("--max-kb", type=int, default=290)
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from deepyn_gui.qt.compare_view import BackendChoice, CompareWindow

    tmp = tempfile.TemporaryDirectory(prefix="deepyn-shot-")
    clip = args.clip
    if clip is None:
        from deepyn_gui.core.demo import write_demo

        clip = str(write_demo(Path(tmp.name) / "deepyn-demo.mp4").clip)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    a, b = (n.strip() for n in args.backends.split(","))
    win = CompareWindow(clip_path=clip)
    win.set_choices(BackendChoice(a, threads=2), BackendChoice(b, threads=2))
    win.max_frames.setValue(args.max_frames)
    w, h = (int(v) for v in args.size.split("x"))
    win.resize(w, h)
    win.show()
    settle(app, 0.5)
    done: list[object] = []
    win.finished.connect(lambda r: done.append(r))
    if not win.start():
        raise SystemExit("the comparison did not start")
    t0 = time.perf_counter()
    if not pump(app, lambda: bool(done), 1800):
        raise SystemExit("the comparison did not finish in 30 min")
    print(f"comparison finished in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    settle(app, 1.0)
    save(win, Path(args.out), args.max_kb)
    win.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
