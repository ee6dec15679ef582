"""Evidence integrity: hashes that let another analyst prove they looked at the same file.

Hashing streams the file in fixed chunks into one reused buffer (evidence can be many GB; memory
stays flat), opens it ``'rb'`` only, reports progress and can be cancelled between chunks, because the
GUI hashes on a worker while the user may close the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

from deepyn_gui.core.errors import Cancelled, InputError

__all__ = ["FileFingerprint", "file_fingerprint", "sha256_file"]

#: progress(done_bytes, total_bytes)
ProgressFn = Callable[[int, int], None]


class FileFingerprint(TypedDict):
    """What chain-of-custody checks compare later: size and mtime are cheap, sha256 is the proof."""

    size: int
    mtime_ns: int
    sha256: str


def sha256_file(
    path: str | os.PathLike[str],
    chunk_size: int = 1 << 20,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """Hex SHA-256 of the file's bytes, read-only and streamed.

    ``progress(done, total)`` is called after every chunk (and once at 0). Raises :class:`Cancelled`
    when ``cancel`` is set, :class:`InputError` when the file cannot be read.
    """
    p = Path(path)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    digest = hashlib.sha256()
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    try:
        with open(p, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"'{p}' is not a regular file, so it cannot be hashed.")
            total = int(st.st_size)
            done = 0
            if progress is not None:
                progress(0, total)
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"Hashing '{p.name}' was cancelled.")
                n = fh.readinto(buf)
                if not n:
                    break
                digest.update(view[:n])
                done += n
                if progress is not None:
                    progress(done, max(total, done))
    except FileNotFoundError as exc:
        raise InputError(f"File not found: '{p}'.") from exc
    except IsADirectoryError as exc:
        raise InputError(f"'{p}' is a folder, not a file.") from exc
    except PermissionError as exc:
        raise InputError(f"'{p}' cannot be read (permission denied).") from exc
    except OSError as exc:
        raise InputError(f"'{p}' could not be read: {exc.strerror or exc}.") from exc
    return digest.hexdigest()


def file_fingerprint(
    path: str | os.PathLike[str],
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> FileFingerprint:
    """Size, modification time (ns) and SHA-256 of a file, taken so that they belong together.

    The file is stat-ed before and after hashing; if it changed meanwhile the hash would describe
    neither state, so :class:`InputError` is raised instead of returning a fingerprint.
    """
    p = Path(path)
    try:
        before = p.stat()
    except FileNotFoundError as exc:
        raise InputError(f"File not found: '{p}'.") from exc
    except OSError as exc:
        raise InputError(f"'{p}' cannot be accessed: {exc.strerror or exc}.") from exc
    digest = sha256_file(p, progress=progress, cancel=cancel)
    after = p.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise InputError(f"'{p.name}' changed while it was being hashed; hash it again when it is stable.")
    return FileFingerprint(size=int(after.st_size), mtime_ns=int(after.st_mtime_ns), sha256=digest)
