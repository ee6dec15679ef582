"""Entry point of the frozen (PyInstaller) app: one executable, three ways in.

    deepyn-viewer [CLIP] [--analyze ...]     the desktop viewer (same as ``deepyn-gui`` / ``python -m deepyn_gui``)
    deepyn-viewer --cli COMMAND [ARGS...]    the ``deepyn`` command line (analyze, demo, report, ...)
    deepyn-viewer --headless-demo [ARGS...]  ``deepyn demo --headless``: write the demo clip, analyse it, print

An executable renamed or linked as ``deepyn`` behaves as ``--cli``.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path


def _cli(args: list[str]) -> int:
    from deepyn_gui.cli import main as cli_main

    try:
        return cli_main(args)
    except ModuleNotFoundError as exc:
        if exc.name not in ("torch", "torchvision", "onnxscript"):
            raise
        # The desktop build leaves PyTorch out: only training and checkpoint import need it.
        print(f"deepyn: error: this command needs {exc.name}, which the desktop app does not bundle; "
              "use a Python install: pip install -e '.[torch]'", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = Path(sys.argv[0]).stem.lower()
    if args[:1] == ["--headless-demo"]:
        return _cli(["demo", "--headless", *args[1:]])
    if args[:1] == ["--cli"] or name == "deepyn":
        return _cli(args[1:] if args[:1] == ["--cli"] else args)
    from deepyn_gui.qt.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())
