"""Export U-YNet to the single-file ONNX model every backend runs, with ``deepyn.*`` metadata.

The legacy TorchScript exporter (``dynamo=False``) gives a true opset-17 single file with a dynamic
batch axis and needs no ``onnxscript`` (DESIGN.md §4). The file is written to a temporary name
beside the target and renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ... import __version__ as APP_VERSION
from ..errors import ExportError, ModelError
from ..export.atomic import atomic_path
from .metadata import (
    INPUT_NAME,
    KEY_CALIBRATION,
    KEY_NAME,
    KEY_PRECISION,
    KEY_TRAINED,
    KEY_VERSION,
    KEY_WIDTH,
    OUTPUT_NAMES,
    parse_calibration,
    sha256_file,
)
from .uynet import INPUT_SIZE, UYNet, UYNetForExport, build_uynet

OPSET = 17
_MODEL_MODE = 0o644  # a model is not a secret; mkstemp's 0600 would hide it from other users
MetaValue = str | bool | int | float | dict | list  # type: ignore[type-arg]


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Pin torch's intra-op threads for the export (2 shared cores: oversubscription is 5-10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _meta_text(value: MetaValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _complete_metadata(model: torch.nn.Module, metadata: Mapping[str, MetaValue]) -> dict[str, str]:
    """Normalise values to strings, fill name/version/trained/width/arch, and validate calibration."""
    meta = {str(k): _meta_text(v) for k, v in metadata.items()}
    width = str(getattr(model, "width", 0))
    meta.setdefault("deepyn.arch", str(getattr(model, "arch", "uynet")))
    if meta.get(KEY_WIDTH, width) != width:
        raise ModelError(f"metadata says width {meta[KEY_WIDTH]} but the model has width {width}")
    meta[KEY_WIDTH] = width
    meta.setdefault(KEY_NAME, f"uynet-w{width}")
    meta.setdefault(KEY_VERSION, "")
    # Unknown training state is recorded as untrained: claiming "trained" must be deliberate.
    meta[KEY_TRAINED] = meta.get(KEY_TRAINED, "false").strip().lower()
    if meta[KEY_TRAINED] not in ("true", "false"):
        raise ModelError(f"{KEY_TRAINED} must be 'true' or 'false', got {meta[KEY_TRAINED]!r}")
    if KEY_CALIBRATION in meta:
        parse_calibration(meta[KEY_CALIBRATION])  # refuse to write a calibration we could not read back
    meta.setdefault(KEY_PRECISION, "fp32")
    meta.setdefault("deepyn.opset", str(OPSET))
    meta.setdefault("deepyn.exporter", f"torch {torch.__version__} (TorchScript exporter)")
    meta.setdefault("deepyn.app_version", APP_VERSION)
    return meta


def _set_props(proto: Any, meta: Mapping[str, str]) -> None:
    """Replace the ONNX metadata_props with ``meta``, in sorted order so exports are reproducible."""
    del proto.metadata_props[:]
    for key in sorted(meta):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, meta[key]


def _wrapper_for(model: torch.nn.Module) -> torch.nn.Module:
    """The export wrapper of either architecture (same ONNX interface for both)."""
    if isinstance(model, UYNet):
        return UYNetForExport(model).eval()
    from .uynet_lite import LiteUYNet, LiteUYNetForExport

    if isinstance(model, LiteUYNet):
        return LiteUYNetForExport(model).eval()
    raise ModelError(f"cannot export a {type(model).__name__}: not a U-YNet")


def export_onnx(
    model: torch.nn.Module,
    out_path: str | Path,
    metadata: Mapping[str, MetaValue] | None = None,
    *,
    threads: int = 2,
) -> Path:
    """Export ``model`` to ``out_path`` (input ``image``; outputs ``mask_prob``, ``fake_score``).

    ``metadata`` goes into the ONNX ``metadata_props``: ``deepyn.name``, ``deepyn.version``,
    ``deepyn.trained`` ("true"/"false", default "false"), ``deepyn.width`` (filled from the model),
    ``deepyn.calibration`` (JSON ``{"threshold": t, "bands": [[lo, hi, name, meaning], ...]}``,
    validated) and any other key given. Returns the final path.
    """
    import onnx

    out = Path(out_path)
    meta = _complete_metadata(model, metadata or {})
    if not out.parent.is_dir():
        raise ExportError(f"cannot write the model: folder {out.parent} does not exist")
    wrapper = _wrapper_for(model)
    was_training = model.training
    model.eval()
    try:
        with atomic_path(out) as tmp:
            # Batch 2 for tracing, so no shape is specialised to 1 before the batch axis is made dynamic.
            dummy = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0))
            with _torch_threads(threads), torch.no_grad(), warnings.catch_warnings():
                # The Up block's size check is constant at 224 x 224; the tracer's warning about it is noise.
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
                # dynamo=False is deliberate (true opset 17 single file, no onnxscript): DESIGN.md §4.
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                torch.onnx.export(
                    wrapper,
                    (dummy,),
                    str(tmp),
                    dynamo=False,
                    opset_version=OPSET,
                    input_names=[INPUT_NAME],
                    output_names=list(OUTPUT_NAMES),
                    dynamic_axes={
                        INPUT_NAME: {0: "batch"},
                        OUTPUT_NAMES[0]: {0: "batch"},
                        OUTPUT_NAMES[1]: {0: "batch"},
                    },
                    do_constant_folding=True,
                )
            proto = onnx.load(str(tmp))
            _declare_output_shapes(proto)
            _set_props(proto, meta)
            proto.producer_name = "deepyn_gui"
            proto.producer_version = APP_VERSION
            onnx.checker.check_model(proto)
            onnx.save(proto, str(tmp))
            os.chmod(tmp, _MODEL_MODE)
    finally:
        model.train(was_training)
    return out


def _declare_output_shapes(proto: Any) -> None:
    """Write the outputs' fixed sizes into the graph: ``mask_prob`` [batch, 224, 224], ``fake_score``
    [batch]. The tracer leaves some as symbolic names; servers (Triton's config, the remote backend's
    contract check) read the declared shapes."""
    fixed: dict[str, list[str | int]] = {OUTPUT_NAMES[0]: ["batch", INPUT_SIZE, INPUT_SIZE], OUTPUT_NAMES[1]: ["batch"]}
    for vi in proto.graph.output:
        want = fixed.get(vi.name)
        dims = vi.type.tensor_type.shape.dim
        if want is None or len(dims) != len(want):
            continue
        for d, w in zip(dims, want):
            if isinstance(w, int):
                d.dim_value = w
            else:
                d.dim_param = w


def update_metadata(model_path: str | Path, updates: Mapping[str, MetaValue | None]) -> Path:
    """Set ``deepyn.*`` (or other) metadata on an existing ONNX file, atomically.

    For models made by other tools, e.g. after ``quantize_static`` set ``deepyn.precision=int8``
    or add ``deepyn.calibration`` once the model has been calibrated. A value of None removes a key.
    """
    import onnx

    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path.name} is not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    for key, value in updates.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = _meta_text(value)
    if KEY_CALIBRATION in meta:
        parse_calibration(meta[KEY_CALIBRATION])
    _set_props(proto, meta)
    _declare_output_shapes(proto)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
        os.chmod(tmp, _MODEL_MODE)
    return path


def export_untrained(
    width: int,
    out_path: str | Path,
    *,
    seed: int = 0,
    name: str | None = None,
    metadata: Mapping[str, MetaValue] | None = None,
    threads: int = 2,
) -> Path:
    """Export a randomly initialised U-YNet (``deepyn.trained=false``): test fixtures and placeholders."""
    meta: dict[str, MetaValue] = {
        KEY_NAME: name or f"uynet-w{width}-untrained-seed{seed}",
        KEY_TRAINED: "false",
        "deepyn.seed": str(seed),
    }
    meta.update(metadata or {})
    with _torch_threads(threads):
        model = build_uynet(width, seed=seed)
    return export_onnx(model, out_path, meta, threads=threads)


def import_checkpoint(
    ckpt_path: str | Path,
    out_path: str | Path,
    name: str | None = None,
    *,
    version: str = "",
    calibration: Mapping[str, object] | str | None = None,
    threads: int = 2,
) -> Path:
    """Convert an original (or our own) U-YNet ``.pth`` checkpoint into a DeepYN ONNX model.

    Used by ``deepyn models import CHECKPOINT.pth --out MODEL.onnx``. The checkpoint's SHA-256 and
    file name are recorded in the model's metadata so the conversion can be reproduced.
    """
    from .checkpoint import load_model

    ckpt = Path(ckpt_path)
    with _torch_threads(threads):
        model = load_model(ckpt)
    meta: dict[str, MetaValue] = {
        KEY_NAME: name or ckpt.stem,
        KEY_VERSION: version,
        KEY_TRAINED: "true",
        "deepyn.source_checkpoint": ckpt.name,
        "deepyn.source_checkpoint_sha256": sha256_file(ckpt),
    }
    if calibration is not None:
        meta[KEY_CALIBRATION] = calibration if isinstance(calibration, str) else json.dumps(calibration)
    return export_onnx(model, out_path, meta, threads=threads)
