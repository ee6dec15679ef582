"""The one output guard: every file or folder a command or the viewer writes is checked here first.

A forensic tool must never destroy what it was given. Earlier, three commands overwrote the evidence
when an output option named it, and ``--json /dev/full`` would have replaced a device node (as root).
So every output path goes through :func:`check_output_file` or :func:`check_output_dir`, which refuse,
with one sentence:

* a path that *is* an input (evidence, model, checkpoint, data folder), whether by name, symlink or
  hard link (compared by device + inode, so ``..`` and links cannot hide it);
* a path in the evidence's folder or anywhere below it, unless ``allow_evidence_dir`` (exports are
  kept apart from the exhibit);
* a path that exists and is not a regular file (device, FIFO, socket; a folder where a file goes);
* an existing file when the caller's documented behaviour is not to replace it (``overwrite=False``).

Files that may be replaced are replaced atomically (temp file + rename, see ``export.atomic``), which
also means a symlink at the target is replaced by a file, never followed into what it points to.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import ExportError

__all__ = [
    "OutputRefused", "check_output_dir", "check_output_file", "refuse_special_file", "safe_name", "safe_text",
]

PathLike = str | os.PathLike[str]


class OutputRefused(ExportError):
    """An output path was refused by the guard (exit 2, one line)."""


def safe_name(path: PathLike, backslash: bool = True) -> str:
    """A path for a terminal line: control characters escaped as ``ls -b`` does (``\\n``, ``\\033``).

    A file name can hold newlines and escape sequences; printed raw it can forge a whole verdict line.
    ``backslash=False`` leaves backslashes alone (for whole messages, see :func:`safe_text`).
    """
    out: list[str] = []
    for ch in str(path):
        o = ord(ch)
        if ch == "\\" and backslash:
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0 or o in (0x2028, 0x2029, 0x202E, 0x2066, 0x2067, 0x2068,
                                                              0x2069, 0x202A, 0x202B, 0x202C, 0x202D, 0x200E,
                                                              0x200F):
            out.append(f"\\{o:03o}" if o < 0x100 else f"\\u{o:04x}")
        elif 0xDC80 <= o <= 0xDCFF:  # undecodable byte kept by surrogateescape
            out.append(f"\\{o - 0xDC00:03o}")
        else:
            out.append(ch)
    return "".join(out)


def safe_text(message: object) -> str:
    """A message for one terminal line: control characters (from file names inside it) escaped."""
    return safe_name(str(message), backslash=False)


def _resolved(p: Path) -> Path:
    try:
        return p.expanduser().resolve()
    except (OSError, RuntimeError):
        return p.expanduser().absolute()


def _same_file(a: Path, b: Path) -> bool:
    """Same inode (symlink or hard link) or the same resolved name."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _is_within(path: Path, folder: Path) -> bool:
    """Is ``path`` the folder or anywhere below it (both resolved)?"""
    p, f = _resolved(path), _resolved(folder)
    if p == f or f in p.parents:
        return True
    try:  # the same folder reached through a bind mount or a different spelling
        return p.exists() and os.path.samefile(p, f)
    except OSError:
        return False


def _links_into(out: Path, folder: Path) -> Path | None:
    """A file under ``folder`` that ``out`` is another name for (hard link or symlink), if any.

    Only looked for when ``out`` exists and has several names (or is a link): the common case costs
    one ``stat``, and a data folder is walked only for a target that could be one of its files.
    """
    try:
        st = out.stat()
        linked = out.is_symlink() or st.st_nlink > 1
    except OSError:
        return None
    if not linked:
        return None
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            try:
                ps = p.stat()
            except OSError:
                continue
            if (ps.st_dev, ps.st_ino) == (st.st_dev, st.st_ino):
                return p
    return None


def _check_inputs(out: Path, inputs: Iterable[PathLike | None], what: str) -> None:
    for i in inputs:
        if i is None or str(i) == "":
            continue
        ip = Path(i)
        if ip.is_dir():  # a data folder: the target must not be another name for a file in it
            hit = _links_into(out, ip)
            if hit is not None:
                raise OutputRefused(
                    f"Refusing to write the {what} over an input ({safe_name(out)} is {safe_name(hit)}); "
                    "choose another name."
                )
            continue
        if _same_file(out, ip):
            raise OutputRefused(
                f"Refusing to write the {what} over an input ({safe_name(out)} is {safe_name(ip)}); "
                "choose another name."
            )


