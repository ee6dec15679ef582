"""Session cache: a finished analysis saved per evidence SHA-256, model SHA-256 and settings.

Reopening a clip that was already analysed with the same model and settings shows its results at once
(and ``deepyn report`` reuses them) instead of running the model again. The key is content-based, so a
renamed or moved copy of the evidence still hits, and any change to the file, the model or a setting
that changes the numbers misses.

Each entry is one zip file, written atomically: ``cache.json`` (key facts), ``analysis.json`` (schema
``deepyn.analysis/1``) and the compressed masks as raw bytes under ``masks/``. No pickle: loading a
cache entry can never run code. A damaged entry is ignored (logged) and analysed afresh.

Integrity: ``cache.json`` carries ``content_sha256``, a SHA-256 over the evidence hash, model hash,
settings hash and every stored byte (analysis.json, each mask). An entry whose bytes do not hash to it --
a flipped mask, scores edited by hand, an entry copied under another key -- is discarded with a warning
and the clip analysed again, never shown (an edited entry once gave frame scores of 0.99 under a REAL
verdict). This detects damage and casual edits; it is not a signature against someone who rewrites
the digest too.

An entry records the verdict rules it was made under (``verdict.verdict_rules_id``); when they differ from
this version's, the verdict is derived again from the stored frame scores, so an update that changes the
verdict rules never shows a stale verdict.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import logging
import os
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import DeepYNError, ExportError
from .export.atomic import write_atomic
from .results import AnalysisResult, FaceResult, FrameResult
from .verdict import verdict_rules_id

log = logging.getLogger(__name__)

APP_NAME = "deepyn-viewer"
ENV_DATA_DIR = "DEEPYN_DATA_DIR"
CACHE_FORMAT = "deepyn.cache/2"  # /2: entries carry content_sha256
#: Why an existing entry was not used (``AnalysisCache.load_checked``).
REFUSED_DAMAGED = "damaged"  # unreadable, or its content does not match its digest or key
REFUSED_RULES = "rules"  # made under verdict rules whose verdict cannot be derived again from its scores
#: Settings that change speed only, never the numbers: left out of the key.
NON_RESULT_SETTINGS: frozenset[str] = frozenset({"detector_threads"})
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def data_dir() -> Path:
    """The app's data folder: ``$DEEPYN_DATA_DIR`` if set, else platformdirs' user data dir."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def settings_hash(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings that change results, as canonical JSON (key order does not matter)."""
    kept = {k: v for k, v in settings.items() if k not in NON_RESULT_SETTINGS}
    canon = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def cache_key(evidence_sha256: str, model_sha256: str, settings: dict[str, Any]) -> str:
    """One string naming (evidence, model, settings)."""
    if not evidence_sha256 or not model_sha256:
        raise ValueError("a cache key needs both the evidence and the model SHA-256")
    return f"{evidence_sha256}-{model_sha256[:16]}-{settings_hash(settings)[:16]}"


@dataclass(frozen=True)
class CacheEntry:
    """One saved analysis, as listed without loading it."""

    path: Path
    evidence_sha256: str
    model_sha256: str
    settings_hash: str
    saved_utc: str
    model_name: str = ""


def content_digest(meta_key: tuple[str, str, str], analysis_json: bytes, masks: dict[str, bytes]) -> str:
    """SHA-256 binding an entry's bytes to (evidence, model, settings): see the module docstring."""
    h = hashlib.sha256()
    for part in (CACHE_FORMAT, *meta_key):
        h.update(part.encode("utf-8") + b"\0")
    h.update(len(analysis_json).to_bytes(8, "big") + analysis_json)
    for name in sorted(masks):
        blob = masks[name]
        h.update(name.encode("utf-8") + b"\0" + len(blob).to_bytes(8, "big") + blob)
    return h.hexdigest()


def _mask_name(frame_pos: int, face_pos: int) -> str:
    return f"masks/{frame_pos:07d}_{face_pos:03d}.bin"


def _zinfo(name: str, compress: int) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    zi.compress_type = compress
    zi.external_attr = 0o644 << 16
    return zi


