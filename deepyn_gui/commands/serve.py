"""``deepyn serve``: run a backend as an Open Inference Protocol v2 server (kserve's ModelServer).

It is what runs on each card server; ``--backend remote:url=...`` on the clients spreads work over them.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="serve the model over the KServe v2 / Open Inference Protocol (REST + gRPC)",
        description="Serve U-YNet with kserve's ModelServer: /v2/health/live, /v2/health/ready, "
        "/v2/models/NAME (metadata: input image FP32 [-1,3,224,224] = RGB/255; outputs mask_prob "
        "FP32 [-1,224,224], fake_score FP32 [-1]) and /v2/models/NAME/infer. Concurrent requests "
        "are batched together.",
    )
    p.add_argument("--http-port", type=int, default=8080, help="REST port (default 8080)")
    p.add_argument("--grpc-port", type=int, default=None,
                   help="also serve gRPC on this port (kserve listens on all interfaces for gRPC)")
    p.add_argument("--host", default="127.0.0.1",
                   help="REST address to listen on (default 127.0.0.1; 0.0.0.0 to serve the network)")
    p.add_argument("--ssl-certfile", default=None, help="serve REST over https with this certificate (PEM)")
    p.add_argument("--ssl-keyfile", default=None, help="the certificate's private key (PEM)")
    p.add_argument("--name", default="uynet", help="model name in the URLs (default uynet)")
    p.add_argument("--backend", default="onnx", help="local backend that does the work: onnx, onnx-int8, vart")
    p.add_argument("--model", default=None, help="model file (.onnx, or .xmodel for vart); default: bundled")
    p.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    p.add_argument("--batch", type=int, default=8, help="largest merged batch (default 8)")
    p.add_argument("--max-delay-ms", type=float, default=5.0,
                   help="how long a request may wait for others to share its batch (default 5 ms)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..backends import create_backend
    from ..core.errors import InputError
    from ..serving.server import serve

    if args.backend.split(":", 1)[0] == "remote":
        raise InputError("deepyn serve needs a local backend (onnx, onnx-int8, vart), not remote")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise InputError("https needs both --ssl-certfile and --ssl-keyfile")
    for port in (args.http_port, args.grpc_port):
        if port is not None and not 0 < port < 65536:
            raise InputError(f"port {port} is not between 1 and 65535")
    try:
        import_check()
    except ImportError as exc:
        raise InputError(f"deepyn serve needs kserve: python3 -m pip install 'deepyn-gui[serve]' ({exc})") from exc
    backend = create_backend(args.backend, model_path=args.model, threads=args.threads, batch_size=args.batch)
    info = backend.model_info
    print(f"deepyn serve: model {info.name} ({info.sha256[:12]}) on {args.backend} as {args.name!r}; "
          f"REST {'https' if args.ssl_certfile else 'http'}://{args.host}:{args.http_port}/v2/models/{args.name}"
          + (f", gRPC port {args.grpc_port} (all interfaces)" if args.grpc_port else ""),
          file=sys.stderr, flush=True)
    serve(backend, name=args.name, http_port=args.http_port, grpc_port=args.grpc_port, host=args.host,
          max_batch=args.batch, max_delay_ms=args.max_delay_ms, ssl_certfile=args.ssl_certfile,
          ssl_keyfile=args.ssl_keyfile)
    return 0


def import_check() -> None:
    import importlib.util

    if importlib.util.find_spec("kserve") is None:
        raise ImportError("No module named 'kserve'")
