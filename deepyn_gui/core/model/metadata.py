"""What an ONNX U-YNet file says about itself: name, training state, calibration, interface.

No torch and no onnxruntime at import time: the CLI lists models and the GUI shows a model card
without paying for either. Metadata lives in the ONNX ``metadata_props`` under ``deepyn.*`` keys
(written by :func:`deepyn_gui.core.model.export.export_onnx`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..results import CROP_SIZE, SPAN_LEVELS, ModelInfo, ScoreBand

INPUT_NAME = "image"
OUTPUT_NAMES: tuple[str, str] = ("mask_prob", "fake_score")

KEY_NAME = "deepyn.name"
KEY_VERSION = "deepyn.version"
KEY_TRAINED = "deepyn.trained"
KEY_WIDTH = "deepyn.width"
KEY_CALIBRATION = "deepyn.calibration"
KEY_PRECISION = "deepyn.precision"
KEY_NOTES = "deepyn.notes"

DEFAULT_THRESHOLD = 0.5

_UNTRAINED_SUFFIX = " (UNCALIBRATED: this model is untrained, so its scores mean nothing.)"
_UNCALIBRATED_SUFFIX = " (uncalibrated default band: the model carries no calibration.)"


@dataclass(frozen=True)
class Calibration:
    """What ``deepyn.calibration`` holds: the fake threshold, score bands, optional real_below and span level."""

    threshold: float
    bands: tuple[ScoreBand, ...]
    real_below: float | None = None
    span_level: str | None = None  # "top_band" or "threshold" (verdict.SpanRule); None: the verdict's default

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "threshold": self.threshold,
            "bands": [[b.lo, b.hi, b.name, b.meaning] for b in self.bands],
        }
        if self.real_below is not None:
            d["real_below"] = self.real_below
        if self.span_level is not None:
            d["span_level"] = self.span_level
        return json.dumps(d)


def default_bands(trained: bool = True) -> tuple[ScoreBand, ...]:
    """The verdict's generic bands, with every meaning saying that they are not calibrated.

    One source of truth for band edges (``core.verdict.DEFAULT_BANDS``); only the wording differs,
    so a user of an untrained model is told on every band that the number means nothing.
    """
    from ..verdict import DEFAULT_BANDS

    suffix = _UNCALIBRATED_SUFFIX if trained else _UNTRAINED_SUFFIX
    return tuple(ScoreBand(b.lo, b.hi, b.name, b.meaning + suffix) for b in DEFAULT_BANDS)


def _unit(value: float, what: str) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ModelError(f"the model's calibration {what} {value} is outside [0, 1]")
    return value


def parse_calibration(text: str) -> Calibration:
    """Parse ``deepyn.calibration`` JSON; ModelError if it is malformed.

    Format: ``{"threshold": t, "bands": [[lo, hi, name, meaning], ...], "real_below": r, "span_level": l}``
    (``real_below`` and ``span_level`` optional). Bands must be sorted, contiguous and cover [0, 1], so
    that every score falls in exactly one.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"the model's calibration metadata is not valid JSON ({exc})") from exc
    if not isinstance(data, Mapping):
        raise ModelError("the model's calibration metadata must be a JSON object with threshold and bands")
    try:
        threshold = float(data["threshold"])
        raw_bands: Sequence[Any] = data["bands"]
        bands = tuple(ScoreBand(float(b[0]), float(b[1]), str(b[2]), str(b[3])) for b in raw_bands)
        real_below = None if data.get("real_below") is None else float(data["real_below"])
        span_level = None if data.get("span_level") is None else str(data["span_level"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(
            "the model's calibration metadata must look like "
            '{"threshold": 0.5, "bands": [[lo, hi, name, meaning], ...]} '
            f"({type(exc).__name__}: {exc})"
        ) from exc
    check_bands(threshold, bands)
    if real_below is not None:
        _unit(real_below, "real_below")
    if span_level is not None and span_level not in SPAN_LEVELS:
        raise ModelError(f"the model's calibration span_level {span_level!r} is not one of {', '.join(SPAN_LEVELS)}")
    return Calibration(threshold, bands, real_below, span_level)


def check_bands(threshold: float, bands: Sequence[ScoreBand]) -> None:
    """Raise ModelError unless the bands tile [0, 1] in order and the threshold lies in [0, 1]."""
    _unit(threshold, "threshold")
    if not bands:
        raise ModelError("the model's calibration lists no score bands")
    edge = 0.0
    for b in bands:
        if not (math.isclose(b.lo, edge, abs_tol=1e-9) and b.lo < b.hi):
            raise ModelError(
                f"the model's calibration bands must cover [0, 1] in order without gaps; band {b.name!r} "
                f"is [{b.lo}, {b.hi}) after an edge at {edge}"
            )
        edge = b.hi
    if edge < 1.0 - 1e-9:  # the last band may end past 1 (ScoreBand.contains catches 1.0 either way)
        raise ModelError(
            f"the model's calibration bands end at {edge}, leaving scores up to 1 without a band"
        )


def calibration_json(
    threshold: float, bands: Sequence[ScoreBand | Sequence[Any]], real_below: float | None = None,
    span_level: str | None = None,
) -> str:
    """Serialise a calibration the way :func:`parse_calibration` reads it (validated first)."""
    bb = tuple(
        b if isinstance(b, ScoreBand) else ScoreBand(float(b[0]), float(b[1]), str(b[2]), str(b[3]))
        for b in bands
    )
    check_bands(float(threshold), bb)
    if real_below is not None:
        _unit(float(real_below), "real_below")
    cal = Calibration(float(threshold), bb, None if real_below is None else float(real_below), span_level)
    return parse_calibration(cal.to_json()).to_json()  # validates span_level too


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (models can be hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def card_path_for(model_path: str | Path) -> Path | None:
    """The model card: ``NAME.md`` beside ``NAME.onnx`` (an ``_int8`` file may share the fp32 card)."""
    p = Path(model_path)
    candidates = [p.with_suffix(".md")]
    if p.stem.endswith("_int8"):
        candidates.append(p.with_name(p.stem[: -len("_int8")] + ".md"))
    return next((c for c in candidates if c.is_file()), None)


def read_metadata_props(path: str | Path) -> dict[str, str]:
    """The ONNX ``metadata_props`` as a dict; ModelError if the file is missing or not ONNX."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}")
    import onnx  # lazy: only model commands need it

    try:
        # Parsing the protobuf is fast even at 350 MB; external data (if any) is not read.
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{p.name} is not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    if not proto.graph.node:
        raise ModelError(f"{p.name} is not a usable ONNX model (its graph is empty)")
    return {prop.key: prop.value for prop in proto.metadata_props}


def model_info_from_metadata(path: str | Path, meta: Mapping[str, str], sha256: str) -> ModelInfo:
    """Build ModelInfo from already-read metadata (a backend reads it from its session)."""
    p = Path(path)
    trained_text = meta.get(KEY_TRAINED, "").strip().lower()
    if trained_text in ("", "true", "1", "yes"):
        # A model exported elsewhere without our metadata is assumed trained but uncalibrated.
        trained = True
    elif trained_text in ("false", "0", "no"):
        trained = False
    else:
        raise ModelError(f"the model's {KEY_TRAINED} metadata is {trained_text!r}; expected true or false")
    calibration: Calibration | None = None
    if KEY_CALIBRATION in meta:
        calibration = parse_calibration(meta[KEY_CALIBRATION])
        threshold, bands = calibration.threshold, calibration.bands
    else:
        threshold, bands = DEFAULT_THRESHOLD, default_bands(trained)
    calibrated = calibration is not None
    extra: dict[str, Any] = {}
    if calibration is not None and calibration.real_below is not None:
        extra["real_below"] = calibration.real_below
    if calibration is not None and calibration.span_level is not None:
        extra["span_level"] = calibration.span_level
    notes: list[str] = []
    if not trained:
        notes.append("Untrained placeholder model: its scores mean nothing.")
    elif not calibrated:
        notes.append("The model carries no calibration: score bands are generic defaults.")
    if meta.get(KEY_NOTES):
        notes.append(meta[KEY_NOTES])
    card = card_path_for(p)
    return ModelInfo(
        name=meta.get(KEY_NAME) or p.stem,
        sha256=sha256,
        path=str(p.resolve()),
        version=meta.get(KEY_VERSION, ""),
        trained=trained,
        threshold=threshold,
        bands=bands,
        card_path=str(card) if card else "",
        notes=" ".join(notes),
        **extra,
    )


def read_model_info(path: str | Path) -> ModelInfo:
    """Read a model's identity, calibration and card from its file (and hash it)."""
    meta = read_metadata_props(path)
    return model_info_from_metadata(path, meta, sha256_file(path))


def model_precision(path: str | Path, meta: Mapping[str, str]) -> str:
    """ "int8" or "fp32" (or whatever ``deepyn.precision`` says) for describe() and exports.

    onnxruntime's quantizer stamps ``onnx.infer=onnxruntime.quant`` but copies the fp32 model's
    ``deepyn.precision`` unchanged, so its stamp wins; then ``deepyn.precision``; then the file name.
    """
    if meta.get("onnx.infer") == "onnxruntime.quant":
        return "int8"
    value = meta.get(KEY_PRECISION, "").strip().lower()
    if value:
        return value
    return "int8" if "int8" in Path(path).name.lower() else "fp32"


def _shape_text(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) if d is not None else "?" for d in shape) + "]"


def _fixed(shape: Sequence[Any], expected_tail: tuple[int, ...]) -> bool:
    """Rank matches and every non-batch dim equals the expected size (batch may be symbolic)."""
    if len(shape) != 1 + len(expected_tail):
        return False
    return all(isinstance(d, int) and d == e for d, e in zip(shape[1:], expected_tail))


def validate_model_interface(session: Any) -> None:
    """Refuse a model whose inputs/outputs are not U-YNet's deployable interface.

    ``session`` is an ``onnxruntime.InferenceSession`` (anything with ``get_inputs``/``get_outputs``
    returning objects with ``name``, ``shape`` and ``type``). Expected: input ``image`` float
    [N,3,224,224]; outputs ``mask_prob`` float [N,224,224] and ``fake_score`` float [N].
    """
    inputs = list(session.get_inputs())
    outputs = list(session.get_outputs())
    found = (
        "inputs "
        + ", ".join(f"{i.name} {i.type} {_shape_text(i.shape)}" for i in inputs)
        + "; outputs "
        + ", ".join(f"{o.name} {o.type} {_shape_text(o.shape)}" for o in outputs)
    )
    expected = (
        f"input {INPUT_NAME} float [N,3,{CROP_SIZE},{CROP_SIZE}]; outputs {OUTPUT_NAMES[0]} float "
        f"[N,{CROP_SIZE},{CROP_SIZE}] and {OUTPUT_NAMES[1]} float [N]"
    )
    ok = (
        len(inputs) == 1
        and inputs[0].name == INPUT_NAME
        and inputs[0].type == "tensor(float)"
        and _fixed(inputs[0].shape, (3, CROP_SIZE, CROP_SIZE))
        and sorted(o.name for o in outputs) == sorted(OUTPUT_NAMES)
    )
    if ok:
        by_name = {o.name: o for o in outputs}
        ok = (
            all(o.type == "tensor(float)" for o in outputs)
            and _fixed(by_name[OUTPUT_NAMES[0]].shape, (CROP_SIZE, CROP_SIZE))
            and _fixed(by_name[OUTPUT_NAMES[1]].shape, ())
        )
    if not ok:
        raise ModelError(f"this is not a U-YNet model for DeepYN: expected {expected}, found {found}")
