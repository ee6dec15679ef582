"""Load U-YNet ``.pth`` checkpoints safely (``weights_only=True``) and strictly (every key must match).

Original DeepYNet checkpoints are raw state_dicts; training scripts often wrap them under
``state_dict``/``model`` and DataParallel prefixes keys with ``module.``. All three are accepted.
Anything else fails with a :class:`ModelError` that says what was wrong, never a half-loaded model.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import ModelError
from .uynet import UYNet

WIDTH_KEY = "inc.double_conv.0.weight"
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_SHOW = 4  # how many offending keys to name in a message


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f" and {len(keys) - _SHOW} more" if len(keys) > _SHOW else "")


def _looks_like_torch_file(p: Path) -> bool:
    """torch.save writes a zip archive (since 1.6) or, in the legacy format, a pickle stream."""
    if zipfile.is_zipfile(p):
        return True
    with open(p, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _weights_only_detail(text: str) -> str:
    """The one informative line of torch's long weights_only refusal (e.g. the blocked GLOBAL)."""
    for line in text.splitlines():
        line = line.strip()
        if "GLOBAL" in line or line.startswith("Unsupported"):
            return line
    return ""


def _torch_load(p: Path) -> Any:
    if not _looks_like_torch_file(p):
        raise ModelError(
            f"{p.name} is not a PyTorch checkpoint file (neither a zip archive nor a pickle stream; is it truncated?)"
        )
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        detail = _weights_only_detail(text)
        if "Weights only load failed" in text or "weights_only" in text:
            raise ModelError(
                f"{p.name} was refused: torch.load(weights_only=True) found Python objects that are not "
                "plain tensors (a pickle payload that could run code when loaded)"
                + (f" [{detail}]" if detail else "")
                + "; only a plain state_dict can be imported: re-save it with "
                "torch.save(model.state_dict(), path) in a trusted environment"
            ) from exc
        raise ModelError(f"{p.name} is not a readable PyTorch checkpoint ({text.splitlines()[0]})") from exc
    except Exception as exc:  # corrupt archives raise RuntimeError, KeyError, EOFError, ...
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelError(
            f"{p.name} is not a readable PyTorch checkpoint ({type(exc).__name__}{': ' + first if first else ''})"
        ) from exc


def _unwrap(obj: Any, name: str) -> dict[str, Tensor]:
    """Find the state_dict inside what torch.load returned and strip a DataParallel prefix."""
    if isinstance(obj, Mapping) and not any(isinstance(v, Tensor) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise ModelError(f"{name} does not hold a state_dict (found a {type(obj).__name__})")
    if not obj:
        raise ModelError(f"{name} holds an empty state_dict")
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise ModelError(
            f"{name} does not hold a plain state_dict: these entries are not tensors: {_few(not_tensors)} "
            f"(a wrapped state_dict is accepted only under {', '.join(_WRAPPER_KEYS)})"
        )
    state: dict[str, Tensor] = {}
    for k, v in obj.items():
        state[str(k).removeprefix("module.")] = v
    return state


def infer_width(state: Mapping[str, Tensor], name: str = "checkpoint") -> int:
    """Base width from the first convolution's weight [width, 3, 3, 3]."""
    w = state.get(WIDTH_KEY)
    if w is None:
        raise ModelError(
            f"{name} is not a U-YNet checkpoint: it has no {WIDTH_KEY} (found keys: {_few(sorted(state))})"
        )
    if w.ndim != 4 or tuple(w.shape[1:]) != (3, 3, 3) or w.shape[0] < 1:
        raise ModelError(
            f"{name} is not a U-YNet checkpoint: {WIDTH_KEY} has shape {list(w.shape)}, expected [width, 3, 3, 3]"
        )
    return int(w.shape[0])


def _check_against(model: UYNet, state: Mapping[str, Tensor], name: str) -> None:
    """Name missing/unexpected keys and shape mismatches before torch's long strict-load message."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
        raise ModelError(f"{name} does not match U-YNet width {model.width}: keys " + "; ".join(parts))
    bad = [
        f"{k} is {list(state[k].shape)} but U-YNet width {model.width} needs {list(v.shape)}"
        for k, v in expected.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise ModelError(f"{name} has tensors of the wrong shape: " + "; ".join(bad[:_SHOW]))


def _load(path: str | Path) -> tuple[dict[str, Tensor], UYNet]:
    p = Path(path)
    from ..input_limits import check_checkpoint_file

    check_checkpoint_file(p)  # type, size and zip-bomb limits before torch allocates anything
    state = _unwrap(_torch_load(p), p.name)
    width = infer_width(state, p.name)
    # Build on the meta device: no 88 M random initial weights to compute just to overwrite them.
    with torch.device("meta"):
        model = UYNet(width)
    _check_against(model, state, p.name)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:  # should be caught above; keep torch's words if not
        raise ModelError(f"{p.name} does not fit U-YNet width {width}: {str(exc).splitlines()[0]}") from exc
    return state, model.eval()


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], int]:
    """Load and verify a checkpoint: (state_dict with ``module.`` stripped, width).

    The state_dict has been loaded into ``UYNet(width)`` with ``strict=True``, so it is known good.
    """
    state, model = _load(path)
    return state, model.width


def load_model(path: str | Path) -> UYNet:
    """A U-YNet in eval mode with the checkpoint's weights."""
    return _load(path)[1]


def load_lite_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The state_dict of a lite0 (EfficientNet-Lite0 encoder) U-YNet checkpoint, verified by a strict load.

    Accepts the training loop's ``{"model": state, ...}`` or a bare state_dict; ``weights_only`` as everywhere.
    """
    from .uynet_lite import LiteUYNet

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"checkpoint not found: {p}")
    state = _unwrap(_torch_load(p), p.name)
    model = LiteUYNet.for_state(state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{p.name} is not a lite0 U-YNet checkpoint: {str(exc).splitlines()[0]}") from exc
    return dict(model.state_dict())
