"""Bad model files through the CLI a user types: ``deepyn analyze --model`` and ``deepyn models import/info``.

The loaders themselves are tested in ``test_model.py`` and ``tests/test_backends.py``; here the point is
what reaches the user: exit code 2 and one clear line, no traceback, nothing written, no code run
from a pickle. A model that loads but computes garbage must give ``error`` frames, never a score.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from deepyn_gui.cli import main as cli_main
from deepyn_gui.core.verdict import verdict_words
from tests.media import astronaut_clip_frames, write_clip

UNTRAINED = "deepyn: warning: the model is UNTRAINED; its scores mean nothing."


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("bad_models") / "face.mp4",
                      astronaut_clip_frames(4, 320, 240, face_px=90), fps=25)


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    rc = cli_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(rc: int, err: str, pattern: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and ln.strip() != UNTRAINED]
    assert rc == 2, (rc, err)
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("deepyn: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def _onnx_model(path: Path, *, inputs: list[tuple[str, list]], outputs: list[tuple[str, list]], nodes: list,
                metadata: dict[str, str] | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path


def _interface_ok_model(path: Path, fake_score_nodes: list, score_name: str) -> Path:
    """U-YNet's interface (image -> mask_prob, fake_score) around a trivial graph."""
    from onnx import helper

    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mask_prob"], axes=[1], keepdims=0),
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=0),
        *fake_score_nodes,
        helper.make_node("Identity", [score_name], ["fake_score"]),
    ]
    return _onnx_model(path, inputs=[("image", ["N", 3, 224, 224])],
                       outputs=[("mask_prob", ["N", 224, 224]), ("fake_score", ["N"])], nodes=nodes,
                       metadata={"deepyn.name": "garbage-model", "deepyn.trained": "true"})


# ------------------------------------------------------------------------------------------------
# deepyn analyze --model
# ------------------------------------------------------------------------------------------------


