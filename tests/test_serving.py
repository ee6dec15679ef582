"""The remote backend against real ``deepyn serve`` processes (kserve ModelServer) on 127.0.0.1.

These need the ``serve`` and ``remote`` extras (kserve, tritonclient[http]); the dev extra installs them.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("kserve")
pytest.importorskip("tritonclient.http")

from media import astronaut_clip_frames, write_clip
from serving_support import LocalServer, free_port, start_servers

from deepyn_gui.backends import create_backend, parse_backend_spec, split_backend_list
from deepyn_gui.core.errors import BackendError, InputError
from deepyn_gui.core.pipeline import AnalysisSettings, analyze
from deepyn_gui.core.results import decompress_mask
from deepyn_gui.serving import contract

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    (s,) = start_servers(1)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("serve") / "face.mp4", astronaut_clip_frames(16, face_px=80))


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    b = create_backend("onnx", threads=1, batch_size=8)
    yield b
    b.close()


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def test_health_and_metadata_state_the_interface(server: LocalServer) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/uynet/ready"):
        with urllib.request.urlopen(server.url + path, timeout=10) as r:
            assert r.status == 200, path
    with urllib.request.urlopen(server.url + "/v2/models/uynet", timeout=10) as r:
        meta = json.load(r)
    assert contract.check_metadata(meta) is None
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 224, 224]}]


def test_a_hand_written_json_request_gets_the_documented_outputs(server: LocalServer, local: Any) -> None:
    crops = _crops(2, seed=1)
    x = contract.crops_to_input(crops)
    body = {"id": "by-hand", "inputs": [{"name": "image", "datatype": "FP32", "shape": list(x.shape),
                                         "data": x.ravel().tolist()}]}
    req = urllib.request.Request(server.url + "/v2/models/uynet/infer", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        resp = json.load(r)
    assert resp["id"] == "by-hand" and resp["model_name"] == "uynet"
    outs = {o["name"]: o for o in resp["outputs"]}
    assert outs["mask_prob"]["shape"] == [2, 224, 224] and outs["mask_prob"]["datatype"] == "FP32"
    assert outs["fake_score"]["shape"] == [2]
    mask = np.asarray(outs["mask_prob"]["data"], np.float32).reshape(2, 224, 224)
    score = np.asarray(outs["fake_score"]["data"], np.float32)
    want_mask, want_score = local.infer(crops)
    np.testing.assert_allclose(score, want_score, atol=1e-5)
    np.testing.assert_allclose(mask, want_mask, atol=1e-5)
    info = contract.model_info_from_parameter(resp["parameters"][contract.PARAM_MODEL_INFO])
    assert info.sha256 == local.model_info.sha256


def test_bad_requests_are_refused_with_a_reason(server: LocalServer) -> None:
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": [0.5] * 192}]}
    req = urllib.request.Request(server.url + "/v2/models/uynet/infer", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 400
    assert "shape" in err.value.read().decode()
    # binary extension: a tensor shorter than it claims is refused too (our fast parser path)
    head = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 224, 224],
                                   "parameters": {"binary_data_size": 602112}}]}).encode()
    req = urllib.request.Request(server.url + "/v2/models/uynet/infer", data=head + b"\0" * 1000, headers={
        "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 400


def test_remote_equals_local_onnx_crop_for_crop(server: LocalServer, local: Any) -> None:
    remote = create_backend(f"remote:url={server.url},model=uynet", batch_size=8)
    try:
        crops = _crops(11, seed=2)
        m_r, s_r = remote.infer(crops)
        m_l, s_l = local.infer(crops)
        np.testing.assert_allclose(s_r, s_l, atol=1e-5)
        np.testing.assert_allclose(m_r, m_l, atol=1e-5)
        assert remote.model_info.sha256 == local.model_info.sha256
        assert remote.model_info.bands == local.model_info.bands
        t = remote.timing.to_json()
        assert t["requests"] >= 2 and t["network_s"] is not None and t["server_infer_s"] > 0
    finally:
        remote.close()


def test_deepyn_analyze_through_remote_matches_local(server: LocalServer, clip: Path, tmp_path: Path) -> None:
    from deepyn_gui.cli import main

    assert main(["analyze", str(clip), "-q", "--json", str(tmp_path / "l.json")]) == 0
    # --no-cache: the local run's saved analysis (same model and settings) would otherwise be reused
    assert main(["analyze", str(clip), "-q", "--no-cache", "--backend", f"remote:url={server.url}",
                 "--json", str(tmp_path / "r.json")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("l.json", "r.json"))
    fa = [f for fr in a["frames"] for f in fr["faces"]]
    fb = [f for fr in b["frames"] for f in fr["faces"]]
    assert len(fa) == len(fb) >= 16
    assert all(f["state"] == "ok" for f in fb)
    assert max(abs(x["fake_score"] - y["fake_score"]) for x, y in zip(fa, fb)) <= 1e-5
    assert b["backend"]["name"] == "remote" and b["model"]["sha256"] == a["model"]["sha256"]
    # the masks too (stored as 8-bit PNG: equal inputs give equal bytes)
    local = create_backend("onnx", threads=1)
    remote = create_backend(f"remote:url={server.url}")
    try:
        settings = AnalysisSettings(batch_size=8)
        ra, rb = analyze(str(clip), local, settings), analyze(str(clip), remote, settings)
    finally:
        local.close()
        remote.close()
    for x, y in zip([f for fr in ra.frames for f in fr.faces], [f for fr in rb.frames for f in fr.faces]):
        assert x.mask_blob is not None and y.mask_blob is not None
        assert np.array_equal(decompress_mask(x.mask_blob), decompress_mask(y.mask_blob))


def test_pool_loses_no_frame_when_one_server_dies_and_errors_when_both_do(clip: Path, local: Any) -> None:
    a, b = start_servers(2)
    try:
        pool = create_backend(f"remote:url={a.url},url={b.url},model=uynet", batch_size=4)
        killed = threading.Event()

        def kill_b(_frame: Any) -> None:
            if not killed.is_set():
                killed.set()
                b.kill()

        settings = AnalysisSettings(batch_size=4)
        try:
            result = analyze(str(clip), pool, settings, on_frame=kill_b)
            faces = [f for fr in result.frames for f in fr.faces]
            assert killed.is_set() and len(result.frames) == 16
            assert [f.state for f in faces] == ["ok"] * len(faces), [f.error for f in faces if f.error]
            dead = next(e for e in pool.endpoints if e.url == b.url)  # type: ignore[attr-defined]
            assert dead.failures >= 1  # it was asked after dying: those batches were retried on a
            want = analyze(str(clip), local, settings)
            got_s = [f.fake_score for f in faces]
            want_s = [f.fake_score for fr in want.frames for f in fr.faces]
            assert np.allclose(got_s, want_s, atol=1e-5)
            a.kill()
            down = analyze(str(clip), pool, settings)
        finally:
            pool.close()
        dfaces = [f for fr in down.frames for f in fr.faces]
        assert dfaces and all(f.state == "error" and f.fake_score is None for f in dfaces)
        assert "no remote endpoint answered" in (dfaces[0].error or "")
        assert down.verdict.fake_score is None and down.verdict.label == "error"
        assert "no remote endpoint answered" in down.verdict.explanation  # the message a user reads
    finally:
        a.stop()
        b.stop()


def test_no_ready_endpoint_refuses_in_one_line() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError) as err:
        create_backend(f"remote:url={dead}")
    assert "no remote endpoint is ready" in str(err.value) and "\n" not in str(err.value)


def test_a_model_the_server_does_not_serve_is_refused(server: LocalServer) -> None:
    with pytest.raises(BackendError, match="not ready"):
        create_backend(f"remote:url={server.url},model=other")


def test_contract_check_names_the_mismatch() -> None:
    good = {"inputs": [contract.INPUT.to_json()], "outputs": [t.to_json() for t in contract.OUTPUTS]}
    assert contract.check_metadata(good) is None
    bad = json.loads(json.dumps(good))
    bad["inputs"][0]["shape"] = [-1, 3, 256, 256]
    assert "shape [-1, 3, 256, 256]" in (contract.check_metadata(bad) or "")
    bad = json.loads(json.dumps(good))
    bad["outputs"] = bad["outputs"][:1]
    assert "no output 'fake_score'" in (contract.check_metadata(bad) or "")
    bad = json.loads(json.dumps(good))
    bad["inputs"][0]["datatype"] = "UINT8"
    assert "UINT8" in (contract.check_metadata(bad) or "")


def test_token_comes_from_env_or_file_never_the_command_line(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="token_env"):
        create_backend(f"remote:url={server.url},token=s3cret")
    monkeypatch.setenv("DEEPYN_TEST_TOKEN", "s3cret-env")
    b = create_backend(f"remote:url={server.url},token_env=DEEPYN_TEST_TOKEN")
    try:
        assert b._headers() == {"Authorization": "Bearer s3cret-env"}  # type: ignore[attr-defined]
        assert "s3cret" not in json.dumps(b.describe())
    finally:
        b.close()
    (tmp_path / "tok").write_text("s3cret-file\n")
    b = create_backend(f"remote:url={server.url},token_file={tmp_path / 'tok'}")
    try:
        assert b._headers() == {"Authorization": "Bearer s3cret-file"}  # type: ignore[attr-defined]
        assert "s3cret" not in json.dumps(b.describe())
    finally:
        b.close()
    with pytest.raises(InputError, match="not set"):
        create_backend(f"remote:url={server.url},token_env=DEEPYN_UNSET_VARIABLE_X")


def test_backend_specs_keep_urls_whole() -> None:
    name, opts = parse_backend_spec("remote:url=http://a:8080,url=https://b:8443,model=uynet:timeout=5")
    assert name == "remote"
    assert opts == {"url": ["http://a:8080", "https://b:8443"], "model": ["uynet"], "timeout": ["5"]}
    assert split_backend_list("onnx,remote:url=http://a:1,url=http://b:2,onnx-int8") == [
        "onnx", "remote:url=http://a:1,url=http://b:2", "onnx-int8"]
    with pytest.raises(InputError):
        create_backend("remote:url=http://user:pw@host:1")


def test_deepyn_backends_shows_each_endpoint(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    from deepyn_gui.cli import main

    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["backends", "--remote", f"url={server.url},url={dead}"]) == 3
    out = capsys.readouterr().out
    assert f"{server.url}" in out and "ready" in out
    assert f"{dead}" in out and "NOT READY" in out


@pytest.fixture(scope="module")
def server2() -> Iterator[LocalServer]:
    (s,) = start_servers(1)
    yield s
    s.stop()


def test_batch_of_ten_clips_over_two_endpoints_resumes_after_an_interrupt(
    server: LocalServer, server2: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from deepyn_gui.cli import main
    from deepyn_gui.core import batch as batch_mod

    monkeypatch.setenv("DEEPYN_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "in" / "deeper").mkdir(parents=True)
    for i in range(10):
        where = tmp_path / "in" / ("deeper" if i % 2 else "")
        write_clip(where / f"c{i}.mp4", astronaut_clip_frames(4, face_px=60 + 4 * i))
    spec = f"remote:url={server.url},url={server2.url}"
    args = ["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--backend", spec, "-q"]

    real_run = batch_mod.run_batch
    finished: list[str] = []

    def interrupting_run(*a: Any, **kw: Any) -> Any:  # Ctrl+C after 4 clips have finished
        inner = kw.pop("on_item")

        def on_item(i: int, item: Any) -> None:
            inner(i, item)
            if item.state == "done":
                finished.append(item.clip)
                if len(finished) == 4:
                    raise KeyboardInterrupt

        return real_run(*a, on_item=on_item, **kw)

    monkeypatch.setattr(batch_mod, "run_batch", interrupting_run)
    assert main(args) == 130
    first = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert first["parallel"] == 2
    done_first = {c["clip"] for c in first["clips"] if c["state"] == "done"}
    assert len(done_first) >= 4
    monkeypatch.setattr(batch_mod, "run_batch", real_run)
    assert main(args) == 0
    out = capsys.readouterr().out
    second = json.loads((tmp_path / "out" / "summary.json").read_text())
    states = {c["clip"]: c["state"] for c in second["clips"]}
    assert len(states) == 10
    assert {c for c, s in states.items() if s == "cached"} == done_first  # not redone
    assert {c for c, s in states.items() if s == "done"} == set(states) - done_first  # only the rest
    scores = [c["fake_score"] for c in second["clips"]]
    assert scores == sorted(scores, reverse=True)
    assert f"{10 - len(done_first)} analysed, {len(done_first)} from the cache" in out
    assert "index.html" in out and (tmp_path / "out" / "index.html").is_file()


def test_compare_local_against_remote_shows_network_apart(
    server: LocalServer, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepyn_gui.cli import main

    rc = main(["compare", str(clip), "-q", "--backends", f"onnx:threads=1,remote:url={server.url}:label=server",
               "--json", str(tmp_path / "c.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "server inference" in out and "network + queues" in out
    doc = json.loads((tmp_path / "c.json").read_text())
    remote = next(b for b in doc["summary"]["backends"] if b["label"] == "server")
    local = next(b for b in doc["summary"]["backends"] if b["label"] == "onnx@1t")
    assert local["server_infer_s"] is None and local["network_s"] is None  # local: no split invented
    assert 0 < remote["server_infer_s"] <= remote["infer_s"]
    assert remote["network_s"] == pytest.approx(remote["infer_s"] - remote["server_infer_s"], abs=1e-3)
    assert doc["summary"]["agreement"]["server"]["max_abs_score_diff"] <= 1e-5


def test_tls_with_the_servers_ca_and_refused_without(tmp_path: Path, local: Any) -> None:
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    (s,) = start_servers(1, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    try:
        assert s.url.startswith("https://")
        with pytest.raises(BackendError, match="no remote endpoint is ready"):
            create_backend(f"remote:url={s.url},timeout=10")  # a certificate nobody vouched for
        crops = _crops(3, seed=5)
        for spec in (f"remote:url={s.url},ca={cert}", f"remote:url={s.url},insecure=1"):
            b = create_backend(spec)
            try:
                _m, score = b.infer(crops)
            finally:
                b.close()
            np.testing.assert_allclose(score, local.infer(crops)[1], atol=1e-5)
    finally:
        s.stop()


def test_a_hung_endpoint_times_out_and_its_piece_is_retried(server: LocalServer, local: Any) -> None:
    import socket

    hung = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # accepts connections, never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    try:
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        pool = create_backend(f"remote:url={server.url},url={url},timeout=1.5", batch_size=8)
        try:
            stuck = next(e for e in pool.endpoints if e.url == url)  # type: ignore[attr-defined]
            assert stuck.last_error  # found not ready when the pool was built
            stuck.down_until = 0.0  # ask it anyway: half of the next batch goes to it
            crops = _crops(8, seed=6)
            _m, score = pool.infer(crops)
            assert stuck.failures >= 1 and "imeout" in stuck.last_error or "timed out" in stuck.last_error
            np.testing.assert_allclose(score, local.infer(crops)[1], atol=1e-5)
        finally:
            pool.close()
    finally:
        hung.close()


def test_grpc_port_serves_the_same_model(tmp_path: Path) -> None:
    import subprocess
    import sys

    grpc_port = free_port()
    (s,) = start_servers(1, "--grpc-port", str(grpc_port))
    # kserve's own gRPC stubs, in a child process (its protos and tritonclient's cannot share one)
    code = f"""
import sys, grpc, numpy as np
sys.argv = sys.argv[:1]
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as rpc
ch = grpc.insecure_channel("127.0.0.1:{grpc_port}")
grpc.channel_ready_future(ch).result(timeout=30)
stub = rpc.GRPCInferenceServiceStub(ch)
assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="uynet"), timeout=30)
x = np.full((1, 3, 224, 224), 0.5, np.float32)
req = pb.ModelInferRequest(model_name="uynet", id="g1", inputs=[pb.ModelInferRequest.InferInputTensor(
    name="image", datatype="FP32", shape=[1, 3, 224, 224])], raw_input_contents=[x.tobytes()])
resp = stub.ModelInfer(req, timeout=60)
score = np.frombuffer(resp.raw_output_contents[[o.name for o in resp.outputs].index("fake_score")], np.float32)
print(meta.inputs[0].name, list(meta.inputs[0].shape), float(score[0]))
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    finally:
        s.stop()
    assert out.returncode == 0, out.stderr[-2000:]
    name, shape, score = out.stdout.split(maxsplit=2)[0], out.stdout.split("]")[0] + "]", float(out.stdout.split()[-1])
    assert name == "image" and "[-1, 3, 224, 224]" in shape and 0.0 <= score <= 1.0
