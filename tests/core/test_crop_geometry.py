"""Crop geometry both ways: extract_crop (frame -> crop) and mask_to_frame (crop -> frame).

The central property: a frame whose pixels hold their own coordinates, cropped and mapped back,
gives each frame pixel its own coordinates again (linear data survives bilinear and area resampling),
for squares inside, across and beyond the frame edges, snapped to the pixel grid or not.
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deepyn_gui.core.faces import (
    MIN_FACE_SIDE,
    crop_transform_for_box,
    extract_crop,
    is_too_small,
    mask_to_frame,
)
from deepyn_gui.core.results import CropTransform

SETTINGS = settings(
    max_examples=int(os.environ.get("DEEPYN_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def frame_and_box(draw: st.DrawFn) -> tuple[int, int, tuple[float, float, float, float], float]:
    """A frame size, a face box that may touch or cross any border, and a margin."""
    h = draw(st.integers(8, 240))
    w = draw(st.integers(8, 240))
    bw = draw(st.floats(2.0, 1.5 * max(w, h)))
    bh = draw(st.floats(2.0, 1.5 * max(w, h)))
    x = draw(st.floats(-bw + 1.0, w - 1.0))
    y = draw(st.floats(-bh + 1.0, h - 1.0))
    margin = draw(st.floats(1.0, 2.0))
    return h, w, (x, y, bw, bh), margin


def _coordinate_frame(h: int, w: int) -> np.ndarray:
    """float32 HxWx3 frame: channel 0 = column index, channel 1 = row index, channel 2 = 1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([xx, yy, np.ones_like(xx)])


# ----------------------------------------------------------------------------------------------
# (a) the transform's two maps are inverses; the square is where the docstring says
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(
    x0=st.floats(-1e4, 1e4),
    y0=st.floats(-1e4, 1e4),
    side=st.floats(0.5, 1e4),
    size=st.sampled_from([224, 64, 1]),
    pts=st.lists(st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4)), min_size=1, max_size=8),
)
def test_frame_to_crop_and_back_are_inverses(
    x0: float, y0: float, side: float, size: int, pts: list[tuple[float, float]]
) -> None:
    t = CropTransform(x0, y0, side, size)
    p = np.array(pts, dtype=np.float64)
    np.testing.assert_allclose(
        t.crop_to_frame(t.frame_to_crop(p)), p, rtol=0, atol=1e-6 * (1 + np.abs(p).max())
    )
    uv = np.array(pts, dtype=np.float64) / 10.0
    np.testing.assert_allclose(
        t.frame_to_crop(t.crop_to_frame(uv)), uv, rtol=0, atol=1e-6 * (1 + abs(uv).max())
    )
    # The square's corners map to the crop's corners.
    np.testing.assert_allclose(t.frame_to_crop(np.array([x0, y0])), [0, 0], atol=1e-6)
    np.testing.assert_allclose(t.frame_to_crop(np.array([x0 + side, y0 + side])), [size, size], rtol=1e-9)


@SETTINGS
@given(frame_and_box(), st.booleans())
def test_crop_square_is_centred_and_sized(
    case: tuple[int, int, tuple[float, ...], float], snap: bool
) -> None:
    _, _, box, margin = case
    x, y, w, h = box
    t = crop_transform_for_box(box, margin=margin, snap=snap)  # type: ignore[arg-type]
    tol = 0.5 + 1e-9 if snap else 1e-6
    assert t.size == 224
    assert abs(t.side - margin * max(w, h)) <= tol
    assert abs((t.x0 + t.side / 2) - (x + w / 2)) <= tol
    assert abs((t.y0 + t.side / 2) - (y + h / 2)) <= tol
    if snap:
        assert t.x0 == int(t.x0) and t.y0 == int(t.y0) and t.side == int(t.side)
    # The face box lies inside the square (margin >= 1); snapping the side and the corner may each
    # move an edge by half a pixel.
    tol = 1.0 + 1e-9 if snap else 1e-6
    assert t.x0 <= x + tol and t.y0 <= y + tol
    assert t.x0 + t.side >= x + w - tol and t.y0 + t.side >= y + h - tol


def test_crop_transform_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        crop_transform_for_box((0, 0, 0, 10))
    with pytest.raises(ValueError):
        crop_transform_for_box((0, 0, 10, 10), margin=0)
    with pytest.raises(ValueError):
        crop_transform_for_box((math.nan, 0, 10, 10))


