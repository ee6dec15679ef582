"""GUI responsiveness benchmark: seek latency and GUI-thread stalls, driving the real main window.

Generates a 720p H.264 clip (a real face panning over a grey canvas, B-frames, 2 s keyframe interval),
opens it in :class:`deepyn_gui.qt.main_window.MainWindow` and measures, on the GUI thread:

* seek latency: ``Session.seek(i)`` -> frame ``i`` set on the image item ("shown") and -> that frame
  painted (a synchronous repaint right after), for random seeks, single steps forward and backward
  and a scrub burst;
* playback: frames shown / dropped against the clip's clock;
* the longest GUI-thread stall (gap between ticks of a 5 ms QTimer) while an analysis runs, alone and
  while the clip plays;
* cancel latency: the Cancel request -> the cancelled analysis finished on the GUI thread (median of
  ``--cancels`` runs, each cancelled once a few frames are in). The test suite only checks that Cancel
  stops the run early and within seconds; the figure itself lives here.

Prints one JSON document on stdout (a short summary on stderr). Runs offscreen unless QT_QPA_PLATFORM
says otherwise. Numbers depend on the machine and its load; the load average is recorded with them.

    python bench/bench_gui.py [--frames 240] [--seeks 40] [--analysis-frames 60] [--cancels 5] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100.0 * (len(s) - 1)))]


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(_pct(values, 50) * 1000, 2),
        "p95_ms": round(_pct(values, 95) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2) if values else float("nan"),
        "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else float("nan"),
    }


def make_clip(path: Path, frames: int, fps: int) -> None:
    from tests.media import astronaut_clip_frames, write_clip

    write_clip(path, astronaut_clip_frames(frames, 1280, 720, face_px=160, pan_px_per_frame=3.0), fps=fps,
               bframes=2, gop=2 * fps, options={"preset": "veryfast"})


class Bench:
    def __init__(self, app: Any, win: Any) -> None:
        self.app = app
        self.win = win
        self.s = win.session
        self.s.use_cache = False  # each measured run must really analyse, not answer from the cache

    def pump(self, until: Any, timeout: float = 60.0) -> bool:
        """Run the event loop until ``until()`` holds; sleeps between events (no busy spinning).

        A 2 ms heartbeat timer wakes the loop so the condition is checked even when nothing else happens.
        """
        from PySide6.QtCore import QEventLoop, QTimer

        heartbeat = QTimer()
        heartbeat.setInterval(2)
        heartbeat.start()
        try:
            t0 = time.perf_counter()
            while not until():
                if time.perf_counter() - t0 > timeout:
                    return False
                self.app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
            return True
        finally:
            heartbeat.stop()

    def timed_seek(self, index: int) -> tuple[float, float]:
        """Seconds from the request to the frame being set on the image item, and to it being painted."""
        marks: dict[str, float] = {}
        view = self.win.player.frame_view

        def on_shown(sf: Any) -> None:
            if sf.index == index and "shown" not in marks:
                marks["shown"] = time.perf_counter()
                view.viewport().repaint()
                marks["painted"] = time.perf_counter()

        self.s.frameShown.connect(on_shown)
        try:
            t0 = time.perf_counter()
            self.s.seek(index)
            if not self.pump(lambda: "painted" in marks, 30.0):
                raise RuntimeError(f"frame {index} was never shown")
        finally:
            self.s.frameShown.disconnect(on_shown)
        return marks["shown"] - t0, marks["painted"] - t0

    def seeks(self, n: int, total: int) -> dict[str, Any]:
        rng = random.Random(1234)
        shown, painted = [], []
        self.timed_seek(total // 2)  # warm-up: first decode, first paint
        for _ in range(n):
            a, b = self.timed_seek(rng.randrange(total))
            shown.append(a)
            painted.append(b)
        steps = []
        start = rng.randrange(total // 2)
        self.timed_seek(start)
        for k in range(1, 31):
            steps.append(self.timed_seek(start + k)[1])
        back = []
        start = total // 2 + rng.randrange(total // 2)
        self.timed_seek(start)
        for k in range(1, 31):  # stepping backwards frame by frame (Left key)
            back.append(self.timed_seek(start - k)[1])
        return {"random_seek_to_shown": _ms(shown), "random_seek_to_painted": _ms(painted),
                "step_plus_1_to_painted": _ms(steps), "step_minus_1_to_painted": _ms(back)}

    def scrub(self, total: int) -> dict[str, Any]:
        """Dragging back and forth across the clip twice at 60 requests/s (jumps of up to ~total/20 frames).

        Reports how many requests were superseded before being decoded (newest request wins) and how
        long the last requested frame took to appear after the drag stopped.
        """
        import math

        dropped0 = self.s.decoder.dropped_requests
        target = 0
        shown: list[int] = []
        conn = self.s.frameShown.connect(lambda sf: shown.append(sf.index))
        t_end = 0.0
        for k in range(120):
            target = round((total - 1) * (0.5 - 0.5 * math.cos(2 * math.pi * k / 60)))
            self.s.seek(target)
            t_next = time.perf_counter() + 1 / 60
            self.pump(lambda t=t_next: time.perf_counter() >= t)
            t_end = time.perf_counter()
        self.pump(lambda: self.s.shown is not None and self.s.shown.index == target)
        settle = time.perf_counter() - t_end
        self.s.frameShown.disconnect(conn)
        return {"requests": 120, "frames_shown": len(shown),
                "requests_dropped": self.s.decoder.dropped_requests - dropped0,
                "last_frame_settle_ms": round(settle * 1000, 2)}

    def playback(self, seconds: float) -> dict[str, Any]:
        self.s.seek(0)
        self.pump(lambda: self.s.shown is not None and self.s.shown.index == 0)
        shown: list[int] = []
        conn = self.s.frameShown.connect(lambda sf: shown.append(sf.index))
        dropped0 = self.s.frames_dropped
        t0 = time.perf_counter()
        self.s.play()
        self.pump(lambda: time.perf_counter() - t0 >= seconds or not self.s.playing, seconds + 5)
        elapsed = time.perf_counter() - t0
        self.s.pause()
        self.s.frameShown.disconnect(conn)
        last = shown[-1] if shown else 0
        return {"seconds": round(elapsed, 3), "clip_fps": round(self.s.fps, 3), "frames_shown": len(shown),
                "shown_fps": round(len(shown) / elapsed, 2), "last_index": last,
                "clock_index": int(elapsed * self.s.fps), "frames_dropped": self.s.frames_dropped - dropped0}

    def analysis_stall(self, play: bool, max_frames: int) -> dict[str, Any]:
        from dataclasses import replace

        from deepyn_gui.qt.diagnostics import StallProbe

        self.s.settings = replace(self.s.settings, max_frames=max_frames)
        self.s.seek(0)
        self.pump(lambda: self.s.shown is not None and self.s.shown.index == 0)
        probe = StallProbe(5)
        probe.start()
        dropped0 = self.s.frames_dropped
        t0 = time.perf_counter()
        if not self.s.start_analysis():
            raise RuntimeError("analysis did not start")
        if play:
            self.s.play()
        while self.s.analysis_running:
            if play and not self.s.playing:
                self.s.seek(0)
                self.s.play()
            self.pump(lambda: not self.s.analysis_running or (play and not self.s.playing), 600)
        elapsed = time.perf_counter() - t0
        probe.stop()
        self.s.pause()
        r = self.s.analysis_result
        return {
            "frames_analysed": len(self.s.results), "seconds": round(elapsed, 2),
            "analysis_fps": round(len(self.s.results) / elapsed, 2), "state": self.s.analysis_state,
            "longest_stall_ms": round(probe.longest_s * 1000, 1), "p99_stall_ms": round(probe.percentile(99) * 1000, 1),
            "playback_frames_dropped": self.s.frames_dropped - dropped0 if play else None,
            "model": r.model.name if r else None, "model_trained": r.model.trained if r else None,
        }


    def cancel_latency(self, runs: int) -> dict[str, Any]:
        from dataclasses import replace

        self.s.settings = replace(self.s.settings, max_frames=None)
        waits: list[float] = []
        worker: list[float] = []
        for _ in range(runs):
            if not self.s.start_analysis():
                raise RuntimeError("analysis did not start")
            self.pump(lambda: len(self.s.results) >= 3 or not self.s.analysis_running, 120)
            if not self.s.analysis_running:
                raise RuntimeError("the analysis ended before it could be cancelled")
            t0 = time.perf_counter()
            self.s.cancel_analysis()
            self.pump(lambda: not self.s.analysis_running, 60)
            waits.append(time.perf_counter() - t0)
            if self.s.last_cancel_latency_s is not None:
                worker.append(self.s.last_cancel_latency_s)
            if self.s.analysis_state != "cancelled":
                raise RuntimeError(f"the analysis ended as {self.s.analysis_state!r}, not cancelled")
        return {"runs": runs, "p50_ms": round(statistics.median(waits) * 1000, 1),
                "max_ms": round(max(waits) * 1000, 1),
                "worker_p50_ms": round(statistics.median(worker) * 1000, 1) if worker else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=240, help="frames in the generated 720p clip (30 fps)")
    ap.add_argument("--seeks", type=int, default=40, help="random seeks to time")
    ap.add_argument("--analysis-frames", type=int, default=60, help="frames to analyse per stall measurement")
    ap.add_argument("--cancels", type=int, default=5, help="analyses cancelled to time the Cancel request")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--model", default=None, help="model file (default: the bundled model)")
    ap.add_argument("--threads", type=int, default=2, help="inference threads")
    args = ap.parse_args()

    import pyqtgraph as pg
    import PySide6
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from deepyn_gui.qt.main_window import MainWindow
    from deepyn_gui.qt.settings import Preferences

    app = QApplication.instance() or QApplication([sys.argv[0]])
    out: dict[str, Any] = {
        "bench": "gui",
        "platform": os.environ.get("QT_QPA_PLATFORM"),
        "cpus": os.cpu_count(),
        "load_avg_start": [round(v, 2) for v in os.getloadavg()],
        "pyside6": PySide6.__version__,
        "pyqtgraph": pg.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "bench_720p.mp4"
        t0 = time.perf_counter()
        make_clip(clip, args.frames, 30)
        out["clip"] = {"width": 1280, "height": 720, "fps": 30, "frames": args.frames, "codec": "h264 (B-frames, GOP 60)",
                       "encode_s": round(time.perf_counter() - t0, 2)}
        win = MainWindow(prefs=Preferences(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)))
        win.resize(1400, 900)
        win.show()
        win.set_backend(args.backend)
        win.set_model_path(args.model)
        win.session.threads = args.threads
        b = Bench(app, win)
        t0 = time.perf_counter()
        win.open_file(clip)
        if not b.pump(lambda: win.session.shown is not None, 60):
            raise SystemExit("the clip did not open")
        out["open_to_first_frame_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        out["seek"] = b.seeks(args.seeks, args.frames)
        out["scrub"] = b.scrub(args.frames)
        out["playback"] = b.playback(3.0)
        out["analysis"] = b.analysis_stall(False, args.analysis_frames)
        out["analysis_while_playing"] = b.analysis_stall(True, args.analysis_frames)
        out["cancel"] = b.cancel_latency(args.cancels)
        t0 = time.perf_counter()
        win.close()
        out["close_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=2))
    s, a, ap_ = out["seek"], out["analysis"], out["analysis_while_playing"]
    print(f"seek p50/p95 {s['random_seek_to_painted']['p50_ms']}/{s['random_seek_to_painted']['p95_ms']} ms; "
          f"longest GUI stall during analysis {a['longest_stall_ms']} ms "
          f"({ap_['longest_stall_ms']} ms while playing); cancel -> finished p50 {out['cancel']['p50_ms']} ms",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