class AnalysisCache:
    """Analyses on disk under ``root/analyses/<evidence sha256>/``."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else data_dir() / "cache"
        self._lock = threading.Lock()

    def folder_for(self, evidence_sha256: str) -> Path:
        return self.root / "analyses" / evidence_sha256

    def path_for(self, evidence_sha256: str, model_sha256: str, settings: dict[str, Any]) -> Path:
        key = cache_key(evidence_sha256, model_sha256, settings)
        return self.folder_for(evidence_sha256) / f"{key}.zip"

    # -- write ------------------------------------------------------------------------------------
    def save(self, result: AnalysisResult) -> Path:
        """Store ``result`` (masks included); replaces an older entry with the same key atomically."""
        target = self.path_for(result.source.sha256, result.model.sha256, result.settings)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create the cache folder {target.parent}: {exc.strerror or exc}") from exc
        meta = {
            "format": CACHE_FORMAT,
            "evidence_sha256": result.source.sha256,
            "model_sha256": result.model.sha256,
            "model_name": result.model.name,
            "settings_hash": settings_hash(result.settings),
            "verdict_rules": verdict_rules_id(),
            "saved_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        doc_bytes = json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")
        masks = {
            _mask_name(i, j): face.mask_blob
            for i, fr in enumerate(result.frames)
            for j, face in enumerate(fr.faces)
            if face.mask_blob is not None
        }
        meta["content_sha256"] = content_digest(
            (str(meta["evidence_sha256"]), str(meta["model_sha256"]), str(meta["settings_hash"])), doc_bytes, masks
        )

        def write(fh: Any) -> None:
            with zipfile.ZipFile(fh, "w") as z:
                z.writestr(_zinfo("cache.json", zipfile.ZIP_DEFLATED), json.dumps(meta, indent=1))
                z.writestr(_zinfo("analysis.json", zipfile.ZIP_DEFLATED), doc_bytes)
                for name, blob in masks.items():  # already compressed (PNG): stored as is
                    z.writestr(_zinfo(name, zipfile.ZIP_STORED), blob)

        with self._lock:
            write_atomic(target, write)
        return target

    # -- read -------------------------------------------------------------------------------------
    def load(
        self, evidence_sha256: str, model_sha256: str, settings: dict[str, Any], evidence_path: str | None = None
    ) -> AnalysisResult | None:
        """The cached analysis for exactly this evidence, model and settings, or None."""
        return self.load_checked(evidence_sha256, model_sha256, settings, evidence_path)[0]

    def load_checked(
        self, evidence_sha256: str, model_sha256: str, settings: dict[str, Any], evidence_path: str | None = None
    ) -> tuple[AnalysisResult | None, str | None]:
        """Like :meth:`load`, plus why an entry that exists was refused (None when absent or used).

        The reason lets a caller tell the user the truth: a damaged entry and one made under verdict rules
        this version cannot re-derive are both analysed again, but only the first is a warning sign.
        """
        path = self.path_for(evidence_sha256, model_sha256, settings)
        if not path.is_file():
            return None, None
        return self._read(path, evidence_path)

    def load_file(self, path: str | os.PathLike[str], evidence_path: str | None = None) -> AnalysisResult | None:
        """Read one entry; None (with a warning logged) if it is damaged or not a cache file.

        ``evidence_path`` replaces the recorded path: the same bytes may have been moved or renamed.
        """
        return self._read(Path(path), evidence_path)[0]

    def _read(self, path: Path, evidence_path: str | None) -> tuple[AnalysisResult | None, str | None]:
        """``(result, None)`` or ``(None, reason)``: REFUSED_DAMAGED or REFUSED_RULES."""
        try:
            with zipfile.ZipFile(path, "r") as z:
                meta = json.loads(z.read("cache.json"))
                if meta.get("format") != CACHE_FORMAT:
                    raise ValueError(f"unknown cache format {meta.get('format')!r}")
                doc_bytes = z.read("analysis.json")
                names = set(z.namelist())
                stored = {n: z.read(n) for n in names if n.startswith("masks/")}
                want = content_digest(
                    (str(meta.get("evidence_sha256")), str(meta.get("model_sha256")), str(meta.get("settings_hash"))),
                    doc_bytes, stored,
                )
                if not isinstance(meta.get("content_sha256"), str) or not hmac.compare_digest(
                    want, meta["content_sha256"]
                ):
                    raise ValueError("its content does not match its digest (damaged or edited)")
                doc = json.loads(doc_bytes)
                frames: list[FrameResult] = []
                for i, fd in enumerate(doc["frames"]):
                    faces = []
                    for j, face in enumerate(fd.get("faces", [])):
                        name = _mask_name(i, j)
                        blob = stored.get(name)
                        faces.append(FaceResult.from_json(face, mask_blob=blob))
                    frames.append(FrameResult(
                        index=int(fd["index"]), pts_s=float(fd["pts_s"]), state=fd["state"],
                        faces=tuple(faces), error=fd.get("error"),
                    ))
                doc_no_frames = {**doc, "frames": []}
                result = AnalysisResult.from_json(doc_no_frames)
                result.frames = frames
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, json.JSONDecodeError, zlib.error) as exc:
            log.warning("discarding damaged cache entry %s: %s; the clip is analysed again", path, exc)
            return None, REFUSED_DAMAGED
        if (
            result.source.sha256 != meta.get("evidence_sha256")
            or result.model.sha256 != meta.get("model_sha256")
            or settings_hash(result.settings) != meta.get("settings_hash")
        ):
            log.warning("ignoring cache entry %s: its content does not match its key", path)
            return None, REFUSED_DAMAGED
        if evidence_path is not None:
            result.source = replace(result.source, path=str(evidence_path))
        if meta.get("verdict_rules") != verdict_rules_id():
            try:
                result = _with_current_verdict(result, path)
            except (ValueError, KeyError) as exc:  # e.g. an aggregator this version no longer has
                log.warning("ignoring cache entry %s: its verdict cannot be derived again (%s)", path, exc)
                return None, REFUSED_RULES
        return result, None

    def entries(self, evidence_sha256: str) -> list[CacheEntry]:
        """Every saved analysis of this evidence (any model/settings), newest first."""
        out: list[CacheEntry] = []
        folder = self.folder_for(evidence_sha256)
        if not folder.is_dir():
            return out
        for p in folder.glob("*.zip"):
            try:
                with zipfile.ZipFile(p, "r") as z:
                    m = json.loads(z.read("cache.json"))
                out.append(CacheEntry(p, m["evidence_sha256"], m["model_sha256"], m["settings_hash"],
                                      m.get("saved_utc", ""), m.get("model_name", "")))
            except (OSError, KeyError, ValueError, zipfile.BadZipFile):
                log.warning("ignoring damaged cache entry %s", p)
        out.sort(key=lambda c: c.saved_utc, reverse=True)
        return out

    def load_latest(
        self, evidence_sha256: str, model_sha256: str | None = None, evidence_path: str | None = None
    ) -> AnalysisResult | None:
        """The newest readable analysis of this evidence (optionally with this model): for reopening a clip."""
        for entry in self.entries(evidence_sha256):
            if model_sha256 and entry.model_sha256 != model_sha256:
                continue
            result = self.load_file(entry.path, evidence_path)
            if result is not None:
                return result
        return None

    def remove(self, evidence_sha256: str, model_sha256: str, settings: dict[str, Any]) -> bool:
        p = self.path_for(evidence_sha256, model_sha256, settings)
        if p.is_file():
            p.unlink()
            return True
        return False


def _with_current_verdict(result: AnalysisResult, path: Path) -> AnalysisResult:
    """``result`` with its verdict recomputed from its stored frames by this version's rules.

    The key covers the evidence, the model and the settings, not the verdict rules (span level, brief-person
    rule), which can change between releases: a stored verdict would then contradict what a fresh analysis
    of the same frames says. The frame scores are the measurement; the verdict is derived from them. Used
    only when the entry was made under other rules (``verdict.verdict_rules_id``): stored scores are rounded
    to 6 decimals, so a recomputed verdict can differ from the original in its last digit.
    """
    from .verdict import video_verdict

    fresh = video_verdict(result.frames, result.model, result.verdict.aggregator)
    if fresh.to_json() != result.verdict.to_json():
        log.info("cache entry %s: verdict recomputed with the current rules (%s -> %s)",
                 path.name, result.verdict.label, fresh.label)
    result.verdict = fresh
    return result


def has_errors(result: AnalysisResult) -> bool:
    """Whether any frame or face ended in ``error`` (a backend or decode failure)."""
    return any(fr.state == "error" or any(f.state == "error" for f in fr.faces) for fr in result.frames)


def cacheable(result: AnalysisResult) -> bool:
    """THE caching rule, for every shell: only complete analyses of known evidence and model bytes with
    no error state are saved. Anything else is shown but analysed again next time (a transient backend
    failure must not be served back from the cache)."""
    return result.complete and bool(result.source.sha256) and bool(result.model.sha256) and not has_errors(result)


def save_analysis(result: AnalysisResult, root: str | os.PathLike[str] | None = None) -> Path | None:
    """Record the evidence's SHA-256 for its path and, when :func:`cacheable`, save the analysis.

    Returns the cache file (None when only the fingerprint was recorded). Raises DeepYNError on a
    write failure: the caller reports it, the analysis itself is unaffected.
    """
    from .evidence_index import EvidenceIndex

    if not result.source.sha256:
        return None
    cache = AnalysisCache(root)
    EvidenceIndex(cache.root).record(result.source.path, result.source.sha256, result.created_utc)
    return cache.save(result) if cacheable(result) else None


@dataclass(frozen=True)
class CacheQuery:
    """What a cached analysis must match: the evidence's bytes, the model file and the settings."""

    evidence_path: str
    evidence_sha256: str
    backend: str
    model_path: str | None
    settings: dict[str, Any]
    root: str | None = None  # cache folder; None: the app data dir ($DEEPYN_DATA_DIR)
    model_sha256: str | None = None  # known from a backend this session loaded; else hashed from the file

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """What a shell compares to decide whether two queries ask for the same analysis."""
        return (self.evidence_sha256, self.backend, self.model_path, settings_hash(self.settings))


