"""``deepyn``: the command-line shell over the same core calls the GUI uses. Never imports Qt.

Each sub-command lives in ``deepyn_gui.commands.<name>`` and exposes ``register(subparsers)``; a
module that fails to import (e.g. an optional dependency missing) only disables its command.
Errors meant for the user (DeepYNError) print one line and exit 2; Ctrl+C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .core.errors import Cancelled, DeepYNError

COMMAND_MODULES = (
    "analyze",
    "backends",
    "models",
    "train",
    "evaluate",
    "compare",
    "report",
    "demo",
    "serve",
    "batch",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepyn",
        description="DeepYN Viewer command line: analyse suspect video for face manipulation.",
    )
    parser.add_argument("--version", action="version", version=f"deepyn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"deepyn_gui.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"deepyn_gui.commands.{name}":
                continue  # command not part of this build
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    _terminate_as_interrupt()
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"deepyn: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("deepyn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (`deepyn analyze CLIP | head -1`): the reader has what it wanted. Point
        # stdout at /dev/null so the interpreter's final flush does not print a second traceback.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "torch":
            print("deepyn: error: this command needs PyTorch, which is not installed: "
                  "python3 -m pip install 'torch==2.13.0'", file=sys.stderr)
            return 2
        raise
    except DeepYNError as exc:
        if args.verbose:
            logging.getLogger("deepyn").exception("error")
        from .core.output_guard import safe_text

        print(f"deepyn: error: {safe_text(exc)}", file=sys.stderr)
        return 2


def _terminate_as_interrupt() -> None:
    """SIGTERM (``kill``, a closing terminal, a batch scheduler) unwinds like Ctrl+C, so every
    ``finally`` runs: a half-written report package is removed, never left looking finished."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main thread (embedded use): leave the default
        pass


if __name__ == "__main__":
    sys.exit(main())