# ----------------------------------------------------------------------------------------------
# (b) round trip: coordinates survive crop -> mask_to_frame in the interior of the visible area
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(frame_and_box(), st.booleans(), st.sampled_from([224, 96]))
@example(case=(8, 35, (0.0, 6.5, 2.0, 51.56701202194531), 1.0), snap=False, size=224)
def test_round_trip_reproduces_frame_coordinates(
    case: tuple[int, int, tuple[float, ...], float], snap: bool, size: int
) -> None:
    h, w, box, margin = case
    t = crop_transform_for_box(box, margin=margin, size=size, snap=snap)  # type: ignore[arg-type]
    frame = _coordinate_frame(h, w)
    crop = extract_crop(frame, t)
    assert crop.shape == (size, size, 3) and crop.dtype == np.float32

    placed = [mask_to_frame(np.ascontiguousarray(crop[..., c]), t, (h, w)) for c in range(3)]
    # Visible pixels: centres inside the square, clipped to the frame. A centre within 1e-9 px of the
    # square's edge is a floating-point tie (hypothesis found y0 = 6.5000000000000036): the code resolves
    # it with that tolerance, and so does the test.
    cols = np.arange(w) + 0.5
    rows = np.arange(h) + 0.5
    vis_c = np.nonzero((cols >= t.x0 - 1e-9) & (cols < t.x0 + t.side - 1e-9))[0]
    vis_r = np.nonzero((rows >= t.y0 - 1e-9) & (rows < t.y0 + t.side - 1e-9))[0]
    if len(vis_c) == 0 or len(vis_r) == 0:
        assert all(p is None for p in placed)
        return
    assert all(p is not None for p in placed)
    x, y, roi_x = placed[0]  # type: ignore[misc]
    _, _, roi_y = placed[1]  # type: ignore[misc]
    assert (x, y) == (int(vis_c[0]), int(vis_r[0]))
    assert roi_x.shape == (len(vis_r), len(vis_c)) and roi_x.dtype == np.float32

    # Interior: away from the frame edge (the black padding blends in there) and from the square's edge
    # (clamped interpolation). The reach of that blending, in frame pixels, is one crop pixel's footprint
    # for the area shrink plus one for the bilinear way back, plus one more when a sub-pixel square is
    # pre-shrunk before its warp: three footprints and a pixel.
    e = 3.0 * max(1.0, t.side / size) + 1.5
    cx = x + np.arange(roi_x.shape[1]) + 0.5
    cy = y + np.arange(roi_x.shape[0]) + 0.5
    inner_x = (cx >= e) & (cx <= w - e) & (cx >= t.x0 + e) & (cx <= t.x0 + t.side - e)
    inner_y = (cy >= e) & (cy <= h - e) & (cy >= t.y0 + e) & (cy <= t.y0 + t.side - e)
    if not inner_x.any() or not inner_y.any():
        return
    want_x = (cx - 0.5)[None, :].repeat(len(cy), 0)
    want_y = (cy - 0.5)[:, None].repeat(len(cx), 1)
    m = inner_y[:, None] & inner_x[None, :]
    # Linear data is reproduced by bilinear and area resampling up to warpAffine's 1/32 px grid and
    # area averaging of a staircase: well under half a pixel.
    tol = 0.35 + 0.05 * max(1.0, t.side / size)
    assert np.abs(roi_x[m] - want_x[m]).max() <= tol
    assert np.abs(roi_y[m] - want_y[m]).max() <= tol


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_mask_to_frame_keeps_dtype_and_clips(dtype: type) -> None:
    t = CropTransform(-20.0, 30.0, 100.0, 224)
    mask = np.full((224, 224), 200, dtype=dtype)
    out = mask_to_frame(mask, t, (90, 60))
    assert out is not None
    x, y, roi = out
    assert (x, y) == (0, 30)
    assert roi.shape == (60, 60)  # rows 30..89 (frame ends), cols 0..59 (square ends at x=80 > 60)
    assert roi.dtype == dtype
    np.testing.assert_allclose(roi, 200, atol=1e-3)


def test_mask_to_frame_none_when_off_frame() -> None:
    mask = np.ones((224, 224), np.float32)
    assert mask_to_frame(mask, CropTransform(100.0, 0.0, 50.0), (80, 100)) is None
    assert mask_to_frame(mask, CropTransform(-60.0, -60.0, 59.6), (80, 100)) is None
    with pytest.raises(ValueError):
        mask_to_frame(np.ones((10, 10), np.float32), CropTransform(0.0, 0.0, 50.0), (80, 100))


