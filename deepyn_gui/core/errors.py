"""Error types that both shells turn into one clear line for the user.

Every error raised on purpose by core derives from :class:`DeepYNError`, so the CLI can print
``str(exc)`` without a traceback and the GUI can show it in a dialog, while genuine bugs still
surface as ordinary exceptions.
"""

from __future__ import annotations


class DeepYNError(Exception):
    """Base class for errors whose message is meant for the user."""


class InputError(DeepYNError):
    """The input file cannot be used (missing, not a video, corrupt, no video stream...)."""


class ModelError(DeepYNError):
    """A model file is missing, malformed or has the wrong interface."""


class BackendError(DeepYNError):
    """An inference backend failed or is unavailable."""


class BackendUnavailable(BackendError):
    """A backend cannot run here; ``reason`` says why, for shells that show it apart from the name."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"backend {name} is unavailable: {reason}")
        self.name = name
        self.reason = reason


class ExportError(DeepYNError):
    """An export could not be written (unwritable folder, disk full...)."""


class Cancelled(DeepYNError):
    """The user cancelled a long-running job."""
