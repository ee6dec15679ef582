"""``deepyn-viewer [CLIP]`` (also installed as ``deepyn-gui``): start the viewer (optionally opening a clip and analysing it)."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from types import TracebackType

from .. import APP_NAME, __version__

log = logging.getLogger("deepyn_gui")


#: The names the viewer is installed under (pyproject's gui-scripts); --help and --version say the one used.
PROG_NAMES = ("deepyn-viewer", "deepyn-gui")


def prog_name(argv0: str | None = None) -> str:
    """The name this viewer was started as, so ``deepyn-viewer --help`` does not print ``usage: deepyn-gui``.

    ``python -m deepyn_gui`` and unknown launchers (PyInstaller, a renamed link) get ``deepyn-viewer``,
    the name the desktop entry and the packaged app use.
    """
    import os

    base = os.path.basename(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    base = base.removesuffix(".exe")
    return base if base in PROG_NAMES else PROG_NAMES[0]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog or prog_name(),
                                description=f"{APP_NAME}: a forensic viewer for suspect video.")
    p.add_argument("clip", nargs="?", help="video file to open (read-only)")
    p.add_argument("--backend", default=None, help="inference backend to select (see `deepyn backends`)")
    p.add_argument("--model", default=None, help="model file to use instead of the bundled one")
    p.add_argument("--stream", type=int, default=None, metavar="N",
                   help="video stream to show and analyse when the file holds several (default: most frames)")
    p.add_argument("--analyze", action="store_true", help="start the analysis as soon as the clip is open")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    return p


def _install_excepthook() -> None:
    """An unexpected exception in a slot is logged and shown, instead of passing unnoticed."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("unhandled exception:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        from PySide6.QtWidgets import QApplication, QMessageBox

        app = QApplication.instance()
        if app is not None:
            box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, f"Unexpected error: {exc_type.__name__}: {exc}")
            box.setDetailedText("".join(traceback.format_exception(exc_type, exc, tb)))
            box.setModal(False)
            box.show()
            hook.box = box  # type: ignore[attr-defined]  # keep it alive

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    """Run the GUI; returns the application's exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings import APP, ORG

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setApplicationVersion(__version__)
    pg.setConfigOptions(antialias=True)  # curves only; frame pixels are drawn without smoothing
    _install_excepthook()

    win = MainWindow()
    if args.backend:
        win.set_backend(args.backend)
    if args.model:
        win.set_model_path(args.model)
    if args.stream is not None:  # the same choice for the picture shown and the analysis
        win.session.choose_stream(args.stream)
    if args.analyze:
        win.session.analyze_on_open = True
    win.show()
    # --- first run (issue 8): icon, desktop-file name, and the "what the score means" hint once ----------
    from .help_dialogs import show_first_run_hint_if_due
    from .theme import set_app_identity

    set_app_identity(app)
    show_first_run_hint_if_due(win.help_actions)
    if args.clip:
        QTimer.singleShot(0, lambda: win.open_file(args.clip))
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
