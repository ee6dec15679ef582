"""Locate files under ``resources/`` both in a source checkout and in an installed/frozen app."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """Return the folder holding models, icons and templates.

    Order: a PyInstaller bundle (``sys._MEIPASS/resources``), a copy inside the package
    (``deepyn_gui/resources``), then the repository's top-level ``resources/``.
    """
    candidates = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        candidates.append(Path(meipass) / "resources")
    here = Path(__file__).resolve().parent
    candidates += [here / "_resources", here.parent / "resources"]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[-1]


def resource_path(*parts: str) -> Path:
    """Path of one resource file (it may not exist; callers check and say so)."""
    return resources_dir().joinpath(*parts)
