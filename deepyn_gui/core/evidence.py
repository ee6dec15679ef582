"""Evidence integrity: hashes that let another analyst prove they looked at the same file.

Hashing streams the file in fixed chunks into one reused buffer (evidence can be many GB; memory
stays flat), opens it ``'rb'`` only, reports progress and can be cancelled between chunks, because the
GUI hashes on a worker while the user may close the file.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np

from deepyn_gui.core.errors import Cancelled, ExportError, InputError
from deepyn_gui.core.input_limits import os_error_text

__all__ = [
    "EvidenceChanged",
    "FileFingerprint",
    "check_output_dir",
    "decoder_versions",
    "file_fingerprint",
    "frame_hashes_tsv",
    "is_evidence_folder",
    "prepare_export",
    "require_evidence",
    "sha256_file",
    "verify_evidence",
    "write_frame_hashes",
]

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
    except OSError as exc:
        raise InputError(os_error_text(exc, p)) from exc
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
    except OSError as exc:
        raise InputError(os_error_text(exc, p)) from exc
    digest = sha256_file(p, progress=progress, cancel=cancel)
    after = p.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise InputError(f"'{p.name}' changed while it was being hashed; hash it again when it is stable.")
    return FileFingerprint(size=int(after.st_size), mtime_ns=int(after.st_mtime_ns), sha256=digest)


# ------------------------------------------------------------------------------------------------
# Chain of custody for exports: re-verify the evidence, keep exports out of its folder, frame hashes.
# ------------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)

FRAMEHASH_FORMAT = "deepyn.framehash/1"


class EvidenceChanged(InputError):
    """The evidence no longer has the SHA-256 recorded when it was analysed: exports are refused."""


def verify_evidence(
    path: str | os.PathLike[str],
    expected_sha256: str,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> bool:
    """True when the file's SHA-256 still equals ``expected_sha256``; logs a loud warning when not.

    Re-hashes the whole file (the size/mtime are not proof: both can be forged or preserved).
    """
    actual = sha256_file(path, progress=progress, cancel=cancel)
    ok = bool(expected_sha256) and hmac.compare_digest(actual.lower(), expected_sha256.strip().lower())
    if not ok:
        log.warning(
            "EVIDENCE CHANGED: '%s' now has SHA-256 %s but %s was recorded; results no longer describe it.",
            Path(path).name, actual, expected_sha256 or "nothing",
        )
    return ok


def require_evidence(
    path: str | os.PathLike[str],
    expected_sha256: str,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Raise :class:`EvidenceChanged` unless the evidence still hashes to ``expected_sha256``."""
    name = Path(path).name
    if not expected_sha256:
        raise EvidenceChanged(
            f"The analysis of '{name}' records no SHA-256, so the evidence cannot be verified; analyse it again."
        )
    if not verify_evidence(path, expected_sha256, progress=progress, cancel=cancel):
        raise EvidenceChanged(
            f"'{name}' has changed since it was analysed (its SHA-256 no longer matches "
            f"{expected_sha256[:16]}...); export refused. Analyse the file again."
        )


def is_evidence_folder(folder: str | os.PathLike[str], evidence_path: str | os.PathLike[str]) -> bool:
    """Is ``folder`` the folder that holds the evidence, or below it (symlinks and ``..`` resolved)?"""
    from .output_guard import _is_within

    try:
        if _is_within(Path(folder), Path(evidence_path).expanduser().resolve().parent):
            return True
    except OSError:
        return False
    try:
        a = Path(folder).expanduser().resolve()
        b = Path(evidence_path).expanduser().resolve().parent
    except OSError:
        return False
    if a == b:
        return True
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_dir(
    out_dir: str | os.PathLike[str],
    evidence_path: str | os.PathLike[str],
    allow_evidence_dir: bool = False,
    create: bool = True,
) -> Path:
    """The export folder, checked by the output guard (never the evidence's folder or below it unless
    ``allow_evidence_dir``, never an input); created when ``create``. Raises :class:`ExportError`."""
    from .output_guard import check_output_dir as guard_dir

    out = guard_dir(out_dir, evidence=[evidence_path], allow_evidence_dir=allow_evidence_dir)
    if not out.is_dir():
        if not create:
            raise ExportError(f"Export folder does not exist: {out}")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"Cannot create the export folder {out}: {exc.strerror or exc}.") from exc
    if not os.access(out, os.W_OK):
        raise ExportError(f"Cannot write to {out} (permission denied).")
    return out


