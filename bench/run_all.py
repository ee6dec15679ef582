"""The whole benchmark suite in one run: one JSON document on stdout, a short table on stderr.

    python bench/run_all.py                 # everything (about 6-10 minutes on 2 cores)
    python bench/run_all.py --quick         # fewer frames, no width-64 model, no GUI (about 2 minutes)
    python bench/run_all.py --out bench/results/after.json

Measured in the same run, on this machine, with the load average next to every section (the machine
may be shared: compare runs only at similar load):

* decode fps, detect fps, infer crops/s (fp32 and int8) on a 720p and a 1080p single-face clip;
* end-to-end fps of the real pipeline (``core.pipeline.analyze`` with default settings and the
  default model), its real-time factor, and pipeline efficiency = end-to-end fps / fps of the slowest
  stage measured alone; also the CPU time each stage needs per frame, the fps bound that gives
  (cores / total CPU per frame) and the end-to-end fps as a share of that bound;
* ONNX Runtime vs torch eager on the same U-YNet width, batch and thread count;
* int8 vs fp32: speed ratio and |delta fake_score| on real face crops;
* the full-width (64, the original) U-YNet crops/s per core;
* GUI seek latency p50/p95 and the longest GUI-thread stall during analysis (``bench/bench_gui.py``,
  in a subprocess);
* peak RSS of a whole analysis (CLI path, results kept) against clip length (1, 2, 4 minutes of 720p).

Targets (issue 7) are evaluated at the end under ``"targets"``. Timings are never test assertions.
``--package-root DIR`` measures another checkout's ``deepyn_gui`` (e.g. ``git archive`` of an older
commit) with this same harness, for before/after comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _setup_path(package_root: str | None) -> None:
    if package_root:
        sys.path.insert(0, str(Path(package_root).resolve()))
    if str(ROOT) not in sys.path:
        sys.path.insert(1 if package_root else 0, str(ROOT))


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def section(name: str, fn: Callable[[], dict[str, Any]], out: dict[str, Any]) -> None:
    print(f"[bench] {name} (load {load()[0]})", file=sys.stderr, flush=True)
    before = load()
    t0 = time.perf_counter()
    try:
        res = fn()
    except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
        import traceback

        traceback.print_exc()
        res = {"error": f"{type(exc).__name__}: {exc}"}
    res["load_avg_before"] = before
    res["load_avg_after"] = load()
    res["section_s"] = round(time.perf_counter() - t0, 1)
    out[name] = res


# --------------------------------------------------------------------------------------------------
# Clips and crops
# --------------------------------------------------------------------------------------------------


def make_face_clip(path: Path, w: int, h: int, frames: int, fps: int = 25) -> Path:
    """A real face (the astronaut) panning over a grey canvas; face about h/4.5 px wide (a talking head)."""
    from tests.media import astronaut_clip_frames, write_clip

    return write_clip(path, astronaut_clip_frames(frames, w, h, face_px=round(h / 4.5), pan_px_per_frame=2.0),
                      fps=fps, bframes=2, gop=2 * fps, options={"preset": "veryfast", "crf": "20"})


def real_crops(n: int = 48) -> Any:
    """Face crops from the shared real-face clips when present, else varied astronaut crops."""
    import cv2
    import numpy as np

    from deepyn_gui.core.faces import detect_and_crop, make_detector
    from deepyn_gui.core.video import VideoSource
    from tests.corpus.make_corpus import astronaut_face

    crops: list[Any] = []
    shared = Path(os.environ.get("DEEPYN_SHARED_DATA", ROOT.parent / "shared" / "data")) / "real-faces"
    clips = sorted(shared.glob("*.mp4")) if shared.is_dir() else []
    det = make_detector("auto", threads=1)
    for clip in clips:
        if len(crops) >= n:
            break
        try:
            with VideoSource(clip) as src:
                for f in src.frames(step=max(1, src.info.frames // 6)):
                    for fc in detect_and_crop(f.rgb, det):
                        crops.append(fc.crop)
                    if len(crops) >= n:
                        break
        except Exception:  # noqa: BLE001, S112 - optional data
            continue
    rng = np.random.default_rng(0)
    while len(crops) < n:
        side = int(rng.integers(80, 200))
        face = astronaut_face(side)
        face = cv2.convertScaleAbs(face, alpha=float(rng.uniform(0.7, 1.3)), beta=float(rng.uniform(-20, 20)))
        crops.append(cv2.resize(face, (224, 224), interpolation=cv2.INTER_AREA))
    return np.stack(crops[:n]).astype(np.uint8), ("shared real-faces" if clips else "astronaut variations")


def model_width(path: str) -> int:
    from deepyn_gui.core.model.metadata import read_metadata_props

    return int(read_metadata_props(path).get("deepyn.width", "0") or 0)


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


def bench_stages_and_e2e(clip: Path, fps: int, model: str, threads: int, batch: int) -> dict[str, Any]:
    import cv2
    import numpy as np

    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.faces import crop_transform_for_box, extract_crop, make_detector
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze
    from deepyn_gui.core.video import VideoSource

    cv2.setNumThreads(1)
    res: dict[str, Any] = {}
    # decode alone (what the pipeline's decode stage does: every frame to RGB)
    t0, c0 = time.perf_counter(), time.process_time()
    frames = []
    with VideoSource(str(clip)) as src:
        info = src.info
        for f in src.frames():
            if len(frames) < 48:
                frames.append(f.rgb)
    n = info.frames
    res["decode_fps"] = round(n / (time.perf_counter() - t0), 1)
    cpu = {"decode": (time.process_time() - c0) / n}  # CPU seconds per frame, all threads
    # the detector alone on every frame (one thread, as in the pipeline)
    det = make_detector("auto", threads=1)
    det.detect(frames[0])
    t0 = time.perf_counter()
    dets = [det.detect(f) for f in frames]
    res["detector_fps"] = round(len(frames) / (time.perf_counter() - t0), 1)
    res["detector"] = det.name
    # the detect stage alone as the pipeline runs it (detector every detect_every-th frame + crops)
    settings = AnalysisSettings(batch_size=batch)
    detect_fps, cpu["detect"] = detect_stage_fps(frames, settings)
    res["detect_fps"] = round(detect_fps, 1)
    faces = sum(len(d) for d in dets) / len(frames)
    res["faces_per_frame"] = round(faces, 2)
    crops = [extract_crop(f, crop_transform_for_box(d[0].box)) for f, d in zip(frames, dets) if d]
    if not crops:
        raise RuntimeError("the detector found no face on the benchmark clip")
    # infer alone, at the pipeline's batch size
    backend = create_backend("onnx", model_path=model, threads=threads, batch_size=batch)
    x = np.stack((crops * (batch // len(crops) + 1))[:batch])
    backend.infer(x)
    t0, c0, reps = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - t0 < 3.0 or reps < 3:
        backend.infer(x)
        reps += 1
    crops_s = reps * batch / (time.perf_counter() - t0)
    res["infer_crops_per_s"] = round(crops_s, 1)
    cpu["infer"] = (time.process_time() - c0) / (reps * batch) * faces
    stage = {"decode": res["decode_fps"], "detect": res["detect_fps"], "infer": crops_s / max(faces, 1e-9)}
    # end to end: the real pipeline with its default settings; the median of 3 runs (this shared
    # machine's speed drifts by 10-20 % from one run to the next), every run's fps kept
    last: dict[str, Any] = {}
    runs: list[tuple[float, float, Any]] = []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        result = analyze(str(clip), backend, settings, on_progress=lambda p: last.__setitem__("p", p))
        runs.append((time.perf_counter() - t0, time.process_time() - c0, last.get("p")))
    wall, e2e_cpu, last["p"] = sorted(runs, key=lambda r: r[0])[1]
    e2e = len(result.frames) / wall
    res["end_to_end_fps_runs"] = [round(len(result.frames) / r[0], 1) for r in runs]
    backend.close()
    cores = os.cpu_count() or 1
    # What the machine allows: all cores busy with exactly the stages' own CPU work, perfectly overlapped.
    bound = cores / sum(cpu.values())
    slowest = min(stage, key=lambda k: stage[k])
    res.update({
        "clip": {"width": info.width, "height": info.height, "frames": n, "fps": fps},
        "settings": {k: v for k, v in settings.to_json().items() if k in ("detect_every", "batch_size", "stride",
                                                                          "infer_timeout_s", "detector")},
        "end_to_end_fps": round(e2e, 1),
        "real_time_factor": round(e2e / fps, 2),
        "slowest_stage": slowest,
        "slowest_stage_fps": round(stage[slowest], 1),
        "pipeline_efficiency": round(e2e / stage[slowest], 2),
        "cpu_ms_per_frame_alone": {k: round(v * 1000, 1) for k, v in cpu.items()},
        "cpu_bound_fps": round(bound, 1),
        "efficiency_vs_cpu_bound": round(e2e / bound, 2),
        "cpu_ms_per_frame_end_to_end": round(e2e_cpu / len(result.frames) * 1000, 1),
        "cpu_utilisation_end_to_end": round(e2e_cpu / (wall * cores), 2),
        "frames_with_face": sum(1 for f in result.frames if f.faces),
        "frames_analysed": len(result.frames),
        "stage_busy_s": {k: round(v, 2) for k, v in last["p"].stage_busy_s.items()} if last.get("p") is not None else None,
        "wall_s": round(len(result.frames) / e2e, 2),
    })
    return res


def detect_stage_fps(frames: list[Any], settings: Any) -> tuple[float, float]:
    """The pipeline's detect stage alone: frames per second and CPU seconds per frame (all threads).

    Detection cadence, near passes, tracking and crops, timed after the detector is loaded and warm.
    """
    from deepyn_gui.core import pipeline
    from deepyn_gui.core.faces import FaceTracker, crop_transform_for_box, extract_crop, make_detector

    stage_cls = getattr(pipeline, "DetectStage", None)
    if stage_cls is not None:  # the pipeline's own per-frame detect work, exactly as it runs
        from deepyn_gui.core.video import VideoFrame

        stage = stage_cls(settings)
        for i, f in enumerate(frames[:4]):  # loads and warms the nets (each plans its input shape once)
            stage.prepare(VideoFrame(i, i / 25.0, f))
        stage.reset()  # warm nets, fresh tracking
        t0, c0 = time.perf_counter(), time.process_time()
        for i, f in enumerate(frames):
            stage.prepare(VideoFrame(i, i / 25.0, f))
        return len(frames) / (time.perf_counter() - t0), (time.process_time() - c0) / len(frames)
    # older trees (for "before" runs): the same work re-created here
    det = make_detector(settings.detector, threads=settings.detector_threads)
    det.detect(frames[0])
    carrier_cls = getattr(pipeline, "_BoxCarrier", None)
    every = getattr(settings, "detect_every", 1)
    tracker = FaceTracker()
    t0, c0 = time.perf_counter(), time.process_time()
    if carrier_cls is None:  # an older pipeline: the detector on every frame
        last: list[Any] = []
        for n, f in enumerate(frames):
            if n % every == 0 or not last:
                last = tracker.update(det.detect(f))
            for _, d in last:
                extract_crop(f, crop_transform_for_box(d.box, margin=settings.margin))
    else:
        carry = carrier_cls(every)
        for f in frames:
            if carry.must_detect(f):
                carry.detected(f, tracker.update(det.detect(f)))
            for _, d in carry.faces():
                extract_crop(f, crop_transform_for_box(d.box, margin=settings.margin))
    return len(frames) / (time.perf_counter() - t0), (time.process_time() - c0) / len(frames)


def bench_precision(model: str, int8_model: str | None, threads: int, batch: int, tmp: Path) -> dict[str, Any]:
    import numpy as np

    from deepyn_gui.backends import create_backend

    crops, source = real_crops(48)
    out: dict[str, Any] = {"crops": len(crops), "crop_source": source, "threads": threads, "batch": batch}
    if int8_model is None or not Path(int8_model).is_file():
        from deepyn_gui.core.training.quantize import quantize_int8

        int8_model = str(quantize_int8(model, tmp / "int8.onnx", crops[:32]))
        out["int8_model"] = "quantised in this run (onnxruntime quantize_static QDQ, 32 calibration crops)"
    else:
        out["int8_model"] = str(int8_model)

    def timed(b: Any) -> float:
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 1.5 or reps < 2:
            b.infer(crops[:batch])
            reps += 1
        return reps * batch / (time.perf_counter() - t0)

    b32 = create_backend("onnx", model_path=model, threads=threads, batch_size=batch)
    b8 = create_backend("onnx", model_path=int8_model, threads=threads, batch_size=batch)
    _, s32 = b32.infer(crops)
    _, s8 = b8.infer(crops)
    runs32, runs8 = [], []
    for _ in range(3):  # interleaved, medians: both files see the shared machine's ups and downs
        runs32.append(timed(b32))
        runs8.append(timed(b8))
    b32.close()
    b8.close()
    fp32_cps, int8_cps = float(np.median(runs32)), float(np.median(runs8))
    d = np.abs(np.asarray(s32) - np.asarray(s8))
    out.update({
        "fp32_crops_per_s": round(fp32_cps, 1),
        "int8_crops_per_s": round(int8_cps, 1),
        "int8_speedup": round(int8_cps / fp32_cps, 2),
        "max_abs_delta_fake_score": round(float(d.max()), 4),
        "mean_abs_delta_fake_score": round(float(d.mean()), 4),
        "fp32_score_range": [round(float(np.min(s32)), 4), round(float(np.max(s32)), 4)],
    })
    return out


def bench_onnx_vs_torch(model: str, threads: int, batch: int) -> dict[str, Any]:
    """The same work on both sides: uint8 NHWC crops in, (mask_prob, fake_score) out.

    torch runs ``UYNetForExport`` (the module that was exported: mask probability + fake score, with
    the same graph rewrites the ONNX file has: mask head folded to sigmoid(l1 - l0), decoder concats
    split into two convolutions) eagerly under ``inference_mode`` with the same thread count; both
    include the uint8 -> float conversion.
    """
    import numpy as np
    import torch

    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.model.uynet import UYNet, UYNetForExport

    width = model_width(model)
    torch.set_num_threads(threads)
    if width == 0:  # the lite0 model (EfficientNet-Lite0 encoder) has no width knob
        from deepyn_gui.core.model.uynet_lite import LiteUYNet, LiteUYNetForExport

        net = LiteUYNetForExport(LiteUYNet().eval()).eval()
    else:
        net = UYNetForExport(UYNet(width).eval()).eval()

    def timed(fn: Callable[[], Any], n: int) -> float:
        fn()
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 1.5 or reps < 2:
            fn()
            reps += 1
        return reps * n / (time.perf_counter() - t0)

    out: dict[str, Any] = {"width": width, "threads": threads, "torch_version": torch.__version__,
                           "note": "same architecture and width, random weights (speed does not depend on "
                                   "weight values); both sides run the same exported module "
                                   "(UYNetForExport: mask head folded to sigmoid(l1-l0), decoder "
                                   "concats split) and include the uint8->float conversion"}
    for bs in sorted({1, batch}):
        x = np.random.default_rng(0).integers(0, 256, (bs, 224, 224, 3), dtype=np.uint8)

        def run_torch(x: Any = x) -> Any:
            with torch.inference_mode():
                t = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0)
                return net(t)

        b = create_backend("onnx", model_path=model, threads=threads, batch_size=bs)
        t_runs, o_runs = [], []
        for _ in range(3):  # interleaved, medians: the two share the machine's ups and downs
            t_runs.append(timed(run_torch, bs))
            o_runs.append(timed(lambda: b.infer(x), bs))  # noqa: B023
        b.close()
        torch_cps, onnx_cps = float(np.median(t_runs)), float(np.median(o_runs))
        out[f"batch_{bs}"] = {"torch_eager_crops_per_s": round(torch_cps, 1), "onnx_crops_per_s": round(onnx_cps, 1),
                              "onnx_over_torch": round(onnx_cps / torch_cps, 2)}
    out["batch"] = batch
    out["onnx_over_torch"] = out[f"batch_{batch}"]["onnx_over_torch"]
    return out


def bench_width64(tmp: Path, threads_list: list[int]) -> dict[str, Any]:
    import numpy as np

    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.model.export import export_untrained

    path = tmp / "uynet_w64.onnx"
    t0 = time.perf_counter()
    export_untrained(64, path, seed=0, name="uynet-w64-bench", threads=max(threads_list))
    out: dict[str, Any] = {"export_s": round(time.perf_counter() - t0, 1), "size_mb": round(path.stat().st_size / 2**20, 1)}
    x = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    runs = []
    for th in threads_list:
        b = create_backend("onnx", model_path=str(path), threads=th, batch_size=1)
        b.infer(x[:1])
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 6.0 or reps < 3:
            b.infer(x[:1])
            reps += 1
        cps = reps / (time.perf_counter() - t0)
        b.close()
        runs.append({"threads": th, "crops_per_s": round(cps, 3), "crops_per_s_per_core": round(cps / th, 3)})
    out["runs"] = runs
    out["best_crops_per_s_per_core"] = max(r["crops_per_s_per_core"] for r in runs)
    out["reference"] = "original work: 20-core Xeon E5-2698v4 5.41 crops/s = 0.27 per core"
    return out


def bench_gui(model: str, quick: bool) -> dict[str, Any]:
    script = ROOT / "bench" / "bench_gui.py"
    if not script.is_file():
        return {"skipped": "bench/bench_gui.py not present"}
    # Through gui_child(): the session's analysis cache is switched off, so the second analysis of the
    # same clip runs the model again instead of being answered from the cache.
    args = [sys.executable, str(Path(__file__).resolve()), "--gui-child", "--model", model, "--threads", "2"]
    if quick:
        args += ["--frames", "120", "--seeks", "20", "--analysis-frames", "30"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=ROOT, check=False,
                       env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")})
    if r.returncode != 0:
        return {"error": f"bench_gui.py exited {r.returncode}: {r.stderr.strip().splitlines()[-1:]}"}
    data = json.loads(r.stdout[r.stdout.index("{"):])
    seek = data["seek"]["random_seek_to_painted"]
    return {
        "seek_p50_ms": seek["p50_ms"], "seek_p95_ms": seek["p95_ms"],
        "longest_stall_during_analysis_ms": data["analysis"]["longest_stall_ms"],
        "longest_stall_analysis_while_playing_ms": data["analysis_while_playing"]["longest_stall_ms"],
        "raw": data,
    }


def gui_child(argv: list[str]) -> int:
    """Run bench/bench_gui.py with the session cache off (a benchmark times the model, not a cache hit)."""
    import runpy

    from deepyn_gui.qt import session

    original_init = session.Session.__init__

    def init(self: Any, *a: Any, **k: Any) -> None:
        original_init(self, *a, **k)
        self.use_cache = False

    session.Session.__init__ = init  # type: ignore[method-assign]
    sys.argv = [str(ROOT / "bench" / "bench_gui.py"), *argv]
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0


def rss_child(clip: str, stride: int, model: str, threads: int) -> None:
    """Child process: analyse ``clip`` like the CLI does (results kept) and print peak RSS."""
    import cv2

    from deepyn_gui.backends import create_backend
    from deepyn_gui.core.pipeline import AnalysisSettings, analyze

    cv2.setNumThreads(1)
    backend = create_backend("onnx", model_path=model, threads=threads, batch_size=8)
    t0 = time.perf_counter()
    result = analyze(clip, backend, AnalysisSettings(stride=stride))
    wall = time.perf_counter() - t0
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"peak_rss_mb": round(hwm / 1024, 1), "frames_analysed": len(result.frames),
                      "faces": sum(len(fr.faces) for fr in result.frames), "wall_s": round(wall, 1)}))


def bench_rss(tmp: Path, minutes: list[float], model: str, threads: int, stride: int) -> dict[str, Any]:
    import numpy as np

    from tests.corpus.make_corpus import long_cheap_clip
    from tests.media import astronaut_clip_frames

    def content(n: int) -> Any:
        still = next(astronaut_clip_frames(1, 1280, 720, face_px=160))
        return (still.copy() if i % 2 else np.ascontiguousarray(still[:, ::-1]) for i in range(n))

    rows = []
    for m in minutes:
        clip = long_cheap_clip(tmp / f"long_{m}min.mp4", m * 60, w=1280, h=720, fps=25, content=content)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(clip), str(stride), model,
               str(threads)] + (["--package-root", ARGS.package_root] if ARGS.package_root else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT, check=False)
        if r.returncode != 0:
            rows.append({"minutes": m, "error": r.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(r.stdout.strip().splitlines()[-1])
        row.update({"minutes": m, "frames": int(m * 60 * 25), "file_mb": round(clip.stat().st_size / 2**20, 1)})
        rows.append(row)
        clip.unlink()
    ok = [r for r in rows if "peak_rss_mb" in r]
    growth = (ok[-1]["peak_rss_mb"] - ok[0]["peak_rss_mb"]) if len(ok) >= 2 else None
    return {"clip": "1280x720 H.264, 25 fps, static face (GOP repeated)", "stride": stride, "rows": rows,
            "peak_rss_growth_mb_first_to_last": None if growth is None else round(growth, 1)}


# --------------------------------------------------------------------------------------------------


def evaluate(out: dict[str, Any]) -> dict[str, Any]:
    def get(*keys: str) -> Any:
        d: Any = out
        for k in keys:
            if not isinstance(d, dict) or k not in d:
                return None
            d = d[k]
        return d

    t: dict[str, Any] = {}

    def target(name: str, value: Any, goal: str, ok: Callable[[Any], bool]) -> None:
        t[name] = {"value": value, "target": goal, "met": None if value is None else bool(ok(value))}

    target("real_time_720p", get("pipeline_720p", "real_time_factor"), ">= 1.0x", lambda v: v >= 1.0)
    target("pipeline_efficiency_720p", get("pipeline_720p", "pipeline_efficiency"), ">= 0.85", lambda v: v >= 0.85)
    target("onnx_over_torch", get("onnx_vs_torch", "onnx_over_torch"), ">= 1.5x", lambda v: v >= 1.5)
    target("int8_speedup", get("int8_vs_fp32", "int8_speedup"), ">= 1.8x", lambda v: v >= 1.8)
    target("int8_max_abs_delta_score", get("int8_vs_fp32", "max_abs_delta_fake_score"), "<= 0.05",
           lambda v: v <= 0.05)
    target("width64_crops_per_s_per_core", get("width64", "best_crops_per_s_per_core"), ">= 0.54",
           lambda v: v >= 0.54)
    target("gui_seek_p95_ms", get("gui", "seek_p95_ms"), "<= 50 ms", lambda v: v <= 50)
    stall = get("gui", "longest_stall_during_analysis_ms")
    target("gui_longest_stall_ms", stall, "<= 50 ms", lambda v: v <= 50)
    target("rss_flat_mb_growth", get("peak_rss_vs_length", "peak_rss_growth_mb_first_to_last"),
           "small vs clip length", lambda v: v <= 64)
    return t


def main(argv: list[str] | None = None) -> int:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer frames; skip the width-64 model and the GUI")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--model", default=None, help="fp32 model (default: the bundled one)")
    ap.add_argument("--int8-model", default=None, help="int8 model (default: bundled, else quantised in the run)")
    ap.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    ap.add_argument("--batch", type=int, default=8, help="pipeline batch size (default 8)")
    ap.add_argument("--skip", nargs="*", default=[], help="sections to skip: stages e2e precision torch width64 gui rss")
    ap.add_argument("--package-root", default=None, help="measure the deepyn_gui package found in this folder")
    ap.add_argument("--label", default="", help="a note stored in the JSON (e.g. which commit --package-root holds)")
    ap.add_argument("--rss-child", nargs=4, default=None, help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--gui-child"]:
        _setup_path(None)
        try:
            return gui_child(argv[1:])
        except SystemExit as exc:
            return int(exc.code or 0)
    ARGS = ap.parse_args(argv)
    _setup_path(ARGS.package_root)
    if ARGS.rss_child:
        clip, stride, model, threads = ARGS.rss_child
        rss_child(clip, int(stride), model, int(threads))
        return 0

    import deepyn_gui
    from deepyn_gui.backends import default_model_path

    model = ARGS.model or str(default_model_path())
    int8 = ARGS.int8_model or (str(default_model_path(int8=True)) if default_model_path(int8=True).is_file() else None)
    skip = set(ARGS.skip) | ({"width64", "gui"} if ARGS.quick else set())
    out: dict[str, Any] = {
        "suite": "deepyn bench/run_all.py",
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "package": str(Path(deepyn_gui.__file__).parent),
        "label": ARGS.label,
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=ROOT, check=False).stdout.strip(),
        "model": {"path": model, "width": model_width(model)},
        "load_avg_start": load(),
    }
    try:
        from deepyn_gui.core.model.metadata import read_model_info

        mi = read_model_info(model)
        out["model"].update({"name": mi.name, "trained": mi.trained, "sha256": mi.sha256[:16]})
    except Exception as exc:  # noqa: BLE001
        out["model"]["error"] = str(exc)
    n720, n1080 = (75, 50) if ARGS.quick else (200, 100)
    with tempfile.TemporaryDirectory(prefix="deepyn-bench-") as td:
        tmp = Path(td)
        clip720 = make_face_clip(tmp / "face_720p.mp4", 1280, 720, n720)
        clip1080 = make_face_clip(tmp / "face_1080p.mp4", 1920, 1080, n1080)
        if "e2e" not in skip:
            section("pipeline_720p", lambda: bench_stages_and_e2e(clip720, 25, model, ARGS.threads, ARGS.batch), out)
            section("pipeline_1080p", lambda: bench_stages_and_e2e(clip1080, 25, model, ARGS.threads, ARGS.batch),
                    out)
        if "precision" not in skip:
            section("int8_vs_fp32", lambda: bench_precision(model, int8, ARGS.threads, ARGS.batch, tmp), out)
        if "torch" not in skip:
            section("onnx_vs_torch", lambda: bench_onnx_vs_torch(model, ARGS.threads, ARGS.batch), out)
        if "width64" not in skip:
            section("width64", lambda: bench_width64(tmp, [1, 2]), out)
        if "gui" not in skip:
            section("gui", lambda: bench_gui(model, ARGS.quick), out)
        if "rss" not in skip:
            mins = [0.5, 1, 2] if ARGS.quick else [1, 4, 10]
            section("peak_rss_vs_length", lambda: bench_rss(tmp, mins, model, ARGS.threads, 25), out)
    out["load_avg_end"] = load()
    out["targets"] = evaluate(out)
    text = json.dumps(out, indent=1)
    print(text)
    if ARGS.out:
        Path(ARGS.out).parent.mkdir(parents=True, exist_ok=True)
        Path(ARGS.out).write_text(text + "\n")
    print("\n{:<34} {:>12} {:>10}  {}".format("target", "value", "goal", "met"), file=sys.stderr)
    for name, t in out["targets"].items():
        print(f"{name:<34} {t['value']!s:>12} {t['target']:>10}  {t['met']}", file=sys.stderr)
    for key in ("pipeline_720p", "pipeline_1080p"):
        p = out.get(key, {})
        if "decode_fps" in p:
            print(f"{key}: decode {p['decode_fps']} fps, detector {p['detector_fps']} fps, detect stage "
                  f"{p['detect_fps']} fps, infer "
                  f"{p['infer_crops_per_s']} crops/s, end-to-end {p['end_to_end_fps']} fps "
                  f"(x{p['real_time_factor']} real time, efficiency {p['pipeline_efficiency']}, slowest "
                  f"{p['slowest_stage']}), load {p['load_avg_before'][0]}", file=sys.stderr)
    return 0


ARGS: argparse.Namespace


if __name__ == "__main__":
    raise SystemExit(main())