def test_analyze_with_a_missing_model(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _out, err = run(capsys, "analyze", clip, "--model", tmp_path / "absent.onnx", "-q")
    one_error_line(rc, err, r"model file not found: .*absent\.onnx")
    rc, _out, err = run(capsys, "analyze", clip, "--model", tmp_path, "-q")  # a folder
    one_error_line(rc, err, r"is a folder, not a file")


@pytest.mark.parametrize("content", [b"", b"this is a text file, not a model\n" * 10, b"GIF89a" + bytes(300)])
def test_analyze_with_a_file_that_is_not_onnx(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              content: bytes) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(content)
    rc, _out, err = run(capsys, "analyze", clip, "--model", model, "-q")
    one_error_line(rc, err, r"model\.onnx cannot be loaded as an ONNX model")


def test_analyze_with_a_truncated_onnx(clip: Path, tmp_path: Path, tiny_onnx_model: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.onnx"
    data = tiny_onnx_model.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    rc, _out, err = run(capsys, "analyze", clip, "--model", cut, "-q")
    one_error_line(rc, err, r"cut\.onnx cannot be loaded as an ONNX model")


def test_analyze_with_a_torch_checkpoint_as_model(clip: Path, tmp_path: Path, torch_threads: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from deepyn_gui.core.model.uynet import UYNet

    pth = tmp_path / "checkpoint.pth"
    torch.save(UYNet(2).state_dict(), pth)
    rc, _out, err = run(capsys, "analyze", clip, "--model", pth, "-q")
    one_error_line(rc, err, r"checkpoint\.pth cannot be loaded as an ONNX model")


def test_analyze_with_wrong_inputs_or_outputs(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from onnx import helper

    wrong_names = _onnx_model(tmp_path / "classifier.onnx", inputs=[("pixels", ["N", 3, 224, 224])],
                              outputs=[("logits", ["N", 3, 224, 224])],
                              nodes=[helper.make_node("Relu", ["pixels"], ["logits"])])
    rc, _out, err = run(capsys, "analyze", clip, "--model", wrong_names, "-q")
    line = one_error_line(rc, err, r"not a U-YNet model")
    assert "pixels" in line and "logits" in line and "image" in line

    small = _onnx_model(tmp_path / "uynet112.onnx", inputs=[("image", ["N", 3, 112, 112])],
                        outputs=[("mask_prob", ["N", 112, 112]), ("fake_score", ["N"])],
                        nodes=[helper.make_node("ReduceMean", ["image"], ["mask_prob"], axes=[1], keepdims=0),
                               helper.make_node("ReduceMean", ["image"], ["fake_score"], axes=[1, 2, 3],
                                                keepdims=0)])
    rc, _out, err = run(capsys, "analyze", clip, "--model", small, "-q")
    assert "112" in one_error_line(rc, err, r"not a U-YNet model.*expected input image float \[N,3,224,224\]")

    one_output = _onnx_model(tmp_path / "mask_only.onnx", inputs=[("image", ["N", 3, 224, 224])],
                             outputs=[("mask_prob", ["N", 224, 224])],
                             nodes=[helper.make_node("ReduceMean", ["image"], ["mask_prob"], axes=[1], keepdims=0)])
    rc, _out, err = run(capsys, "analyze", clip, "--model", one_output, "-q")
    one_error_line(rc, err, r"not a U-YNet model")


@pytest.mark.parametrize("garbage", ["nan", "out_of_range"])
def test_a_model_that_computes_garbage_gives_errors_not_scores(clip: Path, tmp_path: Path, garbage: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Right interface, wrong numbers: every face is an error, the verdict has no score, nothing is invented."""
    from onnx import helper

    if garbage == "nan":  # (m - m) / (m - m) = 0 / 0
        nodes = [helper.make_node("Sub", ["mean", "mean"], ["zero"]), helper.make_node("Div", ["zero", "zero"], ["s"])]
    else:  # 3 + mean: a logit-like value > 1 where a probability was promised
        nodes = [helper.make_node("Constant", [], ["three"], value_float=3.0),
                 helper.make_node("Add", ["mean", "three"], ["s"])]
    model = _interface_ok_model(tmp_path / f"{garbage}.onnx", nodes, "s")
    out_json = tmp_path / "r.json"
    rc, out, err = run(capsys, "analyze", clip, "--model", model, "-q", "--threads", "1", "--json", out_json)
    assert rc == 0 and "Traceback" not in err, err
    assert out.startswith(f"{verdict_words('error')} (fake score —"), out
    assert out.splitlines()[0].endswith(f": {clip}"), out
    js = json.loads(out_json.read_text())
    faces = [f for fr in js["frames"] for f in fr["faces"]]
    assert faces and all(f["state"] == "error" and f["fake_score"] is None for f in faces)
    expected = "NaN or infinite fake scores" if garbage == "nan" else "fake scores outside [0, 1]"
    assert all(expected in fr["error"] for fr in js["frames"])
    assert js["verdict"]["label"] == "error" and js["verdict"]["fake_score"] is None


def test_models_info_on_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xff" * 100)
    rc, _out, err = run(capsys, "models", "info", junk)
    one_error_line(rc, err, r"junk\.onnx is not a readable ONNX model")
    rc, _out, err = run(capsys, "models", "info", tmp_path / "absent.onnx")
    one_error_line(rc, err, r"model file not found")


def test_int8_backend_without_its_model(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deepyn_gui.backends import default_model_path

    if default_model_path(int8=True).is_file():
        pytest.skip("the bundled int8 model is present here")
    rc, _out, err = run(capsys, "analyze", clip, "--backend", "onnx-int8", "-q")
    one_error_line(rc, err, r"backend onnx-int8 is unavailable: the bundled int8 model is missing")


# ------------------------------------------------------------------------------------------------
# deepyn models import CHECKPOINT.pth
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def torch_mod(torch_threads: None):  # type: ignore[no-untyped-def]
    import torch

    return torch


def test_import_refuses_a_pickle_payload_and_never_runs_it(tmp_path: Path, torch_mod,  # type: ignore[no-untyped-def]
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.mkdir, (str(marker),))

    from deepyn_gui.core.model.uynet import UYNet

    sd = UYNet(2).state_dict()
    sd["extra"] = Payload()  # type: ignore[assignment]
    evil = tmp_path / "evil.pth"
    torch_mod.save(sd, evil)
    out = tmp_path / "out.onnx"
    rc, _, err = run(capsys, "models", "import", evil, "--out", out)
    line = one_error_line(rc, err, r"evil\.pth was refused: torch\.load\(weights_only=True\)")
    assert "pickle payload" in line and "GLOBAL posix.mkdir" in line  # names what was blocked
    assert not marker.exists(), "the pickle payload ran"
    assert not out.exists()


def test_import_refuses_wrong_keys(tmp_path: Path, torch_mod, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from deepyn_gui.core.model.uynet import UYNet

    sd = UYNet(2).state_dict()
    sd["head.weight"] = sd.pop("linear_2.weight")
    bad = tmp_path / "renamed.pth"
    torch_mod.save(sd, bad)
    out = tmp_path / "out.onnx"
    rc, _, err = run(capsys, "models", "import", bad, "--out", out)
    line = one_error_line(rc, err, r"renamed\.pth")
    assert "linear_2.weight" in line and "head.weight" in line
    assert not out.exists() and not list(tmp_path.glob("*.part"))

    rc, _, err = run(capsys, "models", "import", bad.with_name("absent.pth"), "--out", out)
    one_error_line(rc, err, r"not found")


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "whole_module"])
def test_import_refuses_unreadable_checkpoints(tmp_path: Path, torch_mod, kind: str,  # type: ignore[no-untyped-def]
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from deepyn_gui.core.model.uynet import UYNet

    path = tmp_path / f"{kind}.pth"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("a checkpoint, honest\n")
    elif kind == "truncated":
        torch_mod.save(UYNet(2).state_dict(), path)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        torch_mod.save(UYNet(2), path)  # the whole module pickled, not a state_dict
    rc, _, err = run(capsys, "models", "import", path, "--out", tmp_path / "out.onnx")
    one_error_line(rc, err, rf"{kind}\.pth")
    assert not (tmp_path / "out.onnx").exists()


def test_import_into_a_missing_folder(tmp_path: Path, torch_mod, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from deepyn_gui.core.model.uynet import UYNet

    good = tmp_path / "good.pth"
    torch_mod.save(UYNet(2).state_dict(), good)
    rc, _, err = run(capsys, "models", "import", good, "--out", tmp_path / "no" / "such" / "dir" / "m.onnx")
    one_error_line(rc, err, r"folder .* does not exist")
