"""What each add-on GUI module may read from the viewer: small Protocols, not the main window.

The add-ons (Export menu, folder queue, Help dialogs, evidence bar, preferences) are handed the
session -- or these narrower views of it, or for Preferences the few window methods it calls -- and
the widgets they attach to, so mypy checks every
attribute they touch and none can reach into :class:`~deepyn_gui.qt.main_window.MainWindow`.
:class:`~deepyn_gui.qt.session.Session` satisfies all of them (checked by ``tests/test_typing.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.pipeline import AnalysisSettings
    from ..core.results import AnalysisResult, ModelInfo
    from .overlay import OverlayControls
    from .session import Session, ShownFrame
    from .settings import Preferences


class ShownClip(Protocol):
    """The clip on screen, the frame shown and the finished analysis: what exports read."""

    @property
    def path(self) -> str | None: ...

    @property
    def shown(self) -> ShownFrame | None: ...

    @property
    def analysis_result(self) -> AnalysisResult | None: ...


class AnalysisChoice(Protocol):
    """The backend, model and settings the viewer analyses with: what the folder queue reuses."""

    @property
    def backend_name(self) -> str: ...

    @property
    def model_path(self) -> str | None: ...

    @property
    def threads(self) -> int: ...

    @property
    def settings(self) -> AnalysisSettings: ...

    @property
    def cache_root(self) -> str | None: ...


class ModelInUse(Protocol):
    """The model and backend of the session: what About, the model card and the score hint show."""

    @property
    def model_info(self) -> ModelInfo | None: ...

    @property
    def model_path(self) -> str | None: ...

    @property
    def backend_name(self) -> str: ...

    @property
    def backend_description(self) -> dict[str, Any] | None: ...



class PreferencesHost(Protocol):
    """What File ▸ Preferences reads and changes: the stored preferences, the session's analysis
    choice, the overlay controls, and the window's backend/model switches (which also update its menus)."""

    @property
    def prefs(self) -> Preferences: ...

    @property
    def session(self) -> Session: ...

    @property
    def overlay_controls(self) -> OverlayControls: ...

    def set_backend(self, name: str) -> None: ...

    def set_model_path(self, path: str | None) -> None: ...

    def list_backends(self) -> list[tuple[Any, Any]]: ...

if TYPE_CHECKING:

    def _the_session_is_each_of_them(s: Session) -> tuple[ShownClip, AnalysisChoice, ModelInUse]:
        """mypy proves here that the real session satisfies every view the add-ons are given."""
        return s, s, s


__all__ = ["AnalysisChoice", "ModelInUse", "PreferencesHost", "ShownClip"]