@dataclass(frozen=True)
class CacheHit:
    """A cached analysis found for a query, with when it was saved (ISO UTC)."""

    query: CacheQuery
    result: AnalysisResult
    saved_utc: str


_model_shas: dict[tuple[str, int, int], str] = {}
_model_shas_lock = threading.Lock()


def model_file_sha256(path: Path | None) -> str | None:
    """SHA-256 of a model file as its backend's ModelInfo will report it; None if it cannot be read.

    Lets the cache be asked before a (slow) model load. Memoised by path, size and mtime: a model is
    often hundreds of MB.
    """
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    key = (os.path.realpath(path), int(st.st_size), int(st.st_mtime_ns))
    with _model_shas_lock:
        known = _model_shas.get(key)
    if known is not None:
        return known
    from .model.metadata import sha256_file as model_sha256

    try:
        digest = model_sha256(path)
    except OSError as exc:
        log.warning("cannot hash the model %s: %s", path, exc)
        return None
    with _model_shas_lock:
        _model_shas[key] = digest
    return digest


def lookup(query: CacheQuery, model_file: Path | None = None) -> CacheHit | None:
    """The cached analysis of exactly this evidence, model and settings, or None (never raises for a miss).

    ``model_file``: the file the query's backend would load, hashed when the query carries no model hash.
    """
    model_sha = query.model_sha256 or model_file_sha256(model_file)
    if not model_sha or not query.evidence_sha256:
        return None
    cache = AnalysisCache(query.root)
    path = cache.path_for(query.evidence_sha256, model_sha, query.settings)
    if not path.is_file():
        return None
    result = cache.load_file(path, evidence_path=query.evidence_path)
    if result is None or result.source.sha256 != query.evidence_sha256 or result.model.sha256 != model_sha:
        return None
    saved = next((e.saved_utc for e in cache.entries(query.evidence_sha256) if e.path == path), "")
    return CacheHit(query, result, saved or result.created_utc)


