"""Which span level lets a model call the demo clip without flagging held-out real videos? (no deepfakes-dev)

Why: the ``span`` verdict lets a sustained run of high frames decide, at the start of the model's top band
(``SpanRule.level="top_band"``), a level fixed with model 2.0 on our held-out clips. A model whose held-out
reals score high gets a top band near 1, and then no span can decide (2.5-trial: top band 0.978, the demo
*uncertain*). This analyses, with every model given, the 6 real videos of the standard split's held-out
people (every 5th frame) and the demo clip (every frame, rendered into a temporary folder), and gives each
clip's video score with the span level at the top band (shipped), at the decision threshold, and half way
between; a clip is flagged when that score is at or above the model's threshold. Single-face clips, so the
brief-person rule does not apply; the score is the person's ``max(confident figure, span level)`` as in
``verdict.track_verdict``. Only training-side data is read (``../shared/data/real-faces``, ``real-faces-2``).

    python bench/span_level.py MODEL.onnx [MODEL.onnx ...] [--data ../shared/data] [--threads 2] [--h16]

``--h16`` adds the ten real videos that ``--recipe 2.1-h16-trial`` holds out (16 in all); every other model
trained on those ten, so use it only to compare models of that split.

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from training_data import add_options, emit, held_out_real_videos


def clip_score(tracks: dict[int, tuple[list[int], list[float], list[float]]], level: float) -> float | None:
    """The most suspicious person's score with spans at ``level`` (confident figure, or a span's mean if higher)."""
    from deepyn_gui.core.verdict import confident_aggregator, find_span

    best: float | None = None
    for idx, times, scores in tracks.values():
        if not scores:
            continue
        score = confident_aggregator(scores)
        span = find_span(idx, times, scores, level)
        if span is not None:
            score = max(score, span.level)
        best = score if best is None else max(best, score)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="models (.onnx) to compare")
    ap.add_argument("--h16", action="store_true",
                    help="also the ten real videos that --recipe 2.1-h16-trial holds out (only unseen by such models)")
    add_options(ap, work=False)
    args = ap.parse_args()
    clips = held_out_real_videos(args.data, "span_level", h16=args.h16)
    if clips is None:
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.demo import write_demo
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze
    from deepyn_gui.core.verdict import SPAN_RULE, span_level

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deepyn-span-") as tmp:
        demo = Path(tmp) / "deepyn-demo.mp4"
        write_demo(demo, threads=args.threads)
        out: dict[str, Any] = {"suite": "span_level", "clips": [c.name for c in clips] + ["deepyn-demo.mp4 (frames 75-149 manipulated)"],
                               "models": {}}
        for model in args.models:
            backend = create_backend("onnx", model_path=model, threads=args.threads)
            try:
                info = backend.model_info
                threshold, top = float(info.threshold), span_level(info, replace(SPAN_RULE, level="top_band"))
                levels = {"top band (shipped)": top, "threshold": threshold, "midpoint": (threshold + top) / 2}
                rows: dict[str, Any] = {}
                for clip, stride in [(c, 5) for c in clips] + [(demo, 1)]:
                    res = analyze(str(clip), backend, AnalysisSettings(stride=stride))
                    tracks: dict[int, tuple[list[int], list[float], list[float]]] = {}
                    for fr in res.frames:
                        for face in fr.faces:
                            if face.state == "ok" and face.fake_score is not None:
                                tr = tracks.setdefault(face.track, ([], [], []))
                                tr[0].append(fr.index)
                                tr[1].append(float(fr.pts_s))
                                tr[2].append(float(face.fake_score))
                    row: dict[str, Any] = {"shipped verdict score": res.verdict.fake_score}
                    for name, level in levels.items():
                        score = clip_score(tracks, level)
                        row[name] = None if score is None else {"score": round(score, 3), "flagged": score >= threshold}
                    rows[clip.name] = row
                out["models"][model] = {"name": info.name, "sha256": info.sha256, "threshold": round(threshold, 4),
                                        "levels": {k: round(v, 4) for k, v in levels.items()}, "clips": rows,
                                        "held_out_real_videos_flagged": {
                                            name: sum(1 for c in clips if (rows[c.name][name] or {}).get("flagged"))
                                            for name in levels}}
            finally:
                backend.close()
    out["seconds"] = round(time.perf_counter() - t0, 1)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
