"""Qt-free domain logic shared by the CLI and the GUI (never import Qt here)."""
