"""``deepyn backends``: list every inference backend and why one is unavailable."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("backends", help="list inference backends and their availability")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..backends import list_backends

    for spec, avail in list_backends():
        state = "available" if avail.available else f"unavailable ({avail.reason})"
        print(f"{spec.name:<10} {state}\n{'':<10} {spec.description}")
    return 0
