"""U-YNet: definition (torch), checkpoint import, ONNX export, and ONNX model metadata.

Importing this package is cheap: the metadata helpers need neither torch nor onnxruntime, and the
torch-based names (``UYNet``, ``load_checkpoint``, ``export_onnx``, ``import_checkpoint``, ...) are
resolved on first use, so the CLI and GUI start without torch unless a model command needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .metadata import (
    INPUT_NAME,
    OUTPUT_NAMES,
    Calibration,
    calibration_json,
    card_path_for,
    default_bands,
    model_info_from_metadata,
    model_precision,
    parse_calibration,
    read_metadata_props,
    read_model_info,
    sha256_file,
    validate_model_interface,
)

if TYPE_CHECKING:
    from .checkpoint import infer_width, load_checkpoint, load_model
    from .export import export_onnx, export_untrained, import_checkpoint, update_metadata
    from .uynet import UYNet, UYNetForExport, build_uynet

_LAZY = {
    "UYNet": "uynet",
    "UYNetForExport": "uynet",
    "build_uynet": "uynet",
    "load_checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "infer_width": "checkpoint",
    "export_onnx": "export",
    "export_untrained": "export",
    "update_metadata": "export",
    "import_checkpoint": "export",
}

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAMES",
    "Calibration",
    "UYNet",
    "UYNetForExport",
    "build_uynet",
    "calibration_json",
    "card_path_for",
    "default_bands",
    "export_onnx",
    "export_untrained",
    "import_checkpoint",
    "infer_width",
    "load_checkpoint",
    "load_model",
    "model_info_from_metadata",
    "model_precision",
    "parse_calibration",
    "read_metadata_props",
    "read_model_info",
    "sha256_file",
    "update_metadata",
    "validate_model_interface",
]


def __getattr__(name: str) -> Any:
    """Import the torch-based submodule only when one of its names is first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
