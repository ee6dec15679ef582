"""``deepyn demo``: the project's own demo clip, its ground truth, and the headless first run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from deepyn_gui.cli import main as cli_main
from deepyn_gui.core import demo as core_demo
from deepyn_gui.core.demo import DemoSpec, build_scene, companion_paths, load_masks, render_frames
from deepyn_gui.core.results import CROP_SIZE


@pytest.fixture(scope="module")
def scene():
    return build_scene(seed=0)


def test_scene_blend_is_the_training_self_blend(scene):
    """The manipulated face is exactly training's SBI of the app's 224 px crop (same seed -> same pixels)."""
    from deepyn_gui.core.faces import crop_transform_for_box, extract_crop
    from deepyn_gui.core.training.sbi import self_blend

    x0, y0, side = scene.crop
    assert side == CROP_SIZE  # the portrait is scaled so the crop is a plain copy: the blend goes back bit-exact
    t = crop_transform_for_box(scene.face_box, margin=1.3)
    crop = extract_crop(scene.clean, t)
    x, y, w, h = scene.face_box
    box = np.array([x - t.x0, y - t.y0, w, h], np.float32) * t.scale
    sb = self_blend(crop, box, np.random.default_rng(0))
    xi, yi = int(x0), int(y0)
    np.testing.assert_array_equal(scene.fake[yi : yi + CROP_SIZE, xi : xi + CROP_SIZE], sb.image)
    np.testing.assert_array_equal(scene.alpha[yi : yi + CROP_SIZE, xi : xi + CROP_SIZE], sb.alpha)
    # nothing else on the canvas changed
    outside = scene.alpha == 0
    np.testing.assert_array_equal(scene.fake[outside], scene.clean[outside])
    assert (scene.alpha > 0).sum() > 5000


def test_manipulated_frames_differ_from_the_clean_render_only_inside_the_mask(scene):
    spec = DemoSpec(frames=12, span=(4, 8))
    seen = []
    for fr in render_frames(spec, scene):
        assert fr.rgb.shape == (720, 1280, 3) and fr.rgb.dtype == np.uint8
        if 4 <= fr.index < 8:
            assert fr.alpha is not None
            changed = np.any(fr.rgb != fr.clean, axis=2)
            inside = fr.alpha > 0
            assert changed.any()
            assert not (changed & ~inside).any(), f"frame {fr.index} changed outside its mask"
            assert inside.sum() > 5000  # the face is in view and the mask is not a speck
            diff = np.abs(fr.rgb.astype(np.int16) - fr.clean.astype(np.int16)).mean(axis=2)
            assert diff[fr.alpha > 0.5].mean() > 2.0  # a visible change, not rounding noise
            seen.append(fr.index)
        else:
            assert fr.alpha is None
            np.testing.assert_array_equal(fr.rgb, fr.clean)
    assert seen == [4, 5, 6, 7]


def test_camera_moves_smoothly_and_keeps_the_face_in_view(scene):
    spec = DemoSpec()
    x, y, w, h = scene.face_box
    centre = (x + w / 2, y + h / 2)
    prev = None
    for i in range(spec.frames):
        cx, cy, z = core_demo.camera(i, spec, centre)
        m = core_demo.camera_matrix(cx, cy, z, spec.width, spec.height)
        corners = np.array([[x, y, 1], [x + w, y + h, 1]]) @ m.T
        assert (corners[:, 0] > 0).all() and (corners[:, 0] < spec.width).all()
        assert (corners[:, 1] > 0).all() and (corners[:, 1] < spec.height).all()
        if prev is not None:  # no jumps: under 6 px of face motion and 1 % of zoom per frame
            assert abs(corners[0, 0] - prev[0][0, 0]) < 6 and abs(corners[0, 1] - prev[0][0, 1]) < 6
            assert abs(z - prev[1]) < 0.01
        prev = (corners, z)
    zooms = [core_demo.camera(i, spec, centre)[2] for i in range(spec.frames)]
    assert max(zooms) - min(zooms) > 0.2  # it really zooms


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    rc = cli_main(["demo", "--no-open", "--out", str(out), "-q"])
    assert rc == 0
    return out / core_demo.CLIP_NAME


@pytest.mark.slow
def test_cli_writes_clip_with_expected_frames_fps_and_ground_truth(written):
    from deepyn_gui.core.video import VideoSource

    with VideoSource(str(written)) as src:
        info = src.info
        assert (info.frames, info.width, info.height) == (225, 1280, 720)
        assert info.fps == pytest.approx(25.0)
        assert info.codec == "h264"
    manifest, masks = companion_paths(written)
    m = json.loads(manifest.read_text())
    assert m["manipulated_frames"] == list(range(75, 150))
    assert m["manipulated_span"]["start_s"] == 3.0 and m["manipulated_span"]["stop_s"] == 6.0
    assert m["clip_bytes"] == written.stat().st_size
    frames, alpha = load_masks(written)
    assert frames.tolist() == m["manipulated_frames"]
    assert alpha.shape == (75, 720, 1280) and alpha.dtype == np.uint8
    areas = (alpha > 0).reshape(75, -1).sum(axis=1)
    assert (areas > 5000).all()
    # the stored mask is the filmed blend weight: it matches a fresh render of the same frame
    spec = DemoSpec()
    for fr in render_frames(spec):
        if fr.index == 100:
            np.testing.assert_array_equal(alpha[25] > 0, fr.alpha > 0)
            break
    assert masks.stat().st_size < 5_000_000


@pytest.mark.slow
def test_decoded_clip_shows_the_rendered_frames(written):
    """H.264 keeps the picture: decoded frames are close to the renders (PSNR), including the span."""
    from deepyn_gui.core.video import VideoSource

    renders = {fr.index: fr.rgb for fr in render_frames(DemoSpec()) if fr.index in (0, 100, 224)}
    with VideoSource(str(written)) as src:
        for i, want in renders.items():
            got = src.frame_at(i).rgb.astype(np.float64)
            mse = np.mean((got - want) ** 2)
            assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 30, i


@pytest.mark.slow
def test_second_run_reuses_the_clip_and_force_rewrites(written, capsys):
    before = written.stat().st_mtime_ns
    assert cli_main(["demo", "--no-open", "--out", str(written), "-q"]) == 0
    assert "using existing" in capsys.readouterr().out
    assert written.stat().st_mtime_ns == before


@pytest.mark.slow
def test_headless_prints_a_verdict_and_the_truth(written, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    rc = cli_main(["demo", "--out", str(written), "-q", "--stride", "5", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "no display; analysing in the terminal" in out
    verdict = [ln for ln in out.splitlines() if ln.endswith(f": {written}")]  # verdict first, name last
    assert verdict and "fake score" in verdict[0]
    assert "ground truth: frames 75–149 are manipulated" in out
    assert "manipulated frames: mean fake score" in out
    # the bundled model's verdict on its own demo: the 3 s manipulated span decides (span aggregator),
    # and no clean frame reaches the threshold
    assert "UNTRAINED" not in out
    assert "LIKELY MANIPULATED" in verdict[0], out
    clean = re.search(r"clean frames: +mean fake score [0-9.]+, (\d+)/(\d+) at or above", out)
    assert clean and clean.group(1) == "0" and int(clean.group(2)) > 0, out


def test_resolve_out_and_data_dir(tmp_path, monkeypatch):
    from deepyn_gui.commands.demo import resolve_out

    monkeypatch.setenv("DEEPYN_DATA_DIR", str(tmp_path / "data"))
    assert resolve_out(None) == tmp_path / "data" / "demo" / "deepyn-demo.mp4"
    assert resolve_out(str(tmp_path)) == tmp_path / "deepyn-demo.mp4"
    assert resolve_out(str(tmp_path / "new")) == tmp_path / "new" / "deepyn-demo.mp4"
    assert resolve_out(str(tmp_path / "x.mp4")) == tmp_path / "x.mp4"


def test_display_detection(monkeypatch):
    from deepyn_gui.commands.demo import display_available

    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert not display_available()
    monkeypatch.setenv("DISPLAY", ":0")
    assert display_available()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not display_available()


def test_incomplete_demo_is_not_reused(tmp_path):
    clip = tmp_path / "deepyn-demo.mp4"
    clip.write_bytes(b"half a clip")
    manifest, _ = companion_paths(clip)
    manifest.write_text(json.dumps({"demo_version": core_demo.DEMO_VERSION, "clip_bytes": 11}))
    assert core_demo.read_manifest(clip) is None  # the masks are missing


def test_missing_portrait_is_a_clear_error(monkeypatch, tmp_path):
    from deepyn_gui.core.errors import InputError

    monkeypatch.setattr(core_demo, "resource_path", lambda *p: tmp_path.joinpath(*p))
    with pytest.raises(InputError, match="demo portrait"):
        core_demo.load_portrait()


def test_bundled_portrait_matches_its_provenance():
    import hashlib

    from deepyn_gui.resources import resource_path

    p = resource_path("demo", "astronaut.jpg")
    text = (p.parent / "PROVENANCE.md").read_text()
    assert hashlib.sha256(p.read_bytes()).hexdigest() in text
    assert Path(p).stat().st_size < 150_000
