"""Light/dark theme that follows the system (or the user's choice in Preferences).

Qt 6.5+ reports the desktop's colour scheme (``QStyleHints.colorScheme()``) and styles such as Fusion
repaint from it; Qt 6.8+ can also force one (``setColorScheme``). pyqtgraph draws its own plots, so its
background/foreground are set here too and plot widgets ask :func:`plot_colors` when they build or
when :data:`ThemeWatcher.changed` fires. Frame pixels are never tinted: only chrome changes.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette

log = logging.getLogger(__name__)

SYSTEM, LIGHT, DARK = "system", "light", "dark"
CHOICES = (SYSTEM, LIGHT, DARK)

#: (plot background, plot foreground/axes, timeline cursor) per scheme.
_PLOT = {
    LIGHT: ((255, 255, 255), (40, 40, 40), (30, 30, 30)),
    DARK: ((30, 32, 36), (215, 218, 222), (235, 235, 235)),
}


def _app() -> QGuiApplication | None:
    app = QGuiApplication.instance()
    return app if isinstance(app, QGuiApplication) else None


def palette_is_dark(palette: QPalette | None = None) -> bool:
    """True when the window background is darker than its text (works on any Qt version/style)."""
    if palette is None:
        app = _app()
        if app is None:
            return False
        palette = app.palette()
    win = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    return win.lightness() < text.lightness()


def system_scheme() -> str:
    """``"dark"`` or ``"light"`` as the desktop reports it (palette lightness when it says nothing)."""
    app = _app()
    if app is None:
        return LIGHT
    hints = app.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        cs = scheme()
        if cs == Qt.ColorScheme.Dark:
            return DARK
        if cs == Qt.ColorScheme.Light:
            return LIGHT
    return DARK if palette_is_dark() else LIGHT


def current_scheme() -> str:
    """The scheme in effect: the palette decides (it is what the widgets are painted with)."""
    return DARK if palette_is_dark() else LIGHT


def plot_colors(scheme: str | None = None) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
    """(background, foreground, cursor) RGB for pyqtgraph plots in ``scheme`` (default: in effect)."""
    return _PLOT[scheme if scheme in _PLOT else current_scheme()]


def _dark_palette() -> QPalette:
    """A neutral dark palette for styles/platforms that do not supply one."""
    p = QPalette()
    c = QColor
    roles = QPalette.ColorRole
    for role, col in (
        (roles.Window, c(45, 47, 51)), (roles.WindowText, c(225, 227, 230)), (roles.Base, c(32, 34, 37)),
        (roles.AlternateBase, c(45, 47, 51)), (roles.ToolTipBase, c(250, 250, 220)),
        (roles.ToolTipText, c(20, 20, 20)), (roles.Text, c(225, 227, 230)), (roles.Button, c(53, 55, 60)),
        (roles.ButtonText, c(225, 227, 230)), (roles.BrightText, c(255, 80, 80)), (roles.Link, c(90, 160, 240)),
        (roles.Highlight, c(42, 110, 190)), (roles.HighlightedText, c(255, 255, 255)),
        (roles.PlaceholderText, c(140, 142, 146)),
    ):
        p.setColor(role, col)
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, c(120, 122, 126))
    return p


def apply_theme(choice: str = SYSTEM) -> str:
    """Apply ``choice`` (system/light/dark) to the running application; returns the scheme in effect.

    The platform palette is restored first (on Qt 6.8+ after forcing or un-forcing the colour scheme,
    which native styles and Fusion follow); only when the result still has the wrong lightness (older
    Qt, a desktop that reports dark but gives Qt a light palette) is a palette set directly.
    """
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return LIGHT
    hints = app.styleHints()
    want = choice if choice in (LIGHT, DARK) else None
    if want is not None and hasattr(hints, "setColorScheme"):
        hints.setColorScheme(Qt.ColorScheme.Dark if want == DARK else Qt.ColorScheme.Light)
    elif want is None and hasattr(hints, "unsetColorScheme"):
        hints.unsetColorScheme()
    app.setPalette(QPalette())  # resolves to the platform/style palette
    target = want or system_scheme()
    if (target == DARK) != palette_is_dark():
        app.setPalette(_dark_palette() if target == DARK else app.style().standardPalette())
    scheme = current_scheme()
    _apply_pyqtgraph(scheme)
    return scheme


def _apply_pyqtgraph(scheme: str) -> None:
    try:
        import pyqtgraph as pg
    except ImportError:  # pragma: no cover - pyqtgraph is a GUI dependency
        return
    bg, fg, _ = _PLOT[scheme]
    pg.setConfigOption("background", bg)
    pg.setConfigOption("foreground", fg)


class ThemeWatcher(QObject):
    """Emits ``changed(scheme)`` when the desktop switches between light and dark (Qt 6.5+), after
    re-applying the user's choice so the palette and pyqtgraph follow."""

    changed = Signal(str)

    def __init__(self, choice: str = SYSTEM, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.choice = choice if choice in CHOICES else SYSTEM
        self.scheme = apply_theme(self.choice)
        app = _app()
        sig: Any = getattr(app.styleHints(), "colorSchemeChanged", None) if app is not None else None
        if sig is not None:
            sig.connect(self._on_system_change)

    def set_choice(self, choice: str) -> str:
        self.choice = choice if choice in CHOICES else SYSTEM
        return self._reapply()

    def _on_system_change(self, *_: Any) -> None:
        if self.choice == SYSTEM:
            self._reapply()

    def _reapply(self) -> str:
        scheme = apply_theme(self.choice)
        self.scheme = scheme
        self.changed.emit(scheme)
        return scheme


def restyle_plots(root: Any, scheme: str | None = None) -> int:
    """Give every pyqtgraph plot under ``root`` the scheme's background, axis, legend and cursor colours.

    Plots build themselves once; this brings existing ones along when the theme changes. Only views
    with axes are plots: the frame view (no axes) keeps its dark surround, chosen to judge pixels.
    Returns how many plots were restyled.
    """
    import pyqtgraph as pg

    bg, fg, cursor = plot_colors(scheme)
    n = 0
    views = list(root.findChildren(pg.GraphicsView))
    if isinstance(root, pg.GraphicsView):
        views.append(root)
    for w in views:
        items = w.scene().items() if w.scene() is not None else []
        axes = [i for i in items if isinstance(i, pg.AxisItem)]
        if not axes:
            continue
        w.setBackground(bg)
        for axis in axes:
            axis.setPen(pg.mkPen(fg))
            axis.setTextPen(pg.mkPen(fg))
        for legend in (i for i in items if isinstance(i, pg.LegendItem)):
            legend.setLabelTextColor(fg)
        line = getattr(w, "cursor", None)
        if isinstance(line, pg.InfiniteLine):
            line.setPen(pg.mkPen(cursor, width=max(line.pen.widthF(), 1.0)))
        n += 1
    return n


def app_icon() -> Any:
    """The app icon from ``resources/icons`` (PNG sizes, so no SVG plugin is needed)."""
    from PySide6.QtGui import QIcon

    from ..resources import resource_path

    icon = QIcon()
    for s in (16, 24, 32, 48, 64, 128, 256, 512):
        p = resource_path("icons", f"deepyn-viewer-{s}.png")
        if p.is_file():
            icon.addFile(str(p))
    return icon


def set_app_identity(app: Any) -> None:
    """Window icon and desktop-file name (Wayland/X11 docks match the window to packaging/*.desktop)."""
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)
    if hasattr(app, "setDesktopFileName"):
        app.setDesktopFileName("deepyn-viewer")
