"""annotate(): a pure, deterministic drawing of findings (the basis of byte-identical GUI/CLI PNGs)."""

from __future__ import annotations

import numpy as np
import pytest

from deepyn_gui.core.export.annotate import (
    AnnotateStyle,
    Caption,
    annotate,
    ascii_text,
    colormap_lut,
    decode_png,
    encode_png,
    timecode,
)
from deepyn_gui.core.results import CropTransform, FaceResult, FrameResult, compress_mask

H, W = 120, 160


def _frame() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = (xx * 255 // W).astype(np.uint8)
    img[..., 1] = 90
    img[..., 2] = (yy * 255 // H).astype(np.uint8)
    return img


def _face(score: float = 0.9) -> FaceResult:
    # crop square 40..96 x 20..76 (56 px) -> 224: mask 255 on the crop's left half only
    mask = np.zeros((224, 224), np.uint8)
    mask[:, :112] = 255
    return FaceResult(
        track=3, box=(48.0, 28.0, 40.0, 40.0), state="ok", fake_score=score,
        crop=CropTransform(40.0, 20.0, 56.0), mask_blob=compress_mask(mask),
    )


def _caption() -> Caption:
    return Caption("clip.mp4", 12, 0.48, model="m", backend="onnx", evidence_sha256="ab" * 32)


def test_mask_is_drawn_where_the_mask_is_and_nowhere_else() -> None:
    frame = _frame()
    fr = FrameResult(12, 0.48, "ok", (_face(),))
    style = AnnotateStyle(show_boxes=False, show_ids=False, show_scores=False, show_caption=False)
    out = annotate(frame, fr, style)
    assert out.shape == frame.shape
    changed = np.any(out != frame, axis=2)
    # masked half of the crop square: x 40..67, y 20..75 -> all changed, towards red
    assert changed[22:74, 42:66].all()
    assert (out[22:74, 42:66, 0].astype(int) >= frame[22:74, 42:66, 0]).all()
    # the unmasked half and everything outside the crop square stay untouched
    assert not changed[:, 70:].any()
    assert not changed[:18, :].any() and not changed[78:, :].any()


def test_mask_threshold_and_opacity() -> None:
    fr = FrameResult(0, 0.0, "ok", (_face(),))
    base = {"show_boxes": False, "show_ids": False, "show_scores": False, "show_caption": False}
    frame = _frame()
    assert np.array_equal(annotate(frame, fr, AnnotateStyle(**base, opacity=0.0)), frame)
    assert np.array_equal(annotate(frame, fr, AnnotateStyle(**base, show_mask=False)), frame)
    half = annotate(frame, fr, AnnotateStyle(**base, opacity=0.5))
    full = annotate(frame, fr, AnnotateStyle(**base, opacity=1.0))
    red = colormap_lut("red")[255]
    assert np.array_equal(full[40, 50], red)
    assert np.allclose(half[40, 50], (frame[40, 50].astype(float) + red) / 2, atol=1)


def test_boxes_labels_and_caption_strip() -> None:
    frame = _frame()
    fr = FrameResult(12, 0.48, "ok", (_face(0.9),))
    out = annotate(frame, fr, AnnotateStyle(show_mask=False), _caption())
    assert out.shape[0] > H and out.shape[1] == W and out.shape[0] % 2 == 0
    # box edge is drawn in the "fake" red
    assert tuple(out[28 + 20, 48]) == (230, 40, 40)
    # the caption strip is dark with light text
    strip = out[H:]
    assert strip.mean() < 80 and strip.max() > 200
    # the input is never modified
    assert np.array_equal(frame, _frame())


def test_deterministic_bytes() -> None:
    frame = _frame()
    fr = FrameResult(12, 0.48, "ok", (_face(),))
    a = encode_png(annotate(frame, fr, AnnotateStyle(), _caption()))
    b = encode_png(annotate(frame.copy(), FrameResult(12, 0.48, "ok", (_face(),)), AnnotateStyle(), _caption()))
    assert a == b
    assert np.array_equal(decode_png(a), annotate(frame, fr, AnnotateStyle(), _caption()))


def test_not_analysed_and_no_face_frames_are_drawn_clean_but_captioned_differently() -> None:
    frame = _frame()
    cap = _caption()
    not_analysed = annotate(frame, None, AnnotateStyle(), cap)
    no_face = annotate(frame, FrameResult(12, 0.48, "no_face"), AnnotateStyle(), cap)
    assert np.array_equal(not_analysed[:H], frame) and np.array_equal(no_face[:H], frame)
    assert not np.array_equal(not_analysed[H:], no_face[H:])  # "not analysed" vs "no face found"


def test_unscored_faces_are_grey_and_carry_no_number() -> None:
    small = FaceResult(track=1, box=(10.0, 10.0, 20.0, 20.0), state="too_small")
    out = annotate(_frame(), FrameResult(0, 0.0, "ok", (small,)), AnnotateStyle(show_caption=False))
    assert tuple(out[20, 10]) == (160, 160, 160)


def test_text_helpers() -> None:
    assert timecode(3723.4567) == "01:02:03.457"
    assert timecode(0) == "00:00:00.000"
    assert ascii_text("Zoë_<x>_日本.mp4") == "Zoe_<x>_??.mp4"
    with pytest.raises(ValueError):
        AnnotateStyle(colormap="nope")
    with pytest.raises(ValueError):
        annotate(np.zeros((4, 4), np.uint8), None)
