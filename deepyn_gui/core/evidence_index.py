"""Which SHA-256 each evidence path had when it was last analysed, so a changed file is noticed on reopen.

The analysis cache is keyed by content, so a file whose bytes changed simply misses it, silently. An
analyst who reopens "the same" exhibit must instead be told loudly that it is no longer the file that
was analysed; this small index (one JSON file beside the cache) remembers path -> SHA-256 and when.
It holds no results, only the fingerprints needed to say "changed since analysed".
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .cache import data_dir
from .errors import ExportError
from .export.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

INDEX_FORMAT = "deepyn.evidence-index/1"
INDEX_FILE = "evidence_index.json"
#: The index is pruned to the newest entries beyond this (a few hundred bytes each).
MAX_ENTRIES = 20000

_lock = threading.Lock()  # read-modify-write of the file within this process


@dataclass(frozen=True)
class IndexRecord:
    """The SHA-256 a path had when it was analysed, and when that analysis was made (ISO UTC)."""

    path: str
    sha256: str
    analysed_utc: str


def path_key(path: str | os.PathLike[str]) -> str:
    """The index key: the absolute path with symlinks resolved (two spellings of one file match)."""
    return os.path.realpath(os.path.abspath(os.fspath(path)))


class EvidenceIndex:
    """``root/evidence_index.json``; root defaults to the analysis cache folder of the app data dir."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.file = (Path(root) if root is not None else data_dir() / "cache") / INDEX_FILE

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            doc = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable evidence index %s: %s", self.file, exc)
            return {}
        if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or not isinstance(doc.get("paths"), dict):
            log.warning("ignoring evidence index %s: unknown format", self.file)
            return {}
        return {k: v for k, v in doc["paths"].items() if isinstance(v, dict) and isinstance(v.get("sha256"), str)}

    def get(self, evidence_path: str | os.PathLike[str]) -> IndexRecord | None:
        """What was recorded for this path, or None if it was never analysed (or the index is unreadable)."""
        key = path_key(evidence_path)
        entry = self._read().get(key)
        if entry is None:
            return None
        return IndexRecord(key, entry["sha256"], str(entry.get("analysed_utc", "")))

    def record(self, evidence_path: str | os.PathLike[str], sha256: str, analysed_utc: str) -> IndexRecord:
        """Remember that this path had ``sha256`` when analysed; written atomically (ExportError if not)."""
        if not sha256:
            raise ValueError("an evidence index record needs a SHA-256")
        key = path_key(evidence_path)
        with _lock:
            paths = self._read()
            paths.pop(key, None)
            paths[key] = {"sha256": sha256, "analysed_utc": analysed_utc}
            if len(paths) > MAX_ENTRIES:  # dicts keep insertion order: the oldest records go first
                paths = dict(list(paths.items())[-MAX_ENTRIES:])
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ExportError(f"cannot create {self.file.parent}: {exc.strerror or exc}") from exc
            doc = {"format": INDEX_FORMAT, "paths": paths}
            write_bytes_atomic(self.file, json.dumps(doc, indent=0, ensure_ascii=False).encode("utf-8"))
        return IndexRecord(key, sha256, analysed_utc)


# --------------------------------------------------------------------------------------------------
# Evidence status: the rules (shells only relay and show them)
# --------------------------------------------------------------------------------------------------

#: Evidence states, as shown next to its SHA-256.
HASHING, HASHED, VERIFIED, CHANGED, HASH_FAILED = "hashing", "hashed", "verified", "changed", "failed"


@dataclass(frozen=True)
class EvidenceStatus:
    """What is known about the open clip's bytes.

    ``state``: "" (no clip), ``hashing`` (``done``/``total`` bytes), ``hashed`` (never analysed before),
    ``verified`` (equals the SHA-256 recorded when it was last analysed), ``changed`` (differs from
    it: ``recorded_sha256``) or ``failed`` (``message`` says why).
    """

    state: str = ""
    path: str = ""
    sha256: str = ""
    done: int = 0
    total: int = 0
    recorded_sha256: str = ""
    analysed_utc: str = ""
    message: str = ""


def judge_evidence(
    path: str, sha256: str, remembered: tuple[str, str] | None = None, record: IndexRecord | None = None
) -> EvidenceStatus:
    """The status of freshly hashed evidence: verified, changed or never analysed.

    ``remembered`` (sha, when) is what this session analysed at this path, which wins over the
    on-disk index ``record`` (another session, or before a restart).
    """
    recorded, when = remembered if remembered and remembered[0] else ("", "")
    if not recorded and record is not None:
        recorded, when = record.sha256, record.analysed_utc
    state = HASHED if not recorded else VERIFIED if recorded == sha256 else CHANGED
    return EvidenceStatus(state, path, sha256, recorded_sha256=recorded, analysed_utc=when)


def format_utc(iso: str) -> str:
    """``2024-05-01T12:00:00+00:00`` -> ``2024-05-01 12:00 UTC`` (unchanged when not ISO)."""
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def changed_notice(status: EvidenceStatus) -> str:
    """The loud notice for ``changed`` evidence: the earlier results are not this file's."""
    on = f" on {format_utc(status.analysed_utc)}" if status.analysed_utc else ""
    return (
        f"EVIDENCE CHANGED: '{Path(status.path).name}' is not the file that was analysed{on}. Its SHA-256 is "
        f"now {status.sha256[:16]}… but was {status.recorded_sha256[:16]}… then. The earlier results are not "
        "shown; analyse the file again."
    )

