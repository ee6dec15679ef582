"""The one result type that flows from decode to export.

A :class:`FrameResult` holds what was found on one analysed frame; each :class:`FaceResult` holds one
face (track id, box, score, mask at crop resolution and the crop transform that maps it back into the
frame). :class:`AnalysisResult` bundles the frames with provenance (source, model, backend, settings)
and the verdict. Every object validates itself on construction, so a NaN score or a score on a frame
without a face cannot travel silently to the timeline or an export.

Masks are stored compressed (uint8 probability x 255, as PNG: lossless, and its row filters make a
smooth probability map ~25 % smaller than plain zlib in half the time) because a long clip has tens of
thousands of faces; :meth:`FaceResult.mask` decompresses on demand.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

SCHEMA = "deepyn.analysis/1"
CROP_SIZE = 224

FrameState = Literal["ok", "no_face", "error"]
FaceState = Literal["ok", "too_small", "error"]
FRAME_STATES: tuple[str, ...] = ("ok", "no_face", "error")
FACE_STATES: tuple[str, ...] = ("ok", "too_small", "error")


@dataclass(frozen=True)
class CropTransform:
    """A square region of the frame (may extend past its edges) that was resized to ``size`` px.

    ``x0, y0`` is the top-left corner and ``side`` the edge length of the square, in frame pixels.
    Crop pixel (u, v) covers frame point (x0 + u * side / size, y0 + v * side / size).
    """

    x0: float
    y0: float
    side: float
    size: int = CROP_SIZE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.x0) and math.isfinite(self.y0) and math.isfinite(self.side)):
            raise ValueError("crop transform must be finite")
        if self.side <= 0 or self.size <= 0:
            raise ValueError(f"crop side and size must be positive (side={self.side}, size={self.size})")

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return self.size / self.side

    def frame_to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Map frame points [..., 2] into crop coordinates."""
        xy = np.asarray(xy, dtype=np.float64)
        out: np.ndarray = (xy - np.array([self.x0, self.y0])) * self.scale
        return out

    def crop_to_frame(self, uv: np.ndarray) -> np.ndarray:
        """Map crop points [..., 2] back into frame coordinates."""
        uv = np.asarray(uv, dtype=np.float64)
        out: np.ndarray = uv / self.scale + np.array([self.x0, self.y0])
        return out

    def to_list(self) -> list[float]:
        return [float(self.x0), float(self.y0), float(self.side), int(self.size)]

    @classmethod
    def from_list(cls, v: list[float]) -> CropTransform:
        return cls(float(v[0]), float(v[1]), float(v[2]), int(v[3]) if len(v) > 3 else CROP_SIZE)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def compress_mask(mask_prob: np.ndarray) -> bytes:
    """Store a [H,W] probability map in [0,1] as a lossless 8-bit grey PNG (prob x 255).

    PNG at zlib level 1 with its adaptive row filters: 13.5 KB and 1.3 ms for a typical 224 px mask
    here, against 15 KB and 2.5 ms for zlib level 6 on the raw bytes (the format before 0.2).
    """
    import cv2

    m = np.asarray(mask_prob)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    if m.dtype != np.uint8:
        if not np.all(np.isfinite(m)):
            raise ValueError("mask contains NaN or inf")
        m = np.clip(np.rint(m.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    ok, png = cv2.imencode(".png", np.ascontiguousarray(m), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"mask of shape {m.shape} could not be encoded")
    return png.tobytes()


def decompress_mask(blob: bytes) -> np.ndarray:
    """Inverse of :func:`compress_mask`: uint8 [H,W] (255 = certainly manipulated).

    Also reads the earlier format (two little-endian uint16 sizes, then zlib), so caches written by
    older versions still load.
    """
    if blob[:8] == _PNG_SIGNATURE:
        import cv2

        m = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
        if m is None or m.ndim != 2 or m.dtype != np.uint8:
            raise ValueError("stored mask is not an 8-bit single-channel PNG")
        return m
    h, w = (int(x) for x in np.frombuffer(blob[:4], dtype="<u2"))
    return np.frombuffer(zlib.decompress(blob[4:]), dtype=np.uint8).reshape(h, w)


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FaceResult:
    """One face on one frame.

    ``fake_score`` is 1 - P(real) from the model, present only when ``state == "ok"``; a face that
    was too small to judge or whose inference failed carries ``None`` and says why.
    """

    track: int
    box: Box  # x, y, w, h in frame pixels
    state: FaceState = "ok"
    fake_score: float | None = None
    detector_score: float = 1.0
    crop: CropTransform | None = None
    mask_blob: bytes | None = field(default=None, repr=False)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.state not in FACE_STATES:
            raise ValueError(f"unknown face state {self.state!r}")
        _x, _y, w, h = self.box
        if not all(math.isfinite(v) for v in self.box) or w <= 0 or h <= 0:
            raise ValueError(f"invalid face box {self.box}")
        if self.state == "ok":
            if self.fake_score is None or not math.isfinite(self.fake_score):
                raise ValueError("an ok face needs a finite fake_score")
            if not 0.0 <= self.fake_score <= 1.0:
                raise ValueError(f"fake_score {self.fake_score} outside [0, 1]")
        else:
            if self.fake_score is not None:
                raise ValueError(f"a {self.state} face must not carry a score")
            if self.state == "error" and not self.error:
                raise ValueError("an error face needs a message")

    def mask(self) -> np.ndarray | None:
        """The manipulation mask at crop resolution, uint8 (0..255), or None."""
        return None if self.mask_blob is None else decompress_mask(self.mask_blob)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "track": self.track,
            "box": [round(float(v), 2) for v in self.box],
            "state": self.state,
            "fake_score": None if self.fake_score is None else round(float(self.fake_score), 6),
            "detector_score": round(float(self.detector_score), 4),
        }
        if self.crop is not None:
            d["crop"] = self.crop.to_list()
        if self.error:
            d["error"] = self.error
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], mask_blob: bytes | None = None) -> FaceResult:
        return cls(
            track=int(d["track"]),
            box=tuple(float(v) for v in d["box"]),  # type: ignore[arg-type]
            state=d.get("state", "ok"),
            fake_score=None if d.get("fake_score") is None else float(d["fake_score"]),
            detector_score=float(d.get("detector_score", 1.0)),
            crop=CropTransform.from_list(d["crop"]) if d.get("crop") else None,
            mask_blob=mask_blob,
            error=d.get("error"),
        )


