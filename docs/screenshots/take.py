"""Take the README screenshots of DeepYN Viewer in a real window (X11, e.g. under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        python docs/screenshots/take.py [--clip CLIP] [--model MODEL.onnx] [--out docs/screenshots]

Writes ``viewer_empty.png`` (the window before a clip is opened), ``viewer_mid_analysis.png`` (a clip
while the analysis streams in) and ``viewer_flagged_overlay.png`` (the most suspicious analysed frame with
the mask overlay and face boxes). Without ``--clip`` a clip of the public-domain astronaut portrait is
generated in a temporary folder; the clip is never copied next to the screenshots. Each PNG is
re-encoded with a 256-colour palette if needed to stay under ``--max-kb``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def pump(app: Any, until: Any, timeout: float) -> bool:
    from PySide6.QtCore import QEventLoop, QTimer

    heartbeat = QTimer()
    heartbeat.start(10)
    t0 = time.perf_counter()
    try:
        while not until():
            if time.perf_counter() - t0 > timeout:
                return False
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        return True
    finally:
        heartbeat.stop()


def settle(app: Any, seconds: float = 0.4) -> None:
    end = time.perf_counter() + seconds
    pump(app, lambda: time.perf_counter() >= end, seconds + 1)


def save(win: Any, path: Path, max_kb: int) -> None:
    """Grab the window as the X server shows it; shrink to a palette PNG if it is too large."""
    from PySide6.QtGui import QImage

    pix = win.screen().grabWindow(win.winId())
    if pix.isNull():
        pix = win.grab()
    pix.save(str(path), "PNG")
    if path.stat().st_size > max_kb * 1024:
        from PIL import Image

        img = Image.open(path).convert("RGB")
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            path, optimize=True)
    size_kb = path.stat().st_size / 1024
    print(f"{path}: {pix.width()}x{pix.height()}, {size_kb:.0f} KB", file=sys.stderr)
    assert QImage(str(path)).width() > 0


def make_clip(folder: Path) -> Path:
    from tests.media import astronaut_clip_frames, write_clip

    return write_clip(folder / "astronaut.mp4", astronaut_clip_frames(180, 640, 360, face_px=110,
                                                                        pan_px_per_frame=1.5), fps=25)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=None, help="clip to show (default: a generated astronaut clip)")
    ap.add_argument("--model", default=None, help="model file (default: the bundled model)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--size", default="1440x900", help="window size")
    ap.add_argument("--max-frames", type=int, default=None, help="analyse at most this many frames")
    ap.add_argument("--mask-threshold", type=float, default=None, help="overlay mask threshold for the last shot")
    ap.add_argument("--frame", type=int, default=None,
                    help="frame for the overlay shot (default: the highest-scoring analysed frame)")
    ap.add_argument("--max-kb", type=int, default=290)
    ap.add_argument("--shots", default="empty,mid,flagged", help="which shots: empty, mid, flagged")
    ap.add_argument("--tiny-model", action="store_true",
                    help="use a freshly exported width-4 UNTRAINED test model (needs torch)")
    args = ap.parse_args()
    shots = set(args.shots.split(","))
    if os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        print("warning: QT_QPA_PLATFORM is not xcb; these will not be real-window screenshots", file=sys.stderr)

    from dataclasses import replace

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from deepyn_gui.qt.main_window import MainWindow
    from deepyn_gui.qt.overlay import OverlayOptions
    from deepyn_gui.qt.settings import Preferences

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(args.clip) if args.clip else make_clip(Path(tmp))
        if args.tiny_model:
            from deepyn_gui.core.model.export import export_untrained

            args.model = str(export_untrained(4, Path(tmp) / "uynet_w4_untrained.onnx", seed=0,
                                              name="uynet-w4-untrained-test", threads=1))
        prefs = Preferences(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        win = MainWindow(prefs=prefs)
        w, h = (int(v) for v in args.size.lower().split("x"))
        win.resize(w, h)
        win.move(0, 0)
        win.show()
        win.set_backend(args.backend)
        win.set_model_path(args.model)
        if args.max_frames:
            win.session.settings = replace(win.session.settings, max_frames=args.max_frames)
        settle(app, 0.8)
        if "empty" in shots:
            save(win, out / "viewer_empty.png", args.max_kb)

        win.open_file(clip)
        if not pump(app, lambda: win.session.shown is not None, 60):
            raise SystemExit(f"could not open {clip}")
        s = win.session
        s.start_analysis()
        total = s.frame_count if not args.max_frames else min(args.max_frames, s.frame_count)
        pump(app, lambda: len(s.results) >= max(2, int(total * 0.45)) or not s.analysis_running, 600)
        if s.analysis_running and "mid" in shots:
            s.seek(max(s.results) if s.results else 0)
            pump(app, lambda: s.shown is not None and s.shown.result is not None, 10)
            settle(app, 0.5)
            save(win, out / "viewer_mid_analysis.png", args.max_kb)
        elif "mid" in shots:
            print("warning: the analysis ended before the mid-analysis shot", file=sys.stderr)
        pump(app, lambda: not s.analysis_running, 900)

        scored = [(fr.max_score, fr.index) for fr in s.results.values() if fr.max_score is not None]
        if scored and "flagged" in shots:
            score, index = max(scored)
            if args.frame is not None and args.frame in s.results:
                index = args.frame
                score = s.results[index].max_score or 0.0
            thr = s.model_info.threshold if s.model_info else 0.5
            if score < thr:
                print(f"warning: no frame is flagged (highest score {score:.3f} < threshold {thr})", file=sys.stderr)
            s.seek(index)
            pump(app, lambda: s.shown is not None and s.shown.index == index, 10)
            o = win.overlay_controls.options()
            if args.mask_threshold is not None:
                o = OverlayOptions(**{**o.__dict__, "threshold": args.mask_threshold})
            win.overlay_controls.set_options(replace(o, show_mask=True, show_boxes=True))
            win._on_overlay_options(win.overlay_controls.options())
            settle(app, 0.5)
            save(win, out / "viewer_flagged_overlay.png", args.max_kb)
        elif "flagged" in shots:
            print("warning: no face was scored; no overlay shot", file=sys.stderr)
        win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
