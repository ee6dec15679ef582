"""``deepyn backends``: list every inference backend and why one is unavailable.

``--remote remote:url=...`` also checks each endpoint of a pool now (ready, model served, contract).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("backends", help="list inference backends and their availability")
    p.add_argument("--remote", default=None, metavar="SPEC",
                   help="also check these remote endpoints, e.g. remote:url=http://a:8080,url=http://b:8080,model=uynet")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..backends import list_backends

    for spec, avail in list_backends():
        state = "available" if avail.available else f"unavailable ({avail.reason})"
        hint = f" - {avail.reason}" if avail.available and avail.reason else ""
        print(f"{spec.name:<10} {state}{hint}\n{'':<10} {spec.description}")
    if args.remote:
        return _check_remote(args.remote)
    return 0


def _check_remote(text: str) -> int:
    """One line per endpoint: ready, or why not. Exit 3 when any endpoint is not ready."""
    from ..backends import parse_backend_spec
    from ..backends.remote import RemoteBackend, from_options
    from ..core.errors import BackendError

    _name, opts = parse_backend_spec(text if text.startswith("remote") else f"remote:{text}")
    try:
        backend: RemoteBackend | None = from_options(None, **opts)
    except BackendError as exc:  # none ready or contract refused: still list each endpoint's reason
        print(f"remote     {exc}")
        return 3
    assert backend is not None
    try:
        status = backend.endpoint_status()
        info = backend.model_info
        print(f"remote     model {backend.model!r}: {info.name} ({info.sha256[:12] or 'unidentified'})")
        for url, reason in status:
            print(f"  {url:<32} {'ready' if reason is None else 'NOT READY: ' + reason}")
    finally:
        backend.close()
    return 0 if all(r is None for _, r in status) else 3