def analyse_cached(
    path: str,
    backend: Any,
    settings: Any,
    cache: AnalysisCache | None = None,
    reanalyse: bool = False,
    evidence_sha256: str | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> tuple[AnalysisResult, bool]:
    """Return ``(result, from_cache)``: a matching cached analysis, or a fresh one (then cached).

    ``reanalyse`` ignores and replaces the cached entry. Only complete analyses without error states
    are cached: a partial one (decode error, backend stop, faces a backend failed on) is returned but
    analysed again next time.
    """
    from .evidence import sha256_file
    from .pipeline import analyze

    cache = cache or AnalysisCache()
    digest = evidence_sha256 or sha256_file(path)
    model_sha = backend.model_info.sha256
    wanted = settings.to_json()
    refused: str | None = None
    if not reanalyse and model_sha:
        hit, refused = cache.load_checked(digest, model_sha, wanted, evidence_path=str(path))
        if hit is not None:
            return hit, True
    result = analyze(path, backend, settings, cancel=cancel, on_progress=on_progress)
    if result.source.sha256 != digest:
        raise DeepYNError(
            f"'{Path(path).name}' changed while it was being analysed (SHA-256 differs); analyse it again."
        )
    if cacheable(result):
        try:
            cache.save(result)
        except DeepYNError as exc:  # a full disk must not lose the analysis itself
            log.warning("could not cache the analysis: %s", exc)
    if refused == REFUSED_DAMAGED:  # said in every output of this run (after saving: the new entry is sound)
        result.warnings.append(
            "A cached analysis of this clip was damaged or edited (its digest did not match) and was "
            "discarded; the clip was analysed again."
        )
    elif refused == REFUSED_RULES:
        result.warnings.append(
            "A cached analysis of this clip was made under verdict rules this version cannot apply again to "
            "its stored scores; the clip was analysed again."
        )
    return result, False
