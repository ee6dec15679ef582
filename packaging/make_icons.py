"""Render the app icon's PNG sizes from ``resources/icons/deepyn-viewer.svg`` (run after editing the SVG).

    QT_QPA_PLATFORM=offscreen python3 packaging/make_icons.py

Uses Qt's SVG renderer (in PySide6-Essentials), so the PNGs are exactly what Qt itself would draw.
"""

from __future__ import annotations

import sys
from pathlib import Path

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def main() -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - needed for painting
    svg = ICONS / "deepyn-viewer.svg"
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot render {svg}")
    for s in SIZES:
        img = QImage(s, s, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(p)
        p.end()
        out = ICONS / f"deepyn-viewer-{s}.png"
        if not img.save(str(out), "PNG"):
            raise SystemExit(f"cannot write {out}")
        print(out.relative_to(ICONS.parents[1]), out.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
