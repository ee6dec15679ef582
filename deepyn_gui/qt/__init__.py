"""The desktop shell: PySide6 + pyqtgraph widgets that draw the session and forward the user's intent.

All domain logic lives in :mod:`deepyn_gui.core`; the state the widgets show lives in
:class:`deepyn_gui.qt.session.Session`, which they observe through signals. Long work (decoding for
display, analysis) runs on worker threads and reaches the GUI thread only through queued signals.
"""
