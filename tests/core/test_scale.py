"""Memory and scale: compact results, and a pipeline whose memory does not grow with the clip.

What is measured is printed (run with ``-s`` to see it); assertions are generous bounds on memory
(bytes), never on time. ``bench/run_all.py`` measures the same on 720p clips minutes long.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Self

import numpy as np
import pytest

from deepyn_gui.core.pipeline import AnalysisSettings, Progress, iter_analysis
from deepyn_gui.core.results import (
    CROP_SIZE,
    FaceResult,
    FrameResult,
    ModelInfo,
    compress_mask,
    decompress_mask,
)
from tests.corpus.make_corpus import long_cheap_clip

RAW_U8 = CROP_SIZE * CROP_SIZE  # 50176 bytes: one mask as plain uint8


def realistic_mask(seed: int, noise: float = 0.0) -> np.ndarray:
    """A soft blob where a blend boundary would be, brightest on the boundary, with slow variation.

    ``noise`` adds per-pixel texture (a pessimistic case: independent noise does not compress).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:CROP_SIZE, 0:CROP_SIZE].astype(np.float32)
    cx, cy = rng.uniform(90, 130, 2)
    rx, ry = rng.uniform(40, 70, 2)
    d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    blob = 1.0 / (1.0 + np.exp((d - 1.0) * 6.0))
    ring = np.exp(-((np.sqrt(d) - 1.0) ** 2) / 0.02)
    slow = 0.1 * np.sin(xx / rng.uniform(9, 15)) * np.cos(yy / rng.uniform(9, 15))
    m = 0.6 * ring + 0.3 * blob + slow * blob
    if noise:
        m = m + rng.normal(0, noise, m.shape)
    return np.clip(m, 0, 1).astype(np.float32)


class MaskBackend:
    """Fast stand-in for a model: realistic masks, a brightness score."""

    name = "mask-fake"
    batch_size = 8

    def __init__(self) -> None:
        self.masks = np.stack([realistic_mask(i) for i in range(16)])  # smooth: what a trained net gives
        self.calls = 0

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo("mask-fake", "0" * 64)

    def describe(self) -> dict:
        return {"name": self.name}

    def infer(self, crops: np.ndarray):  # type: ignore[no-untyped-def]
        n = len(crops)
        self.calls += 1
        idx = (np.arange(n) + self.calls) % len(self.masks)
        return self.masks[idx], crops.reshape(n, -1).mean(axis=1).astype(np.float32) / 255.0

    def close(self) -> None:
        pass


def test_masks_are_stored_compactly(tiny_onnx_model: Path) -> None:
    import cv2

    from deepyn_gui.backends import create_backend
    from tests.corpus.make_corpus import astronaut_face

    def stats(masks: list[np.ndarray]) -> float:
        sizes = []
        for m in masks:
            blob = compress_mask(m)
            back = decompress_mask(blob)
            assert back.shape == (CROP_SIZE, CROP_SIZE) and back.dtype == np.uint8
            assert np.abs(back.astype(np.float32) / 255.0 - m).max() <= 0.5 / 255 + 1e-6  # uint8 rounding only
            sizes.append(len(blob))
        return float(np.mean(sizes))

    crop = cv2.resize(astronaut_face(100), (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
    model = create_backend("onnx", model_path=str(tiny_onnx_model), threads=1).infer(crop[None])[0][0]
    smooth = stats([realistic_mask(i) for i in range(10)])
    noisy = stats([realistic_mask(i, noise=0.02) for i in range(10)])
    tiny = stats([model])
    flat = stats([np.zeros((CROP_SIZE, CROP_SIZE), np.float32)])
    print(f"\nmask bytes per face: smooth blob {smooth:.0f}, with 2 % pixel noise {noisy:.0f} (worst case), "
          f"tiny untrained model {tiny:.0f}, empty {flat:.0f}; raw uint8 {RAW_U8}, float32 {4 * RAW_U8}")
    assert smooth < RAW_U8 / 4 and tiny < RAW_U8 / 4 and flat < 1000 and noisy < RAW_U8


def test_result_memory_per_frame() -> None:
    """What one analysed frame with one face keeps in memory (objects + compressed mask)."""
    blobs = [compress_mask(realistic_mask(i)) for i in range(8)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        frames = [
            FrameResult(i, i / 25.0, "ok", (FaceResult(track=1, box=(10.0 + i % 7, 20.0, 80.0, 90.0), fake_score=0.5,
                                                       mask_blob=bytes(bytearray(blobs[i % 8]))),))
            for i in range(3000)
        ]
        per_frame = (tracemalloc.get_traced_memory()[0] - base) / len(frames)
    finally:
        tracemalloc.stop()
    hour = per_frame * 25 * 3600 / 2**20
    print(f"\nresult memory: {per_frame / 1024:.1f} KiB per frame with one face -> {hour:.0f} MiB per hour at 25 fps")
    assert per_frame < RAW_U8 / 4  # objects + a smooth mask; a mask holds most of it
    del frames


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRss:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.005)

    def __enter__(self) -> Self:
        self.start = _rss_bytes()
        self.peak = self.start
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


class _BoxDetector:
    """Finds 'a face' in the same place on every frame: isolates the pipeline from detector cost."""

    name = "fixed-box"

    def detect(self, rgb: np.ndarray):  # type: ignore[no-untyped-def]
        from deepyn_gui.core.faces import Detection

        h, w = rgb.shape[:2]
        return [Detection(box=(0.3 * w, 0.2 * h, 0.4 * w, 0.55 * h), score=0.99)]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to read RSS")
def test_pipeline_memory_stays_flat_as_the_clip_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streaming consumer (results not kept): peak RSS must not depend on the clip's length."""
    from deepyn_gui.core import faces

    monkeypatch.setattr(faces, "make_detector", lambda *a, **k: _BoxDetector())
    backend = MaskBackend()
    growth: dict[int, float] = {}
    kept_growth: dict[int, float] = {}
    fps = 10
    for seconds in (0, 15, 30, 60):  # 0: a warm-up run, so first-use allocations do not count
        clip = long_cheap_clip(tmp_path / f"long_{seconds}.mp4", max(seconds, 5), w=160, h=120, fps=fps)
        for keep in (False, True):
            kept: list[FrameResult] = []
            n = 0
            with _PeakRss() as rss:
                for item in iter_analysis(str(clip), backend, AnalysisSettings(batch_size=8)):
                    if isinstance(item, Progress):
                        continue
                    n += 1
                    if keep:
                        kept.append(item)
            assert n == max(seconds, 5) * fps
            (kept_growth if keep else growth)[seconds] = round((rss.peak - rss.start) / 2**20, 1)
            del kept
    print(f"\npeak RSS growth (MiB) by clip length (s), results streamed: {growth}; results kept: {kept_growth}")
    assert abs(growth[60] - growth[15]) < 16, growth  # flat: no per-frame memory in the pipeline
    per_frame_bound = RAW_U8 / 4  # see test_result_memory_per_frame
    assert kept_growth[60] - kept_growth[15] < 45 * fps * per_frame_bound / 2**20 + 16, kept_growth