@dataclass(frozen=True)
class FrameResult:
    """Everything found on one analysed frame."""

    index: int
    pts_s: float
    state: FrameState
    faces: tuple[FaceResult, ...] = ()
    error: str | None = None

    def __post_init__(self) -> None:
        if self.state not in FRAME_STATES:
            raise ValueError(f"unknown frame state {self.state!r}")
        if self.index < 0:
            raise ValueError("frame index must be >= 0")
        if self.state == "no_face" and self.faces:
            raise ValueError("a no_face frame cannot hold faces")
        if self.state == "ok" and not self.faces:
            raise ValueError("an ok frame needs at least one face")
        if self.state == "error" and not self.error:
            raise ValueError("an error frame needs a message")

    @property
    def max_score(self) -> float | None:
        """Fake score of the most suspicious scored face, or None when none was scored."""
        scores = [f.fake_score for f in self.faces if f.fake_score is not None]
        return max(scores) if scores else None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "pts_s": round(float(self.pts_s), 6),
            "state": self.state,
            "faces": [f.to_json() for f in self.faces],
        }
        if self.error:
            d["error"] = self.error
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FrameResult:
        return cls(
            index=int(d["index"]),
            pts_s=float(d["pts_s"]),
            state=d["state"],
            faces=tuple(FaceResult.from_json(f) for f in d.get("faces", [])),
            error=d.get("error"),
        )


@dataclass(frozen=True)
class SourceInfo:
    """Facts about the evidence file, recorded for provenance."""

    path: str
    sha256: str
    frames: int
    fps: float
    width: int
    height: int
    duration_s: float = 0.0
    rotation: int = 0
    codec: str = ""
    container: str = ""
    size_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "frames": self.frames,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "duration_s": self.duration_s,
            "rotation": self.rotation,
            "codec": self.codec,
            "container": self.container,
            "size_bytes": self.size_bytes,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SourceInfo:
        keys = cls.__dataclass_fields__.keys()
        return cls(**{k: d[k] for k in keys if k in d})


@dataclass(frozen=True)
class ScoreBand:
    """A range of fake scores with a plain-language meaning (from the model's calibration)."""

    lo: float
    hi: float
    name: str
    meaning: str

    def contains(self, score: float) -> bool:
        return self.lo <= score < self.hi or (self.hi >= 1.0 and score == 1.0)


@dataclass(frozen=True)
class ModelInfo:
    """What a backend's model is: shown in the GUI and written into every export."""

    name: str
    sha256: str
    path: str = ""
    version: str = ""
    trained: bool = True
    threshold: float = 0.5
    real_below: float = 0.3  # scores below this read "real"; between it and threshold "uncertain"
    bands: tuple[ScoreBand, ...] = ()
    card_path: str = ""
    notes: str = ""
    #: where a sustained span must sit for this model: "top_band" (the default) or "threshold"
    #: (for a model whose top band starts so high that no span reaches it; see verdict.span_level)
    span_level: str = "top_band"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "path": self.path,
            "version": self.version,
            "trained": self.trained,
            "threshold": self.threshold,
            "real_below": self.real_below,
            "bands": [[b.lo, b.hi, b.name, b.meaning] for b in self.bands],
            "notes": self.notes,
            "span_level": self.span_level,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelInfo:
        return cls(
            name=d["name"],
            sha256=d["sha256"],
            path=d.get("path", ""),
            version=d.get("version", ""),
            trained=bool(d.get("trained", True)),
            threshold=float(d.get("threshold", 0.5)),
            real_below=float(d.get("real_below", 0.3)),
            bands=tuple(ScoreBand(float(b[0]), float(b[1]), str(b[2]), str(b[3])) for b in d.get("bands", [])),
            notes=d.get("notes", ""),
            span_level=_span_level(d.get("span_level", "top_band")),
        )