def test_mask_to_frame_is_exact_inverse_of_resize_for_aligned_squares() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((224, 224), dtype=np.float32)
    # Shrinking back (face smaller than the crop): exactly cv2.resize INTER_AREA of the mask.
    t = CropTransform(10.0, 5.0, 100.0)
    x, y, roi = mask_to_frame(mask, t, (300, 300))  # type: ignore[misc]
    assert (x, y) == (10, 5)
    np.testing.assert_array_equal(roi, cv2.resize(mask, (100, 100), interpolation=cv2.INTER_AREA))
    # Enlarging (face larger than the crop): bilinear, as cv2.resize INTER_LINEAR, on the visible part.
    t = CropTransform(-50.0, 20.0, 400.0)
    x, y, roi = mask_to_frame(mask, t, (300, 320))  # type: ignore[misc]
    ref = cv2.resize(mask, (400, 400), interpolation=cv2.INTER_LINEAR)[0:280, 50:370]
    assert (x, y) == (0, 20) and roi.shape == ref.shape == (280, 320)
    # warpAffine samples on a 1/32 px grid: at most 1/64 px off per axis, values here differ by <= 1/px.
    np.testing.assert_allclose(roi, ref, atol=2 / 64 + 1e-3)
    # Same size: identity.
    t = CropTransform(3.0, 4.0, 224.0)
    x, y, roi = mask_to_frame(mask, t, (400, 400))  # type: ignore[misc]
    np.testing.assert_array_equal(roi, mask)


# ----------------------------------------------------------------------------------------------
# (c) an integer-aligned square inside the frame is exactly cv2.resize of the frame slice
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(
    h=st.integers(4, 300),
    w=st.integers(4, 300),
    data=st.data(),
    size=st.sampled_from([224, 64]),
)
def test_aligned_crop_equals_resize_of_slice(h: int, w: int, data: st.DataObject, size: int) -> None:
    side = data.draw(st.integers(1, min(h, w)))
    x0 = data.draw(st.integers(0, w - side))
    y0 = data.draw(st.integers(0, h - side))
    rng = np.random.default_rng(h * 1000 + w)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    crop = extract_crop(frame, CropTransform(float(x0), float(y0), float(side), size))
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    ref = cv2.resize(frame[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=interp)
    assert crop.dtype == np.uint8 and crop.shape == (size, size, 3)
    np.testing.assert_array_equal(crop, ref)


def test_snapped_box_crop_matches_slice() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    t = crop_transform_for_box((200.3, 100.7, 150.2, 180.9), margin=1.3)
    x0, y0, s = int(t.x0), int(t.y0), int(t.side)
    ref = cv2.resize(frame[y0 : y0 + s, x0 : x0 + s], (224, 224), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(extract_crop(frame, t), ref)


# ----------------------------------------------------------------------------------------------
# (d) pixels outside the frame are black; pixels well inside are untouched by the padding
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(frame_and_box(), st.booleans())
def test_padding_outside_the_frame_is_zero(
    case: tuple[int, int, tuple[float, ...], float], snap: bool
) -> None:
    h, w, box, margin = case
    t = crop_transform_for_box(box, margin=margin, snap=snap)  # type: ignore[arg-type]
    frame = np.full((h, w, 3), 255, np.uint8)
    crop = extract_crop(frame, t)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    # Each crop pixel's footprint in frame coordinates, widened by one frame pixel for interpolation,
    # and for a sub-pixel square that is shrunk (area pre-shrink, then a bilinear warp) by one more
    # crop pixel's footprint.
    u = np.arange(224)
    r = 1.0 / t.scale
    aligned = all(float(v).is_integer() for v in (t.x0, t.y0, t.side))
    pad = 1.0 + (r if (t.scale < 1.0 and not aligned) else 0.0)
    lo_x, hi_x = t.x0 + u * r - pad, t.x0 + (u + 1) * r + pad
    lo_y, hi_y = t.y0 + u * r - pad, t.y0 + (u + 1) * r + pad
    out_x = (hi_x <= 0) | (lo_x >= w)
    out_y = (hi_y <= 0) | (lo_y >= h)
    outside = out_y[:, None] | out_x[None, :]
    inside = ((lo_y >= 0) & (hi_y <= h))[:, None] & ((lo_x >= 0) & (hi_x <= w))[None, :]
    assert np.all(crop[outside] == 0)
    assert np.all(crop[inside] == 255)


def test_square_entirely_off_frame_is_black() -> None:
    frame = np.full((50, 60, 3), 255, np.uint8)
    for t in (CropTransform(100.0, 0.0, 30.0), CropTransform(-40.5, -40.5, 30.0, 32)):
        crop = extract_crop(frame, t)
        assert crop.shape == (t.size, t.size, 3)
        assert not crop.any()


# ----------------------------------------------------------------------------------------------
# too small
# ----------------------------------------------------------------------------------------------


def test_is_too_small() -> None:
    assert MIN_FACE_SIDE == 40
    assert is_too_small((0, 0, 39.9, 30))
    assert not is_too_small((0, 0, 20, 40))
    assert not is_too_small((0, 0, 100, 120))
    assert is_too_small((0, 0, 100, 120), min_side=200)
