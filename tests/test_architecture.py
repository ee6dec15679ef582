"""House rules that keep the layers honest: core and the CLI never import Qt."""

import subprocess
import sys
import textwrap


def test_core_and_cli_import_without_qt():
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'shiboken6', 'superqt'):
                    raise ImportError('Qt blocked: ' + name)
                return None
        sys.meta_path.insert(0, Block())
        import deepyn_gui.core as core, deepyn_gui.cli, deepyn_gui.commands, deepyn_gui.backends
        import deepyn_gui.serving
        for pkg in (core, deepyn_gui.commands, deepyn_gui.backends, deepyn_gui.serving):
            for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):
                importlib.import_module(m.name)
        deepyn_gui.cli.build_parser()
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_cli_start_does_not_import_torch():
    code = "import sys, deepyn_gui.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
