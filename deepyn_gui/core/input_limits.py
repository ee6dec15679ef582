"""Size and type limits on untrusted model inputs, checked before anything is allocated or parsed.

A 2 MB zip-bomb ``.pth`` once took 2.3 GB of memory before ``torch.load`` refused it, and a FIFO given
as a model was reported as "not found" (or would block a reader). These checks look only at ``lstat``
and the zip directory (a few KB), so a hostile file is refused in one sentence at no cost.

Limits (stated in the README):

* ONNX model: a regular file, 1 byte to 2 GiB (protobuf cannot hold more; the bundled model is < 5 MB).
* PyTorch checkpoint: a regular file of at most 2 GiB; if it is a zip archive (the format of
  ``torch.save`` since 1.6), its members may unpack to at most 2 GiB in total and no compressed member
  may expand more than 20-fold (``torch.save`` stores tensors uncompressed; a bomb relies on deflate).
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

from .errors import DeepYNError, InputError, ModelError

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_CHECKPOINT_UNPACKED_BYTES",
    "MAX_MODEL_BYTES",
    "MAX_ZIP_RATIO",
    "check_checkpoint_file",
    "check_model_file",
]

MAX_MODEL_BYTES = 2 << 30
MAX_CHECKPOINT_BYTES = 2 << 30
MAX_CHECKPOINT_UNPACKED_BYTES = 2 << 30
MAX_ZIP_RATIO = 20


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MB"


def os_error_text(exc: OSError, path: object, what: str = "File") -> str:
    """One sentence for an OS error met on ``path``: the same words wherever core opens a file."""
    if isinstance(exc, FileNotFoundError):
        return f"{what} not found: '{path}'."
    if isinstance(exc, IsADirectoryError):
        return f"'{path}' is a folder, not a file."
    if isinstance(exc, PermissionError):
        return f"'{path}' cannot be read (permission denied)."
    return f"'{path}' cannot be accessed: {exc.strerror or exc}."


def stat_regular_file(path: Path, what: str = "File", error: type[DeepYNError] = InputError) -> os.stat_result:
    """``path``'s stat, or ``error`` in one sentence when it is missing, unreadable, a folder or a
    device/pipe/socket (FFmpeg and ONNX Runtime block on a FIFO or fail with confusing words)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise error(os_error_text(exc, path, what)) from exc
    if stat.S_ISDIR(st.st_mode):
        raise error(f"'{path}' is a folder, not a file.")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"'{path}' is not a regular file (device, pipe or socket).")
    return st


def check_model_file(path: str | os.PathLike[str], what: str = "model file", max_bytes: int = MAX_MODEL_BYTES) -> Path:
    """A regular, non-empty file no larger than ``max_bytes``; else :class:`ModelError` in one sentence."""
    p = Path(path)
    st = stat_regular_file(p, what, ModelError)
    if st.st_size == 0:
        kind = "an ONNX model" if what == "model file" else f"a {what}"
        raise ModelError(f"{p.name} cannot be loaded as {kind}: the file is empty (0 bytes)")
    if st.st_size > max_bytes:
        raise ModelError(f"{what} {p} is {_gib(st.st_size)}, over the limit of {_gib(max_bytes)}")
    return p


def check_checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """:func:`check_model_file` for a checkpoint, plus the zip-bomb checks on its directory."""
    p = check_model_file(path, "checkpoint", MAX_CHECKPOINT_BYTES)
    if not zipfile.is_zipfile(p):
        return p
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"{p.name} is not a readable PyTorch checkpoint (damaged zip: {exc})") from exc
    total = 0
    for zi in infos:
        total += zi.file_size
        if zi.compress_type != zipfile.ZIP_STORED and zi.file_size > (1 << 20) \
                and zi.file_size > MAX_ZIP_RATIO * max(1, zi.compress_size):
            raise ModelError(
                f"{p.name} was refused: member {zi.filename!r} would expand {zi.file_size // max(1, zi.compress_size)}"
                f"-fold to {_gib(zi.file_size)} (limit {MAX_ZIP_RATIO}-fold; a zip bomb, not a checkpoint)"
            )
    if total > MAX_CHECKPOINT_UNPACKED_BYTES:
        raise ModelError(
            f"{p.name} was refused: it would unpack to {_gib(total)}, over the limit of "
            f"{_gib(MAX_CHECKPOINT_UNPACKED_BYTES)}"
        )
    return p
