"""Screenshot of File > Open folder... (the batch queue) in a real window: run under Xvfb.

    xvfb-run -a -s "-screen 0 1280x800x24" env QT_QPA_PLATFORM=xcb PYTHONPATH=.:tests \
        python3 docs/screenshots/take_folder_queue.py docs/screenshots/folder_queue.png

Clips are made in a temporary folder (the astronaut portrait at several sizes) plus, when present, the
shared demo clip; the cache is a private temporary one. The shot is taken once some clips are finished
and others are still queued, so it shows the queue filling in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(out: str) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="deepyn-queue-"))
    os.environ["DEEPYN_DATA_DIR"] = str(tmp / "data")
    from media import astronaut_clip_frames, write_clip
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from deepyn_gui.qt.main_window import MainWindow
    from deepyn_gui.qt.settings import Preferences

    folder = tmp / "incoming"
    (folder / "tuesday").mkdir(parents=True)
    demo = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "seed-sample" / "deep_fake_video.avi"
    if demo.is_file():
        (folder / "deep_fake_video.avi").symlink_to(demo)
    for i, px in enumerate((60, 80, 100, 120, 70, 90)):
        where = folder / ("tuesday" if i % 2 else "")
        write_clip(where / f"interview_{i + 1:02d}.mp4", astronaut_clip_frames(8, face_px=px))
    app = QApplication.instance() or QApplication(sys.argv)
    win = MainWindow(prefs=Preferences(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)))
    win.resize(1100, 700)
    win.show()
    queue = win.open_folder(folder)
    queue.move(120, 60)
    queue.resize(900, 380)
    queue.raise_()

    def check() -> None:
        done = sum(1 for i in queue.items if i.state in ("done", "cached"))
        if done >= 4 or all(i.state not in ("queued", "running") for i in queue.items):
            g = queue.frameGeometry()  # the queue's own window only, not the main window behind it
            subprocess.run(["import", "-window", "root", "-crop", f"{g.width()}x{g.height()}+{g.x()}+{g.y()}", out],
                           check=True)
            queue.cancel()
            app.quit()
        else:
            QTimer.singleShot(200, check)

    QTimer.singleShot(500, check)
    app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "folder_queue.png"))
