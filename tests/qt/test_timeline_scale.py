"""The score timeline with 100k analysed frames: downsampled and clipped to the view, so it stays fluid.

Timings are printed (``-s``), never asserted (a repaint is forced with ``grab()``, which renders the
whole widget synchronously); the assertions check that the mechanisms that keep it
fast are really in effect (pyqtgraph's PlotItem silently turns them off for items it adopts).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from deepyn_gui.core.results import FaceResult, FrameResult

N = 100_000


@pytest.fixture(scope="module")
def long_results() -> list[FrameResult]:
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 0.01, N))
    walk = (walk - walk.min()) / (walk.max() - walk.min())
    score = np.clip(0.8 * walk + 0.1 + rng.normal(0, 0.03, N), 0, 1)
    no_face = np.zeros(N, bool)
    no_face[20_000:23_000] = True
    no_face[rng.integers(0, N, 500)] = True
    box = (10.0, 10.0, 80.0, 80.0)
    return [FrameResult(i, i / 25, "no_face") if no_face[i] else
            FrameResult(i, i / 25, "ok", (FaceResult(track=1, box=box, fake_score=float(score[i])),))
            for i in range(N)]


@pytest.mark.timeout(120)
def test_100k_points_are_downsampled_and_clipped(qtbot, long_results: list[FrameResult]) -> None:  # type: ignore[no-untyped-def]
    from deepyn_gui.qt.timeline import ScoreTimeline

    tl = ScoreTimeline()
    qtbot.addWidget(tl)
    tl.resize(1200, 220)
    tl.show()
    qtbot.waitExposed(tl)
    tl.set_clip(N)

    t0 = time.perf_counter()
    tl.add_results(long_results)
    t1 = time.perf_counter()
    tl.redraw()
    t2 = time.perf_counter()
    tl.grab()
    t3 = time.perf_counter()
    curve = tl.curves[1]
    drawn = len(curve.curve.getData()[0])
    assert drawn < N / 4, f"{drawn} points drawn for {N} frames: downsampling is off"
    # the data itself is complete and exact
    x, y = curve.getOriginalDataset()
    assert len(x) == N and np.isnan(y).sum() == len(tl.state_frames("no_face"))
    assert tl.state_frames("no_face")[:3] == sorted(tl.state_frames("no_face"))[:3]

    tl.vb.setXRange(50_000, 50_500, padding=0)
    t4 = time.perf_counter()
    tl.grab()
    t5 = time.perf_counter()
    zoomed = len(curve.curve.getData()[0])
    assert zoomed < 2_000, f"{zoomed} points drawn for a 500-frame view: clip-to-view is off"

    # streaming: 40 batches of 2500 results, each followed by a redraw and a repaint
    tl.set_clip(N)
    worst = 0.0
    t6 = time.perf_counter()
    for k in range(0, N, 2500):
        a = time.perf_counter()
        tl.add_results(long_results[k:k + 2500])
        tl.redraw()
        tl.grab()
        worst = max(worst, time.perf_counter() - a)
    t7 = time.perf_counter()
    assert len(tl.spans()) > 100 and len(tl.curves[1].getOriginalDataset()[0]) == N
    print(f"\n100k frames: add {1000 * (t1 - t0):.0f} ms, redraw {1000 * (t2 - t1):.0f} ms, repaint "
          f"{1000 * (t3 - t2):.0f} ms ({drawn} points drawn); zoomed repaint {1000 * (t5 - t4):.0f} ms ({zoomed} "
          f"points); streamed in 40 batches: {t7 - t6:.2f} s, worst batch {1000 * worst:.0f} ms; "
          f"coalescing interval now {tl._redraw_timer.interval()} ms")
