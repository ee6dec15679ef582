"""DeepYN Viewer: a forensic viewer for suspect video.

``deepyn_gui.core`` holds the Qt-free domain logic, ``deepyn_gui.backends`` the inference backends,
``deepyn_gui.qt`` the desktop shell and ``deepyn_gui.cli`` the command-line shell.
"""

import os as _os

# Privacy (issue 15): ONNX Runtime >= 1.29 sends usage telemetry on Linux and writes a device identifier
# under ~/.cache/Microsoft/DeveloperTools/ on first use unless this is set before it is imported. Every
# entry point imports this package first, so the switch is in place before any backend loads it.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
APP_NAME = "DeepYN Viewer"
