"""``remote``: U-YNet on one or more Open Inference Protocol v2 servers (``deepyn serve``, Triton, KServe,
AMD Inference Server), through tritonclient's HTTP client.

Several URLs form a pool. A batch is split across the endpoints that are up, each piece going to the
endpoint with the fewest requests in flight; results come back in order. A piece that fails is retried
once on another endpoint (the failed one sits out a few seconds); when none answers, ``infer`` raises
BackendError and the pipeline marks those faces ``error`` - never a score. The bearer token comes from an
environment variable or a file, is sent only as a header, and never appears in ``describe()``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..core.errors import BackendError, InputError
from ..core.inference import Availability, check_backend_input, check_backend_output
from ..core.results import CROP_SIZE, ModelInfo
from ..serving import contract

RUNTIME = "tritonclient.http"
COOLDOWN_S = 5.0  # an endpoint that failed is skipped this long while another one is up


def runtime_availability() -> Availability:
    try:
        import tritonclient.http  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError or a broken dependency (gevent)
        return Availability(
            False, f"tritonclient is not installed ({type(exc).__name__}): pip install 'deepyn-gui[remote]'"
        )
    return Availability(True)


@dataclass
class Endpoint:
    """One server of the pool and what the client knows about it."""

    url: str  # scheme://host:port, as shown to users (never credentials)
    host_port: str
    ssl: bool
    outstanding: int = 0
    down_until: float = 0.0
    last_error: str = ""
    requests: int = 0
    failures: int = 0
    order: int = 0


@dataclass
class RemoteTiming:
    """Where the time of remote calls went: server-side inference vs everything else (network, queues)."""

    requests: int = 0
    crops: int = 0
    round_trip_s: float = 0.0
    server_infer_s: float = 0.0
    server_reported: int = 0  # requests whose server said how long inference took
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_json(self) -> dict[str, Any]:
        network = self.round_trip_s - self.server_infer_s if self.server_reported == self.requests else None
        return {
            "requests": self.requests,
            "crops": self.crops,
            "round_trip_s": round(self.round_trip_s, 6),
            "server_infer_s": round(self.server_infer_s, 6) if self.server_reported else None,
            "network_s": None if network is None else round(network, 6),
        }


def parse_url(url: str) -> Endpoint:
    """``http[s]://host:port`` -> Endpoint; InputError for anything else (paths, credentials)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"remote url {url!r} must look like http://host:8080 or https://host:8443")
    if parts.username or parts.password:
        raise InputError("remote url must not hold credentials; use token_env=VAR or token_file=PATH")
    if parts.path not in ("", "/") or parts.query:
        raise InputError(f"remote url {url!r} must be just scheme://host:port (the /v2 paths are added)")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Endpoint(url=f"{parts.scheme}://{host}:{port}", host_port=f"{host}:{port}", ssl=parts.scheme == "https")


