"""DeepYN Viewer: a forensic viewer for suspect video.

``deepyn_gui.core`` holds the Qt-free domain logic, ``deepyn_gui.backends`` the inference backends,
``deepyn_gui.qt`` the desktop shell and ``deepyn_gui.cli`` the command-line shell.
"""

__version__ = "0.1.0"
APP_NAME = "DeepYN Viewer"