#: Where a sustained span must sit (``verdict.SpanRule``): the start of the top band, or the threshold.
SPAN_LEVELS: tuple[str, ...] = ("top_band", "threshold")


def _span_level(value: Any) -> str:
    """A stored span level, checked (an edited export must not smuggle in a rule the verdict cannot apply)."""
    if value not in SPAN_LEVELS:
        raise ValueError(f"unknown span level {value!r} in the model record; expected top_band or threshold")
    return str(value)


VerdictLabel = Literal["fake", "real", "uncertain", "no_face", "too_small", "error"]
VERDICT_LABELS: tuple[str, ...] = ("fake", "real", "uncertain", "no_face", "too_small", "error")


@dataclass(frozen=True)
class TrackVerdict:
    """The verdict for one person (track)."""

    track: int
    label: VerdictLabel
    fake_score: float | None
    band: str
    explanation: str
    frames_scored: int
    frames_seen: int

    def to_json(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "label": self.label,
            "fake_score": None if self.fake_score is None else round(float(self.fake_score), 6),
            "band": self.band,
            "explanation": self.explanation,
            "frames_scored": self.frames_scored,
            "frames_seen": self.frames_seen,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrackVerdict:
        return cls(
            track=int(d["track"]),
            label=d["label"],
            fake_score=None if d.get("fake_score") is None else float(d["fake_score"]),
            band=d.get("band", ""),
            explanation=d.get("explanation", ""),
            frames_scored=int(d.get("frames_scored", 0)),
            frames_seen=int(d.get("frames_seen", 0)),
        )


@dataclass(frozen=True)
class Verdict:
    """The video verdict: as fake as its fakest person, with the aggregator that produced it.

    ``fake_score`` is None for the explicit outcomes ``no_face``, ``too_small`` and ``error``:
    nothing was evaluated, so no number is shown.
    """

    label: VerdictLabel
    fake_score: float | None
    aggregator: str
    band: str
    explanation: str
    threshold: float
    tracks: tuple[TrackVerdict, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in VERDICT_LABELS:
            raise ValueError(f"unknown verdict label {self.label!r}")
        if self.label in ("no_face", "too_small", "error") and self.fake_score is not None:
            raise ValueError(f"a {self.label} verdict must not carry a score")
        if self.label in ("fake", "real", "uncertain") and (
            self.fake_score is None or not 0.0 <= self.fake_score <= 1.0
        ):
            raise ValueError("a scored verdict needs a fake_score in [0, 1]")

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "fake_score": None if self.fake_score is None else round(float(self.fake_score), 6),
            "aggregator": self.aggregator,
            "band": self.band,
            "explanation": self.explanation,
            "threshold": self.threshold,
            "tracks": [t.to_json() for t in self.tracks],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Verdict:
        return cls(
            label=d["label"],
            fake_score=None if d.get("fake_score") is None else float(d["fake_score"]),
            aggregator=d["aggregator"],
            band=d.get("band", ""),
            explanation=d.get("explanation", ""),
            threshold=float(d.get("threshold", 0.5)),
            tracks=tuple(TrackVerdict.from_json(t) for t in d.get("tracks", [])),
        )


@dataclass
class AnalysisResult:
    """A whole analysis: provenance + per-frame results + verdict. Serialises to ``deepyn.analysis/1``."""

    source: SourceInfo
    model: ModelInfo
    backend: dict[str, Any]  # {"name": ..., "version": ..., "providers": [...], ...}
    settings: dict[str, Any]
    frames: list[FrameResult]
    verdict: Verdict
    app: dict[str, Any] = field(default_factory=dict)
    created_utc: str = ""
    complete: bool = True  # False when cancelled or stopped on error: partial but valid
    stop_reason: str = ""
    warnings: list[str] = field(default_factory=list)  # non-fatal notices, e.g. damaged frames skipped
    undecodable_frames: list[int] = field(default_factory=list)  # asked for, not decodable: the gap(s)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "app": self.app,
            "created_utc": self.created_utc,
            "complete": self.complete,
            "stop_reason": self.stop_reason,
            "warnings": list(self.warnings),
            "undecodable_frames": list(self.undecodable_frames),
            "source": self.source.to_json(),
            "model": self.model.to_json(),
            "backend": self.backend,
            "settings": self.settings,
            "verdict": self.verdict.to_json(),
            "frames": [f.to_json() for f in self.frames],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AnalysisResult:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"unsupported schema {d.get('schema')!r} (expected {SCHEMA})")
        return cls(
            source=SourceInfo.from_json(d["source"]),
            model=ModelInfo.from_json(d["model"]),
            backend=dict(d["backend"]),
            settings=dict(d.get("settings", {})),
            frames=[FrameResult.from_json(f) for f in d["frames"]],
            verdict=Verdict.from_json(d["verdict"]),
            app=dict(d.get("app", {})),
            created_utc=d.get("created_utc", ""),
            complete=bool(d.get("complete", True)),
            stop_reason=d.get("stop_reason", ""),
            warnings=list(d.get("warnings", [])),
            undecodable_frames=[int(i) for i in d.get("undecodable_frames", [])],
        )
