"""Sub-commands of the ``deepyn`` CLI, one module each (Qt-free)."""