def check_output_file(
    target: str | os.PathLike[str],
    evidence_path: str | os.PathLike[str],
    allow_evidence_dir: bool = False,
    inputs: tuple[str | os.PathLike[str] | None, ...] = (),
) -> Path:
    """A file an analysis will write later, checked now (by the output guard) so a long run does not
    end in a lost result or in an overwritten exhibit. Raises :class:`ExportError` with one sentence."""
    from .output_guard import check_output_file as guard_file

    return guard_file(target, inputs=inputs, evidence=[evidence_path], allow_evidence_dir=allow_evidence_dir)


def prepare_export(
    evidence_path: str | os.PathLike[str],
    expected_sha256: str,
    out_dir: str | os.PathLike[str],
    allow_evidence_dir: bool = False,
    verify: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """What every export does first: check the target folder, then re-verify the evidence's SHA-256."""
    folder = check_output_dir(out_dir, evidence_path, allow_evidence_dir, create=True)
    if verify:
        require_evidence(evidence_path, expected_sha256, progress=progress, cancel=cancel)
    return folder


def decoder_versions() -> dict[str, str]:
    """PyAV and FFmpeg library versions: decoded pixels depend on them, so frame hashes record them."""
    import av

    out = {"pyav": str(av.__version__), "ffmpeg": str(getattr(av, "ffmpeg_version_info", ""))}
    for lib, ver in sorted(getattr(av, "library_versions", {}).items()):
        out[lib] = ".".join(str(v) for v in ver)
    return out


def frame_hashes_tsv(
    path: str | os.PathLike[str],
    evidence_sha256: str = "",
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """The frame hash table as TSV text, with ``#`` header lines naming the decoder and its versions."""
    from .video import VideoSource

    with VideoSource(path) as src:
        info = src.info
        rows: list[str] = []
        for frame in src.frames():
            if cancel is not None and cancel.is_set():
                raise Cancelled("frame hashing cancelled")
            digest = hashlib.sha256(np.ascontiguousarray(frame.rgb).tobytes()).hexdigest()
            rows.append(f"{frame.index}\t{frame.pts_s:.6f}\t{digest}\n")
            if on_progress is not None:
                on_progress(len(rows), info.frames)
        problems = list(src.decode_errors)
    versions = decoder_versions()
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if k.startswith("lib"))
    head = [
        f"#format: {FRAMEHASH_FORMAT}",
        f"#evidence: {Path(path).name}",
        f"#evidence_sha256: {evidence_sha256 or 'not given'}",
        f"#decoder: {info.codec} via PyAV {versions['pyav']} (FFmpeg {versions['ffmpeg']}; {libs})",
        f"#container: {info.container}",
        (f"#pixels: rgb24 {info.width}x{info.height}, source pix_fmt {info.pix_fmt}, rotation {info.rotation} "
         "applied, rows top to bottom, no padding"),
        "#hash: SHA-256 of the pixel bytes of each frame, in presentation order",
        f"#frames: {len(rows)} of {info.frames}",
    ]
    head += [f"#problem: {p}" for p in problems]
    clean = [h.replace("\r", " ").replace("\n", " ").replace("\t", " ") for h in head]  # names may hold these
    return "\n".join(clean) + "\nframe\tpts_s\tsha256\n" + "".join(rows)


def write_frame_hashes(
    path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    expected_sha256: str | None = None,
    verify: bool = True,
    allow_evidence_dir: bool = False,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write the frame hash TSV atomically (after the usual custody checks)."""
    from .export.atomic import write_bytes_atomic
    from .output_guard import check_output_file as guard_file

    out_path = Path(out_path)
    prepare_export(path, expected_sha256 or "", out_path.parent, allow_evidence_dir,
                   verify=verify and expected_sha256 is not None)
    guard_file(out_path, inputs=[path], evidence=[path], allow_evidence_dir=allow_evidence_dir)
    text = frame_hashes_tsv(path, expected_sha256 or "", on_progress=on_progress, cancel=cancel)
    return write_bytes_atomic(out_path, text.encode("utf-8"))
