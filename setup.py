"""Packaging glue that pyproject.toml cannot express: ship the top-level ``resources/`` folder.

The bundled model, its card, the demo portrait, icons and report templates live in ``resources/`` at
the repository root (one copy, used as-is by a source checkout and by the PyInstaller spec). In a
wheel they are installed as ``deepyn_gui/_resources/``, where :mod:`deepyn_gui.resources` looks for
them. All project metadata stays in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["deepyn_gui", "deepyn_gui.*"]) + ["deepyn_gui._resources"],
    package_dir={"deepyn_gui._resources": "resources"},
    package_data={"deepyn_gui._resources": ["**/*"]},
    exclude_package_data={"deepyn_gui._resources": ["**/__pycache__/*", "**/*.pyc"]},
)