def _check_evidence_dir(out: Path, evidence: Iterable[PathLike | None], allow_evidence_dir: bool) -> None:
    if allow_evidence_dir:
        return
    for e in evidence:
        if e is None or str(e) == "":
            continue
        ep = Path(e)
        folder = ep if ep.is_dir() else _resolved(ep).parent
        if _is_within(out, folder):
            raise OutputRefused(
                f"Refusing to write into the evidence's own folder or below it ({safe_name(out)}); choose "
                "another place (or allow it explicitly: --allow-evidence-dir)."
            )


def refuse_special_file(target: PathLike) -> None:
    """Refuse a target that exists and is not a regular file (device, FIFO, socket, folder).

    ``os.replace`` over a device node would turn ``/dev/full`` into a plain file; checked with
    ``lstat`` so a symlink is judged itself (it is replaced, not followed).
    """
    p = Path(target)
    try:
        st = p.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputRefused(f"Cannot check {safe_name(p)}: {exc.strerror or exc}.") from exc
    if stat.S_ISDIR(st.st_mode):
        raise OutputRefused(f"{safe_name(p)} is a folder; give a file name to write to.")
    if stat.S_ISLNK(st.st_mode):
        try:
            tst = p.stat()
        except OSError:
            return  # a dangling link: replacing it harms nothing
        if not stat.S_ISREG(tst.st_mode):
            raise OutputRefused(f"{safe_name(p)} links to something that is not a regular file; refused.")
        return
    if not stat.S_ISREG(st.st_mode):
        raise OutputRefused(
            f"{safe_name(p)} exists and is not a regular file (device, pipe or socket); refused."
        )


def check_output_file(
    target: PathLike,
    inputs: Iterable[PathLike | None] = (),
    evidence: Iterable[PathLike | None] = (),
    allow_evidence_dir: bool = False,
    overwrite: bool = True,
) -> Path:
    """Check a file about to be written; return it as a Path or raise :class:`OutputRefused`.

    ``inputs``: files it must never be (evidence, models...). ``evidence``: files (or data folders)
    whose folder is off limits unless ``allow_evidence_dir``. ``overwrite``: whether an existing
    regular file may be replaced (atomically) -- the caller's documented behaviour.
    """
    out = Path(target).expanduser()
    if str(target) == "" or str(target).endswith(("/", os.sep)):
        raise OutputRefused(f"{safe_name(target)!s} names a folder; give a file name to write to.")
    inputs = list(inputs)
    evidence = list(evidence)
    _check_inputs(out, [*inputs, *evidence], "output")
    refuse_special_file(out)
    _check_evidence_dir(out, evidence, allow_evidence_dir)
    if not overwrite and os.path.lexists(out):
        raise OutputRefused(f"{safe_name(out)} already exists; it is not replaced (choose another name).")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputRefused(f"The folder for {safe_name(out.name)} does not exist: {safe_name(parent)}")
    if not os.access(parent, os.W_OK):
        raise OutputRefused(f"Cannot write to {safe_name(parent)} (permission denied).")
    return out


def check_output_dir(
    target: PathLike,
    inputs: Iterable[PathLike | None] = (),
    evidence: Iterable[PathLike | None] = (),
    allow_evidence_dir: bool = False,
    must_be_empty: bool = False,
) -> Path:
    """Check a folder about to be written into (it is not created here); return it or raise.

    The folder must not be an input, not the evidence's folder or below it (unless
    ``allow_evidence_dir``), and if it exists it must be a real folder (not a link to a file or a
    device) -- and empty when ``must_be_empty`` (a package is never merged into other files).
    """
    out = Path(target).expanduser()
    if str(target) == "":
        raise OutputRefused("An empty name is not a folder.")
    inputs = list(inputs)
    evidence = list(evidence)
    for i in [*inputs, *evidence]:
        if i is None or str(i) == "":
            continue
        if _same_file(out, Path(i)):
            raise OutputRefused(f"Refusing to write into an input ({safe_name(i)}); choose another folder.")
    if os.path.lexists(out) and not out.is_dir():
        raise OutputRefused(f"{safe_name(out)} exists and is not a folder.")
    _check_evidence_dir(out, evidence, allow_evidence_dir)
    if must_be_empty and out.is_symlink():
        raise OutputRefused(f"{safe_name(out)} is a link; a package is written into a real new or empty folder.")
    if out.is_dir():
        if must_be_empty and any(out.iterdir()):
            raise OutputRefused(
                f"{safe_name(out)} already exists and is not empty; a package is written into a new or "
                "empty folder only."
            )
        if not os.access(out, os.W_OK):
            raise OutputRefused(f"Cannot write to {safe_name(out)} (permission denied).")
    else:
        parent = out.parent if str(out.parent) else Path(".")
        anc = parent
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if not anc.is_dir() or not os.access(anc, os.W_OK):
            raise OutputRefused(f"Cannot create {safe_name(out)} (parent not writable).")
    return out
