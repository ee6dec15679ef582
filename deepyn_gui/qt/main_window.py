"""The main window: menus, toolbar, status bar and the layout that holds the player, timeline and panels.

It wires widgets to the :class:`~deepyn_gui.qt.session.Session` and does nothing else: every action
calls a session method (intent), every redraw follows a session signal (state).

Extension points for features that other modules add:

* ``menu_export`` — the Export menu (empty here; exporters add their actions to it).
* ``menu_help`` — the Help menu (shortcuts / About live elsewhere).
* ``view_stack`` — a ``QStackedWidget`` whose page 0 is the single-clip view; a comparison view adds
  its own page and switches with ``view_stack.setCurrentWidget``.
Menus with no actions are hidden until something adds one (checked each time the window is shown and
when :meth:`refresh_extension_menus` is called).

Size (~720 lines): menus, toolbar and layout wiring only -- one method per action; the behaviour
behind each is a session or core call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from .. import APP_NAME
from .overlay import MaskOverlay, OverlayControls, OverlayOptions
from .player import PlayerWidget
from .session import CANCELLING, RUNNING, STARTING, Session, ShownFrame
from .settings import Preferences
from .style import format_duration
from .timeline import ScoreTimeline
from .verdict_panel import VerdictPanel

log = logging.getLogger(__name__)

VIDEO_FILTER = (
    "Videos (*.mp4 *.m4v *.mov *.avi *.mkv *.webm *.mpg *.mpeg *.ts *.mts *.m2ts *.wmv *.flv *.3gp);;All files (*)"
)
ListBackends = Callable[[], list[tuple[Any, Any]]]


def _default_list_backends() -> list[tuple[Any, Any]]:
    from ..backends import list_backends

    return list_backends()


class MainWindow(QMainWindow):
    """DeepYN Viewer's window."""

    def __init__(
        self,
        prefs: Preferences | None = None,
        session: Session | None = None,
        list_backends: ListBackends | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.prefs = prefs or Preferences()
        self.session = session or Session(self)
        self._list_backends = list_backends or _default_list_backends
        self.last_message_box: QMessageBox | None = None
        self._closing = False
        self._cursor_target = 0
        self._cursor_timer = QTimer(self)
        self._cursor_timer.setSingleShot(True)
        self._cursor_timer.setInterval(66)
        self._cursor_timer.timeout.connect(self._flush_cursor)

        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1400, 900)

        # --- widgets -----------------------------------------------------------------------------
        self.player = PlayerWidget()
        self.overlay = MaskOverlay(self.player.frame_view.view, self)
        self.overlay_controls = OverlayControls(self.prefs.overlay())
        self.overlay.set_options(self.overlay_controls.options())
        self.verdict_panel = VerdictPanel()
        self._cautions_checked_at = 0  # results counted at the last mid-run caution check (_on_provisional_verdict)
        self.timeline = ScoreTimeline()

        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(4, 4, 4, 4)
        side_lay.addWidget(self.verdict_panel)
        side_lay.addWidget(self.overlay_controls)
        side_lay.addStretch(1)
        self.side_layout = side_lay  # add-ons (the evidence bar) insert their panels here
        self.side_scroll = QScrollArea()
        self.side_scroll.setWidget(side)
        self.side_scroll.setWidgetResizable(True)
        self.side_scroll.setMinimumWidth(330)
        self.side_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # wrap, never scroll sideways

        # player above timeline (same width, so time lines up), side panel to the right, full height
        self.left_split = QSplitter(Qt.Orientation.Vertical)
        self.left_split.addWidget(self.player)
        self.left_split.addWidget(self.timeline)
        self.left_split.setStretchFactor(0, 3)
        self.left_split.setStretchFactor(1, 1)
        self.left_split.setSizes([620, 240])
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(self.left_split)
        self.main_split.addWidget(self.side_scroll)
        self.main_split.setStretchFactor(0, 1)
        self.main_split.setStretchFactor(1, 0)
        self.main_split.setSizes([1040, 380])
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.main_split)
        self.setCentralWidget(self.view_stack)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect()
        self._restore()
        self._update_actions()

        # --- evidence SHA-256 (hashed on open, verified on reopen), cache note, Analysis > Re-analyse ----
        from .evidence_bar import install_evidence_ui

        def cache_loaded() -> None:
            self.timeline.redraw()
            self.state_label.setText("Loaded from cache")

        self.evidence_bar, self.act_reanalyse = install_evidence_ui(
            self, self.session, self.side_layout, self.menu_analysis, self.act_analyze, cache_loaded)

        # --- exports (issue 6): deepyn_gui.qt.export_actions fills menu_export -------------------------
        from .export_actions import install_export_actions

        self.export_actions = install_export_actions(self, self.session, self.menu_export,
                                                     style_getter=lambda: self.overlay.options)

        # --- backend comparison (issue 5): CPU vs VCK5000 side by side, in its own window ---------------
        self.act_compare = self._action("Compa&re backends…", self.open_compare,
                                        tip="Run two backends on the same frames and crops, side by side")
        self.menu_analysis.addAction(self.act_compare)

        # --- help, preferences, theme (issue 8): deepyn_gui.qt.help_dialogs / preferences / theme ------
        from .help_dialogs import install_help_actions
        from .preferences import install_preferences

        self.preferences_action = install_preferences(self, self, self.menu_file, self.act_quit)
        self.help_actions = install_help_actions(self, self.session, self.prefs, self.menu_help)
        self.refresh_extension_menus()  # the Export and Help menus show once something fills them

    def open_compare(self) -> None:
        """Open the comparison window on the current clip (issue 5)."""
        from .compare_view import CompareWindow

        win = CompareWindow(self, clip_path=self.session.path)
        win.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        win.show()

    # ------------------------------------------------------------------ construction
    def _action(self, text: str, slot: Callable[[], Any], shortcut: Any = None, tip: str = "",
                checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.setCheckable(checkable)
        a.triggered.connect(lambda *_: slot())
        self.addAction(a)  # window-wide shortcut, even when the menu bar is hidden
        return a

    def _build_actions(self) -> None:
        s = self.session
        icon = self.style().standardIcon
        SP = QStyle.StandardPixmap
        K = QKeySequence.StandardKey
        self.act_open = self._action("&Open…", self.open_dialog, K.Open, "Open a video file")
        self.act_open.setIcon(icon(SP.SP_DialogOpenButton))
        self.act_quit = self._action("&Quit", self.close, "Ctrl+Q")
        self.act_play = self._action("&Play / Pause", s.toggle_play, Qt.Key.Key_Space, "Play or pause (Space)")
        self.act_play.setIcon(icon(SP.SP_MediaPlay))
        self.act_prev = self._action("Previous frame", lambda: s.step(-1), Qt.Key.Key_Left)
        self.act_next = self._action("Next frame", lambda: s.step(1), Qt.Key.Key_Right)
        self.act_back10 = self._action("Back 10 frames", lambda: s.step(-10), "Shift+Left")
        self.act_fwd10 = self._action("Forward 10 frames", lambda: s.step(10), "Shift+Right")
        self.act_home = self._action("First frame", s.go_home, Qt.Key.Key_Home)
        self.act_end = self._action("Last frame", s.go_end, Qt.Key.Key_End)
        self.act_fit = self._action("&Fit frame to view", self.player.frame_view.fit, "F")
        self.act_analyze = self._action("&Analyze", self.start_analysis, "Ctrl+R",
                                        "Score every face in the clip with the chosen backend")
        self.act_analyze.setIcon(icon(SP.SP_MediaPlay))
        self.act_analyze.setIconText("Analyze")
        self.act_cancel = self._action("&Cancel analysis", s.cancel_analysis, Qt.Key.Key_Escape,
                                       "Stop the analysis; frames analysed so far are kept")
        self.act_cancel.setIcon(icon(SP.SP_BrowserStop))
        self.act_analyze_on_open = self._action("Analyze on &open", self._toggle_analyze_on_open, checkable=True,
                                                tip="Start the analysis as soon as a clip is opened")
        self.act_stream = self._action("Video &stream…", self.choose_stream,
                                       tip="Files with several video streams: choose the one to show and analyse")
        self.act_model = self._action("Choose &model file…", self.choose_model, tip="Use another .onnx model")
        self.act_model_default = self._action("Use the &bundled model", lambda: self.set_model_path(None))
        self.act_show_mask = self._action("Show &mask", lambda: self._toggle_overlay("show_mask"), "M",
                                          checkable=True)
        self.act_show_boxes = self._action("Show face &boxes", lambda: self._toggle_overlay("show_boxes"), "B",
                                           checkable=True)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        self.menu_file = mb.addMenu("&File")
        self.menu_file.addAction(self.act_open)
        self.act_open_folder = self._action("Open &folder…", self.open_folder_dialog,
                                            tip="Analyse every clip in a folder (recursively), as a queue")
        self.menu_file.addAction(self.act_open_folder)
        self.menu_recent = self.menu_file.addMenu("Open &Recent")
        self.menu_recent.aboutToShow.connect(self._fill_recent)
        self.menu_file.addSeparator()
        self.menu_file.addAction(self.act_quit)

        self.menu_view = mb.addMenu("&View")
        self.menu_view.addAction(self.act_show_mask)
        self.menu_view.addAction(self.act_show_boxes)
        self.menu_view.addSeparator()
        self.menu_view.addAction(self.act_fit)

        self.menu_playback = mb.addMenu("&Playback")
        for a in (self.act_play, self.act_prev, self.act_next, self.act_back10, self.act_fwd10, self.act_home,
                  self.act_end):
            self.menu_playback.addAction(a)

        self.menu_analysis = mb.addMenu("&Analysis")
        self.menu_analysis.addAction(self.act_analyze)
        self.menu_analysis.addAction(self.act_cancel)
        self.menu_analysis.addAction(self.act_analyze_on_open)
        self.menu_analysis.addAction(self.act_stream)
        self.menu_analysis.addSeparator()
        self.menu_backend = self.menu_analysis.addMenu("&Backend")
        self.menu_backend.setToolTipsVisible(True)
        self.backend_group = QActionGroup(self)
        self.backend_group.setExclusive(True)
        self.backend_actions: dict[str, QAction] = {}
        self.menu_analysis.addAction(self.act_model)
        self.menu_analysis.addAction(self.act_model_default)
        self._fill_backends()

        self.menu_export = mb.addMenu("&Export")  # extension point: exporters add actions here
        self.menu_help = mb.addMenu("&Help")  # extension point: shortcuts / About

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.act_open)
        tb.addSeparator()
        tb.addAction(self.act_analyze)
        tb.addAction(self.act_cancel)
        tb.addSeparator()
        self.backend_label = QLabel()
        self.backend_label.setContentsMargins(6, 0, 6, 0)
        tb.addWidget(self.backend_label)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.state_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setMinimumWidth(160)
        self.progress_bar.setFormat("%v / %m frames")
        self.speed_label = QLabel()
        self.speed_label.setMinimumWidth(190)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the analysis; frames analysed so far are kept (Esc)")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(self.session.cancel_analysis)
        for w in (self.state_label, self.progress_bar, self.speed_label, self.cancel_button):
            sb.addPermanentWidget(w)
        self._show_progress(False)

    def _fill_backends(self) -> None:
        """One radio item per registered backend; unavailable ones greyed out with the reason as tooltip."""
        for a in list(self.backend_actions.values()):
            self.backend_group.removeAction(a)
            self.menu_backend.removeAction(a)
        self.backend_actions = {}
        try:
            entries = self._list_backends()
        except Exception as exc:  # listing must never take the window down
            log.exception("listing backends failed")
            entries = []
            self.statusBar().showMessage(f"Could not list inference backends: {exc}")
        chosen = self.prefs.backend
        first_ok = None
        for spec, avail in entries:
            ok = bool(getattr(avail, "available", False))
            text = f"{spec.name} — {spec.description}"
            if not ok:
                text += "  (unavailable)"
            a = QAction(text, self)
            a.setCheckable(True)
            a.setEnabled(ok)
            a.setData(spec.name)
            a.setToolTip(spec.description if ok else f"Unavailable: {avail.reason}")
            a.setStatusTip(a.toolTip())
            if spec.name == "remote":  # needs endpoints: asked for when chosen
                a.triggered.connect(lambda _=False: self.choose_remote())
            else:
                a.triggered.connect(lambda _=False, n=spec.name: self.set_backend(n))
            self.backend_group.addAction(a)
            self.menu_backend.addAction(a)
            self.backend_actions[spec.name] = a
            if ok and first_ok is None:
                first_ok = spec.name
        if chosen in self.backend_actions and self.backend_actions[chosen].isEnabled():
            self.set_backend(chosen)
        elif first_ok is not None:
            self.set_backend(first_ok)
        else:
            self.set_backend(chosen)

    def _connect(self) -> None:
        s = self.session
        p = self.player
        p.playToggled.connect(s.toggle_play)
        p.stepRequested.connect(s.step)
        p.homeRequested.connect(s.go_home)
        p.endRequested.connect(s.go_end)
        self.timeline.seekRequested.connect(self._seek_from_timeline)
        self.overlay_controls.optionsChanged.connect(self._on_overlay_options)

        s.clipOpened.connect(self._on_clip_opened)
        s.positionChanged.connect(self._on_position)
        s.frameShown.connect(self._on_frame_shown)
        s.shownResultChanged.connect(self._on_shown_result)
        s.playingChanged.connect(self._on_playing)
        s.resultsAdded.connect(self.timeline.add_results)
        s.resultsCleared.connect(self._on_results_cleared)
        s.verdictChanged.connect(self.verdict_panel.set_verdict)
        s.verdictChanged.connect(self._on_provisional_verdict)
        s.analysisFinished.connect(self._show_coverage)
        s.cacheLoaded.connect(lambda hit: self._show_coverage(hit.result))
        s.modelChanged.connect(self._on_model)
        s.analysisStateChanged.connect(self._on_analysis_state)
        s.analysisProgress.connect(self._on_progress)
        s.analysisFinished.connect(lambda *_: self.timeline.redraw())  # no pending coalesced redraw at the end
        s.message.connect(self._on_message)

    def _restore(self) -> None:
        self.prefs.restore_window(self)
        for name, split in (("left_v2", self.left_split), ("main_v2", self.main_split)):
            st = self.prefs.splitter(name)
            if st is not None:
                split.restoreState(st)
        self.session.model_path = self.prefs.model_path
        self.session.analyze_on_open = self.prefs.analyze_on_open
        self.act_analyze_on_open.setChecked(self.session.analyze_on_open)
        o = self.overlay_controls.options()
        self.act_show_mask.setChecked(o.show_mask)
        self.act_show_boxes.setChecked(o.show_boxes)
        self._update_backend_label()

    # ------------------------------------------------------------------ intents
    def open_dialog(self) -> None:
        recent = self.prefs.recent_files()
        start = str(Path(recent[0]).parent) if recent else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open video", start, VIDEO_FILTER)
        if path:
            self.open_file(path)

    def open_folder_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Open folder of clips", str(Path.home()))
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path, start: bool = True) -> Any:
        """Show the folder's clips as a queue that fills in as they are analysed (``deepyn batch``'s engine)."""
        from ..core.batch import find_clips
        from ..core.errors import DeepYNError
        from .folder_queue import FolderQueueWindow

        try:
            clips = find_clips([folder])
        except DeepYNError as exc:
            self.show_message_box("warning", str(exc))
            return None
        win = FolderQueueWindow(self, self.session, self._open_from_queue, clips, start=start)
        win.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        win.show()
        self.folder_queue = win
        return win

    def _open_from_queue(self, path: str) -> None:
        self.open_file(path)
        self.raise_()

    def open_file(self, path: str | Path) -> None:
        """Open a clip (menu, recent list, drag-and-drop and the command line all come here)."""
        self.session.open(str(path))

    def start_analysis(self) -> None:
        if not self.session.has_clip:
            self.statusBar().showMessage("Open a video first.", 5000)
            return
        self.session.start_analysis()

    def choose_remote(self) -> bool:
        """Ask for the Open Inference Protocol endpoints (``url=...,url=...,model=NAME``) and use them."""
        from PySide6.QtWidgets import QInputDialog

        from ..backends import parse_backend_spec
        from ..core.errors import DeepYNError

        current = self.session.backend_name
        last = current.split(":", 1)[1] if current.startswith("remote:") else "url=http://127.0.0.1:8080,model=uynet"
        text, ok = QInputDialog.getText(
            self, "Remote inference servers",
            "Endpoints (deepyn serve, Triton, KServe): url=http://host:8080 (repeat for a pool), model=NAME,\n"
            "optional timeout=S, token_env=VARIABLE or token_file=PATH, ca=PATH",
            text=last,
        )
        spec = text.strip().removeprefix("remote:").strip()
        try:
            if not ok or not spec:
                raise LookupError
            _name, opts = parse_backend_spec(f"remote:{spec}")
            if "url" not in opts:
                raise DeepYNError("give at least one url=http://host:port")
            if "token" in opts:
                raise DeepYNError("a token typed here would be stored in the settings; use token_env= or token_file=")
        except LookupError:
            self.set_backend(current)  # cancelled: keep the backend that was chosen before
            return False
        except DeepYNError as exc:
            self.show_message_box("warning", f"Remote servers: {exc}")
            self.set_backend(current)
            return False
        if "model" not in opts:
            spec += ",model=uynet"  # the served name; never the local model file chosen for onnx
        self.set_backend(f"remote:{spec}")
        return True

    def list_backends(self) -> list[tuple[Any, Any]]:
        """Every registered backend with its availability here (Preferences and the Backend menu)."""
        return self._list_backends()

    def set_backend(self, name: str) -> None:
        self.session.backend_name = name
        self.prefs.backend = name
        a = self.backend_actions.get(name.split(":", 1)[0])
        if a is not None:
            a.setChecked(True)
        self._update_backend_label()

    def set_model_path(self, path: str | None) -> None:
        self.session.model_path = path
        self.prefs.model_path = path
        self._update_backend_label()

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a U-YNet model", "", "ONNX models (*.onnx);;All files (*)")
        if path:
            self.set_model_path(path)

    def _toggle_analyze_on_open(self) -> None:
        on = self.act_analyze_on_open.isChecked()
        self.session.analyze_on_open = on
        self.prefs.analyze_on_open = on

    def _toggle_overlay(self, key: str) -> None:
        o = self.overlay_controls.options()
        on = (self.act_show_mask if key == "show_mask" else self.act_show_boxes).isChecked()
        o = OverlayOptions(**{**o.__dict__, key: on})
        self.overlay_controls.set_options(o)
        self._on_overlay_options(o)

    def _seek_from_timeline(self, index: int) -> None:
        self.session.pause()
        self.session.seek(index)

    # ------------------------------------------------------------------ session -> widgets
    def choose_stream(self) -> None:
        """Pick the video stream of a file that holds several (the default: most frames, largest)."""
        from PySide6.QtWidgets import QInputDialog

        info = self.session.info
        n = int(getattr(info, "video_streams", 1)) if info is not None else 1
        if n < 2:
            self.statusBar().showMessage("This file holds one video stream.", 5000)
            return
        current = int(getattr(info, "stream", 0))
        labels = list(getattr(info, "stream_labels", ())) or [f"stream {i}" for i in range(n)]
        label, ok = QInputDialog.getItem(self, "Video stream", f"This file holds {n} video streams. "
                                         "Show and analyse:", labels, current, False)
        value = labels.index(label) if ok and label in labels else current
        if value != current:
            self.session.choose_stream(value)

    def _on_clip_opened(self, info: Any) -> None:
        path = self.session.path or ""
        self.setWindowTitle(f"{Path(path).name} — {APP_NAME}")
        self.player.show_clip(True)
        self.timeline.set_clip(int(info.frames), self.session.frame_times)
        self.overlay.set_result(None, None)
        self.prefs.add_recent(path)
        self._update_actions()

    def _on_position(self, index: int) -> None:
        """Move the timeline's current-frame line; at most ~15 times a second while playing.

        Repainting the plot costs several ms, and during playback the frame view needs the time.
        """
        self._cursor_target = index
        if not self.session.playing:
            self._cursor_timer.stop()
            self.timeline.set_cursor(index)
        elif not self._cursor_timer.isActive():
            self._cursor_timer.start()

    def _flush_cursor(self) -> None:
        self.timeline.set_cursor(self._cursor_target)

    def _on_frame_shown(self, sf: ShownFrame) -> None:
        self.player.frame_view.set_frame(sf.rgb, sf.display)
        self._show_frame_state(sf)

    def _on_shown_result(self, sf: ShownFrame) -> None:
        self._show_frame_state(sf)

    def _show_frame_state(self, sf: ShownFrame) -> None:
        hw = (int(sf.rgb.shape[0]), int(sf.rgb.shape[1]))
        self.overlay.set_result(sf.result, hw)
        self.player.set_counter(sf.index, self.session.frame_count, sf.pts_s)
        r = sf.result
        thr = self.session.model_info.threshold if self.session.model_info is not None else 0.5
        if r is None:
            analysed = bool(self.session.results) or self.session.analysis_running
            self.player.set_frame_state("not analysed" if analysed else "", "#888")
        elif r.state == "no_face":
            self.player.set_frame_state("no face on this frame", "#777")
        elif r.state == "error":
            self.player.set_frame_state(f"error: {r.error}", "#c0392b")
        else:
            score = r.max_score
            if score is None:
                self.player.set_frame_state("faces too small to judge", "#b9770e")
            else:
                flagged = score >= thr
                self.player.set_frame_state(
                    f"{'FLAGGED · ' if flagged else ''}max fake score {score:.2f}",
                    "#c0392b" if flagged else "#1e8449",
                )

    def _on_playing(self, playing: bool) -> None:
        self.player.set_playing(playing)
        if not playing:
            self._cursor_timer.stop()
            self._flush_cursor()
        self.act_play.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay))

    def _show_coverage(self, result: Any) -> None:
        """Say what the verdict does not cover (audio, outside faces, skipped frames) and what the model
        is known to miss (its card's first limits)."""
        from ..core.verdict import clip_cautions, known_limits, not_analysed

        if result is None:
            self.verdict_panel.set_coverage([])
        else:
            self.verdict_panel.set_coverage(not_analysed(result), known_limits(result), clip_cautions(result))

    def _on_provisional_verdict(self, verdict: Any) -> None:
        """While the scores stream in, the clip's own caution (small faces) joins the plan and the card's
        limits as soon as the frames so far show it; the final account comes with the finished result.

        The check reads every result so far, on the GUI thread, so it runs again only once the results have
        grown by a tenth: the work stays linear in the clip's length, not quadratic."""
        model = self.verdict_panel.model
        if verdict is None or model is None or self.session.analysis_state not in (STARTING, RUNNING):
            return
        n = len(self.session.results)
        if n < self._cautions_checked_at * 1.1:
            return
        self._cautions_checked_at = max(n, 1)
        from ..core.verdict import frame_cautions, model_limits, not_analysed_plan

        cautions = frame_cautions(self.session.results.values(), verdict.label)
        if cautions:
            self.verdict_panel.set_coverage(not_analysed_plan(self.session.settings.stride), model_limits(model),
                                            cautions)

    def _on_results_cleared(self) -> None:
        self._cautions_checked_at = 0
        self.verdict_panel.set_coverage([])
        self.timeline.clear_results()
        sf = self.session.shown
        if sf is not None:
            self._show_frame_state(sf)
        else:
            self.overlay.set_result(None, None)

    def _on_model(self, model: Any, description: Any) -> None:
        self.verdict_panel.set_model(model, description)
        if model is not None:
            self.timeline.set_threshold(model.threshold)
            if self.session.analysis_state in (STARTING, RUNNING):
                # the limits belong beside the first provisional score, not only after the last frame
                from ..core.verdict import model_limits, not_analysed_plan

                self.verdict_panel.set_coverage(not_analysed_plan(self.session.settings.stride), model_limits(model))
            if not model.trained:
                self.statusBar().showMessage("The model is UNTRAINED: its scores mean nothing.", 10000)

    def _on_analysis_state(self, state: str) -> None:
        partial = ""
        r = self.session.analysis_result
        if r is not None and not r.complete:
            partial = r.stop_reason
        self.verdict_panel.set_state(state, partial)
        running = state in (STARTING, RUNNING, CANCELLING)
        self._show_progress(running)
        text = {"starting": "Loading model…", "running": "Analysing…", "cancelling": "Cancelling…",
                "done": "Analysis complete", "cancelled": "Analysis cancelled", "stopped": "Analysis stopped"}
        self.state_label.setText(text.get(state, ""))
        if state == STARTING:
            self.progress_bar.setRange(0, 0)  # busy until the first progress report
            self.speed_label.setText("")
        self._update_actions()

    def _on_progress(self, p: Any) -> None:
        self.progress_bar.setRange(0, max(int(p.total), 1))
        self.progress_bar.setValue(int(p.done))
        self.speed_label.setText(f"{p.fps:.1f} frames/s · ETA {format_duration(p.eta_s)}")

    def _on_message(self, level: str, text: str, dialog: bool) -> None:
        getattr(log, "error" if level == "error" else "warning" if level == "warning" else "info")(text)
        self.statusBar().showMessage(text, 10000 if level != "info" else 5000)
        if dialog and not self._closing:
            self.show_message_box(level, text)

    def _on_overlay_options(self, o: OverlayOptions) -> None:
        self.overlay.set_options(o)
        self.act_show_mask.setChecked(o.show_mask)
        self.act_show_boxes.setChecked(o.show_boxes)
        self.prefs.set_overlay(o)

    # ------------------------------------------------------------------ helpers
    def show_message_box(self, level: str, text: str) -> QMessageBox:
        """A non-blocking message box (the window stays usable); replaces the previous one."""
        if self.last_message_box is not None:
            self.last_message_box.close()
        icon = {"error": QMessageBox.Icon.Critical, "warning": QMessageBox.Icon.Warning}.get(
            level, QMessageBox.Icon.Information)
        box = QMessageBox(icon, APP_NAME, text, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()
        self.last_message_box = box
        return box

    def _show_progress(self, on: bool) -> None:
        self.progress_bar.setVisible(on)
        self.speed_label.setVisible(on)
        self.cancel_button.setVisible(on)

    def _update_actions(self) -> None:
        has = self.session.has_clip
        busy = self.session.analysis_running
        for a in (self.act_play, self.act_prev, self.act_next, self.act_back10, self.act_fwd10, self.act_home,
                  self.act_end, self.act_fit):
            a.setEnabled(has)
        self.act_analyze.setEnabled(has and not busy)
        streams = int(getattr(self.session.info, "video_streams", 1)) if has and self.session.info is not None else 1
        self.act_stream.setEnabled(streams > 1 and not busy)
        self.act_cancel.setEnabled(busy and self.session.analysis_state != CANCELLING)
        self.cancel_button.setEnabled(self.act_cancel.isEnabled())
        for a in (self.act_model, self.act_model_default):
            a.setEnabled(not busy)
        self.menu_backend.setEnabled(not busy)

    def _update_backend_label(self) -> None:
        if not hasattr(self, "backend_label"):
            return
        name = self.session.backend_name
        if name.startswith("remote:"):
            from html import escape

            from ..backends import parse_backend_spec

            try:
                opts = parse_backend_spec(name)[1]
            except Exception:  # noqa: BLE001 - a label must not fail
                opts = {}
            urls = ", ".join(opts.get("url", []))
            self.backend_label.setText(f"Backend: <b>remote</b> · {escape(urls)} · the servers' model")
            return
        model = Path(self.session.model_path).name if self.session.model_path else "bundled model"
        self.backend_label.setText(f"Backend: <b>{name}</b> · {model}")

    def _fill_recent(self) -> None:
        self.menu_recent.clear()
        files = self.prefs.recent_files()
        for f in files:
            a = self.menu_recent.addAction(Path(f).name)
            a.setToolTip(f)
            a.setStatusTip(f)
            a.triggered.connect(lambda _=False, p=f: self.open_file(p))
        if files:
            self.menu_recent.addSeparator()
            self.menu_recent.addAction("Clear list", self.prefs.clear_recent)
        else:
            self.menu_recent.addAction("(no recent files)").setEnabled(False)

    def refresh_extension_menus(self) -> None:
        """Hide menus that nothing has filled yet (Export, Help)."""
        for m in (self.menu_export, self.menu_help):
            m.menuAction().setVisible(bool(m.actions()))

    # ------------------------------------------------------------------ Qt events
    def showEvent(self, event: Any) -> None:
        self.refresh_extension_menus()
        super().showEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        md = event.mimeData()
        if md.hasUrls() and any(u.isLocalFile() for u in md.urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_file(files[0]))  # return to the drag source first
            if len(files) > 1:
                self.statusBar().showMessage(f"Opened the first of {len(files)} dropped files.", 5000)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Remember the window, then cancel and join every worker: no thread outlives the window."""
        self._closing = True
        try:
            self.prefs.save_window(self)
            self.prefs.save_splitter("left_v2", QByteArray(self.left_split.saveState()))
            self.prefs.save_splitter("main_v2", QByteArray(self.main_split.saveState()))
            self.prefs.set_overlay(self.overlay_controls.options())
            self.prefs.sync()
        except Exception:  # failing to save preferences must not block closing
            log.exception("saving preferences failed")
        if self.last_message_box is not None:
            self.last_message_box.close()
        self.session.shutdown(timeout=5.0)
        event.accept()