def read_token(token_env: str | None, token_file: str | None) -> str | None:
    """The bearer token from an environment variable or a file (never from the command line)."""
    if token_env and token_file:
        raise InputError("give the token either with token_env= or with token_file=, not both")
    if token_env:
        value = os.environ.get(token_env, "").strip()
        if not value:
            raise InputError(f"environment variable {token_env} (token_env) is not set or empty")
        return value
    if token_file:
        try:
            value = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"cannot read token_file {token_file}: {exc.strerror or exc}") from exc
        if not value:
            raise InputError(f"token_file {token_file} is empty")
        return value
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class RemoteBackend:
    """A pool of Open Inference Protocol endpoints behind the InferenceBackend contract."""

    def __init__(
        self,
        urls: list[str],
        model: str = "uynet",
        timeout: float = 20.0,
        token_env: str | None = None,
        token_file: str | None = None,
        ca: str | None = None,
        insecure: bool = False,
        batch_size: int = 8,
        threads: int = 2,
        name: str = "remote",
    ) -> None:
        runtime = runtime_availability()
        if not runtime.available:
            raise BackendError(runtime.reason)
        import tritonclient

        if not urls:
            raise InputError("remote needs at least one url=http://host:port")
        if batch_size < 1:
            raise BackendError(f"batch size must be at least 1, got {batch_size}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise InputError(f"remote timeout must be a positive number of seconds, got {timeout}")
        self.name = name
        self.batch_size = int(batch_size)
        self.threads = int(threads)
        self.model = model
        self.timeout = float(timeout)
        self.endpoints = [parse_url(u) for u in urls]
        if len({e.url for e in self.endpoints}) != len(self.endpoints):
            raise InputError("the same remote url is given twice")
        self._token = read_token(token_env, token_file)
        self._auth = "none" if self._token is None else (f"bearer token from ${token_env}" if token_env else "bearer token from a file")
        self._ca = ca
        self._insecure = bool(insecure)
        self._version = getattr(tritonclient, "__version__", "") or _dist_version("tritonclient")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._turn = 0
        self.timing = RemoteTiming()
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=max(2, 2 * len(self.endpoints)), thread_name_prefix="deepyn-remote"
        )
        self._server_backend = ""
        self._model_info = self._connect()

    # -- connection -------------------------------------------------------------------------------
    def _client(self, ep: Endpoint) -> Any:
        """One tritonclient per thread and endpoint: the client is not thread-safe."""
        clients: dict[str, Any] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        client = clients.get(ep.url)
        if client is None:
            import tritonclient.http as httpclient

            kwargs: dict[str, Any] = {
                "connection_timeout": self.timeout, "network_timeout": self.timeout, "ssl": ep.ssl,
            }
            if ep.ssl:
                if self._ca:
                    kwargs["ssl_options"] = {"ca_certs": self._ca}
                if self._insecure:
                    import gevent.ssl

                    kwargs["insecure"] = True
                    kwargs["ssl_context_factory"] = gevent.ssl._create_unverified_context
            client = clients[ep.url] = httpclient.InferenceServerClient(ep.host_port, **kwargs)
        return client

    def _headers(self) -> dict[str, str] | None:
        return None if self._token is None else {"Authorization": f"Bearer {self._token}"}

    def check_endpoint(self, ep: Endpoint) -> str | None:
        """None when ``ep`` is ready and serves a model that fits the contract, else why not (one line)."""
        try:
            client = self._client(ep)
            if not client.is_server_ready(headers=self._headers()):
                return "server not ready"
            if not client.is_model_ready(self.model, headers=self._headers()):
                return f"model {self.model!r} not ready (or not served there)"
            meta = client.get_model_metadata(self.model, headers=self._headers())
        except Exception as exc:  # noqa: BLE001 - refused, timed out, TLS, 401...
            return _first_line(exc)
        reason = contract.check_metadata(meta)
        return None if reason is None else f"model {self.model!r} does not fit the U-YNet contract: {reason}"

    def endpoint_status(self) -> list[tuple[str, str | None]]:
        """(url, None if ready else the reason) for each endpoint, checked now."""
        return [(ep.url, self.check_endpoint(ep)) for ep in self.endpoints]

    def _connect(self) -> ModelInfo:
        reasons: dict[str, str] = {}
        infos: dict[str, ModelInfo] = {}
        for ep in self.endpoints:
            reason = self.check_endpoint(ep)
            if reason is not None:
                if "does not fit the U-YNet contract" in reason:
                    raise BackendError(f"{ep.url}: {reason}")
                reasons[ep.url] = reason
                ep.down_until, ep.last_error = time.monotonic() + COOLDOWN_S, reason
                continue
            # One probe says which model the server runs (deepyn serve names it in the response).
            try:
                params = self._request(ep, np.zeros((1, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32))[2]
            except Exception as exc:  # noqa: BLE001
                reasons[ep.url] = f"probe inference failed ({_first_line(exc)})"
                ep.down_until, ep.last_error = time.monotonic() + COOLDOWN_S, reasons[ep.url]
                continue
            text = params.get(contract.PARAM_MODEL_INFO)
            if isinstance(text, str):
                try:
                    infos[ep.url] = contract.model_info_from_parameter(text)
                except ValueError as exc:
                    raise BackendError(f"{ep.url}: {exc}") from exc
            else:
                infos[ep.url] = ModelInfo(
                    name=f"{self.model} (remote, unidentified)", sha256="",
                    notes="The server does not say which model file it runs (it is not deepyn serve), "
                          "so results are not tied to a model file and are not cached.",
                )
            self._server_backend = str(params.get(contract.PARAM_BACKEND, self._server_backend))
        if not infos:
            detail = "; ".join(f"{u}: {r}" for u, r in reasons.items())
            raise BackendError(f"no remote endpoint is ready ({detail})")
        shas = {i.sha256 for i in infos.values()}
        if len(shas) > 1:
            detail = ", ".join(f"{u}: {i.name} {i.sha256[:12] or 'unidentified'}" for u, i in infos.items())
            raise BackendError(f"the remote endpoints serve different models ({detail}); a pool must serve one model")
        return next(iter(infos.values()))

    # -- requests ---------------------------------------------------------------------------------
    def _request(self, ep: Endpoint, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        import tritonclient.http as httpclient

        inp = httpclient.InferInput(contract.INPUT.name, list(x.shape), contract.DATATYPE)
        inp.set_data_from_numpy(x, binary_data=True)
        outs = [httpclient.InferRequestedOutput(t.name, binary_data=True) for t in contract.OUTPUTS]
        t0 = time.perf_counter()
        result = self._client(ep).infer(self.model, [inp], outputs=outs, headers=self._headers())
        took = time.perf_counter() - t0
        mask = result.as_numpy(contract.OUTPUTS[0].name)
        score = result.as_numpy(contract.OUTPUTS[1].name)
        if mask is None or score is None:
            raise BackendError(f"{ep.url} answered without {contract.OUTPUTS[0].name} and {contract.OUTPUTS[1].name}")
        params = dict((result.get_response() or {}).get("parameters") or {})
        server_us = params.get(contract.PARAM_INFER_US)
        with self.timing.lock:
            self.timing.requests += 1
            self.timing.crops += len(x)
            self.timing.round_trip_s += took
            if isinstance(server_us, (int, float)) and not isinstance(server_us, bool):
                self.timing.server_infer_s += float(server_us) / 1e6
                self.timing.server_reported += 1
        return np.asarray(mask, dtype=np.float32), np.asarray(score, dtype=np.float32), params

    def _pick(self, exclude: set[str]) -> Endpoint | None:
        """The endpoint with the fewest requests in flight (up ones first); counts the new request."""
        now = time.monotonic()
        with self._lock:
            cands = [e for e in self.endpoints if e.url not in exclude]
            if not cands:
                return None
            up = [e for e in cands if e.down_until <= now] or cands
            ep = min(up, key=lambda e: (e.outstanding, e.order))
            ep.outstanding += 1
            self._turn += 1
            ep.order = self._turn  # ties go to the endpoint used least recently
            return ep

    def _send(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tried: list[str] = []
        errors: list[str] = []
        for _attempt in range(2):  # the first try, then one retry on another endpoint
            ep = self._pick(set(tried))
            if ep is None:
                break
            tried.append(ep.url)
            try:
                mask, score, _ = self._request(ep, x)
                check_backend_output(mask, score, len(x))
            except Exception as exc:  # noqa: BLE001 - any failure: try the next endpoint, then report
                reason = _first_line(exc)
                errors.append(f"{ep.url}: {reason}")
                with self._lock:
                    ep.failures += 1
                    ep.last_error = reason
                    ep.down_until = time.monotonic() + COOLDOWN_S
                continue
            finally:
                with self._lock:
                    ep.outstanding -= 1
                    ep.requests += 1
            with self._lock:
                ep.down_until = 0.0
            return mask, score
        raise BackendError(f"no remote endpoint answered a batch of {len(x)} crops ({'; '.join(errors)})")

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._pool is None:
            raise BackendError(f"backend {self.name} is closed")
        crops = check_backend_input(crops, self.name)
        n = len(crops)
        if n == 0:
            return np.empty((0, CROP_SIZE, CROP_SIZE), np.float32), np.empty((0,), np.float32)
        x = contract.crops_to_input(crops)
        now = time.monotonic()
        up = sum(1 for e in self.endpoints if e.down_until <= now) or 1
        size = min(self.batch_size, max(1, math.ceil(n / up)))
        pieces = [x[i:i + size] for i in range(0, n, size)]
        if len(pieces) == 1:
            results = [self._send(pieces[0])]
        else:
            results = [f.result() for f in [self._pool.submit(self._send, p) for p in pieces]]
        mask = np.concatenate([r[0] for r in results])
        score = np.concatenate([r[1] for r in results])
        check_backend_output(mask, score, n)
        return mask, score

    # -- contract ---------------------------------------------------------------------------------
    @property
    def model_info(self) -> ModelInfo:
        return self._model_info

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runtime": RUNTIME,
            "version": self._version,
            "protocol": "KServe v2 / Open Inference Protocol (REST)",
            "endpoints": [e.url for e in self.endpoints],
            "model": self.model,
            "server_backend": self._server_backend,
            "auth": self._auth,
            "timeout_s": self.timeout,
            "batch_size": self.batch_size,
            "precision": "fp32 on the server" if self._server_backend == "onnx" else "",
        }

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"RemoteBackend(endpoints={[e.url for e in self.endpoints]}, model={self.model!r})"


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def from_options(model_path: str | Path | None = None, **options: Any) -> RemoteBackend:
    """Build from ``remote:url=...,url=...,model=NAME,timeout=S,token_env=VAR,token_file=PATH,ca=PATH,insecure=1``."""
    def one(key: str) -> str | None:
        v = options.pop(key, None)
        if isinstance(v, list):
            if len(v) > 1:
                raise InputError(f"remote option {key} is given {len(v)} times")
            v = v[0]
        return None if v is None else str(v)

    if "token" in options:
        raise InputError("a token on the command line leaks into shell history and process lists; "
                         "use token_env=VARIABLE or token_file=PATH")
    urls = options.pop("url", None)
    urls = [urls] if isinstance(urls, str) else list(urls or [])
    model = one("model") or (str(model_path) if model_path is not None else "uynet")
    timeout_text = one("timeout")
    try:
        timeout = float(timeout_text) if timeout_text is not None else 20.0
    except ValueError:
        raise InputError(f"remote timeout must be a number of seconds, got {timeout_text!r}") from None
    insecure = (one("insecure") or "0").lower() in ("1", "true", "yes")
    kwargs: dict[str, Any] = {
        "token_env": one("token_env"), "token_file": one("token_file"), "ca": one("ca"), "insecure": insecure,
    }
    for key in ("batch_size", "threads", "name"):
        if key in options:
            kwargs[key] = options.pop(key)
    if options:
        raise InputError(f"unknown remote option(s) {', '.join(sorted(options))}; known: url, model, timeout, "
                         "token_env, token_file, ca, insecure")
    return RemoteBackend(urls, model=model, timeout=timeout, **kwargs)
