"""Shared pieces for the export tests (core, CLI and GUI): a tiny real-face clip and a fake backend.

The clip is the public-domain astronaut portrait panning across a grey canvas; on frames 4-6 the face
is tinted (green removed), standing in for a manipulation. ``ColourBackend`` is a deterministic,
honest stand-in for a model: its score is computed from the crop's pixels (how much redder than green
the crop is), and its mask marks the tinted pixels, so a test can check that exports show the
*right* frames and pixels, not merely that something was drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

try:
    from tests import media
except ImportError:  # pragma: no cover - depends on how pytest set sys.path
    import media  # type: ignore[no-redef]

from deepyn_gui.core.results import ModelInfo

TINTED = (4, 5, 6)
N_FRAMES = 10
CLIP_W, CLIP_H = 320, 240


def tinted_astronaut_frames(n: int = N_FRAMES) -> list[np.ndarray]:
    """Astronaut clip; the face area on frames in ``TINTED`` loses most of its green."""
    from deepyn_gui.core.faces import make_detector

    frames = list(media.astronaut_clip_frames(n, w=CLIP_W, h=CLIP_H, face_px=50, pan_px_per_frame=4))
    detector = make_detector("haar")
    for i in TINTED:
        if i < n:
            f = frames[i]
            found = detector.detect(f)
            assert found, "the test clip's face must be detectable"
            x, y, w, h = (round(v) for v in found[0].box)
            region = f[y + h // 10 : y + h - h // 10, x + w // 10 : x + w - w // 10]
            region[..., 1] = (region[..., 1].astype(np.int32) // 3).astype(np.uint8)
    return frames


def write_test_clip(path: str | Path, n: int = N_FRAMES, fps: float = 10) -> Path:
    return media.write_clip(path, tinted_astronaut_frames(n), fps=fps)


class ColourBackend:
    """InferenceBackend stand-in: score = how much redder than green the crop is; mask = where."""

    name = "colour-test"
    batch_size = 4

    def __init__(self, threshold: float = 0.5, trained: bool = True) -> None:
        self._info = ModelInfo(
            name="colour-test-model", sha256="c0" * 32, path="", version="t1", trained=trained,
            threshold=threshold, real_below=0.3,
        )
        self.calls = 0

    @property
    def model_info(self) -> ModelInfo:
        return self._info

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": "1.0", "providers": ["numpy"], "threads": 1}

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        c = crops.astype(np.float32)
        redness = np.clip((c[..., 0] - c[..., 1]) / 128.0, 0.0, 1.0)  # [N,224,224]
        score = np.clip(redness.mean(axis=(1, 2)) * 1.5, 0.0, 1.0).astype(np.float32)
        return redness.astype(np.float32), score

    def close(self) -> None:
        pass


def analyse_clip(path: str | Path, **settings: Any) -> Any:
    """Run the real pipeline (Haar detector: fast) with the colour backend."""
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze

    opts = {"detector": "haar", **settings}
    return analyze(str(path), ColourBackend(), AnalysisSettings(**opts))


_SHARED: dict[str, Any] = {}


def shared_analysis() -> tuple[Path, Any]:
    """One analysed test clip per test process (read-only use!): ``(clip path, AnalysisResult)``.

    Tests that modify, move or re-analyse the evidence must make their own clip.
    """
    if "result" not in _SHARED:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="deepyn-export-evidence-"))
        clip = write_test_clip(folder / "astronaut test.mp4")
        _SHARED["clip"] = clip
        _SHARED["result"] = analyse_clip(clip)
    return _SHARED["clip"], _SHARED["result"]
