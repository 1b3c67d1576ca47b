"""Property tests (Hypothesis) of the array ↔ RGB [0, 1] conversions and their documented precision.

The statements tested are the ones in ``engine/images.py``'s module docstring: uint8 and
bool round-trip exactly; integers whose range is below 2**22 round-trip exactly inside
``[low, high]``; floats within ``(high - low) * 2**-23`` plus the dtype's own rounding;
values outside ``[low, high]`` come back as the nearest bound; NaN → low, ±inf → the
bounds; alpha comes back unchanged, and so do the pixels where it is 0 (any value, NaN
included); shapes and dtypes are kept.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_style_transfer.arrays import MIN_SIDE, fit_long_side
from napari_style_transfer.engine import ImageError
from napari_style_transfer.engine.images import from_rgb01, to_rgb01, value_range

SETTINGS = settings(max_examples=100, deadline=None)
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
#: Largest magnitude used for each float dtype (float16 tops out at 65504).
FLOAT_MAX = {np.float16: 6.0e4, np.float32: 1.0e6, np.float64: 1.0e6}


@st.composite
def shapes(draw, channels=(None, 1, 3, 4)):
    """(H, W) or (H, W, C) with small sides (the conversions do not care about size)."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    c = draw(st.sampled_from(channels))
    return (h, w) if c is None else (h, w, c)


def color_part(x: np.ndarray) -> np.ndarray:
    return x[..., :3] if x.ndim == 3 and x.shape[-1] == 4 else x


def converted(rgb: np.ndarray, info, x: np.ndarray) -> np.ndarray:
    """from_rgb01, after checking that transparent pixels come back as given; the result returned
    is the conversion without that, so that the value checks cover every pixel."""
    out = from_rgb01(rgb, info)
    if x.ndim == 3 and x.shape[-1] == 4:
        np.testing.assert_array_equal(out[..., 3], x[..., 3])  # alpha unchanged, any dtype
        transparent = x[..., 3] == 0
        np.testing.assert_array_equal(out[transparent], x[transparent])  # as given, NaN included
        out = from_rgb01(rgb, dataclasses.replace(info, transparent=None))
    return out


def round_trip(x: np.ndarray, limits=None):
    rgb, info = to_rgb01(x, limits)
    out = converted(rgb, info, x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert rgb.dtype == np.float32 and rgb.shape == x.shape[:2] + (3,) and rgb.flags.c_contiguous
    assert np.isfinite(rgb).all() and rgb.min() >= 0.0 and rgb.max() <= 1.0
    return out, info


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.bool_]))
def test_uint8_and_bool_round_trip_exactly(data, dtype):
    x = data.draw(arrays(dtype, shapes()))
    out, info = round_trip(x)
    assert (info.low, info.high) == ((0.0, 255.0) if dtype == np.uint8 else (0.0, 1.0))
    np.testing.assert_array_equal(out, x)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(INT_DTYPES))
def test_integers_with_a_range_below_2_22_are_exact_inside_the_value_range(data, dtype):
    info_t = np.iinfo(dtype)
    span = data.draw(st.integers(0, min(2**22, int(info_t.max) - int(info_t.min))))
    lowest = data.draw(st.integers(max(int(info_t.min), -(2**40)), min(int(info_t.max), 2**40) - span))
    x = data.draw(arrays(dtype, shapes(), elements=st.integers(lowest, lowest + span)))
    out, info = round_trip(x)
    assert int(x.min()) <= info.low < info.high <= max(int(x.max()), info.low + 1)
    xc, oc = color_part(x).astype(np.float64), color_part(out).astype(np.float64)
    inside = (xc >= info.low) & (xc <= info.high)
    np.testing.assert_array_equal(oc[inside], xc[inside])
    # outside the robust range: the nearest bound (rounded to an integer)
    expected = np.clip(xc, info.low, info.high)
    assert np.all(np.abs(oc - expected) <= 0.5 + 1e-9 * max(abs(info.low), abs(info.high), 1.0))


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.int32, np.int64, np.uint32, np.uint64]))
def test_integers_of_any_range_are_within_the_documented_bound(data, dtype):
    info_t = np.iinfo(dtype)
    x = data.draw(arrays(dtype, shapes(), elements=st.integers(int(info_t.min), int(info_t.max))))
    out, info = round_trip(x)
    xc, oc = color_part(x).astype(np.float64), color_part(out).astype(np.float64)
    expected = np.clip(xc, info.low, info.high)
    magnitude = max(abs(info.low), abs(info.high))
    tolerance = (info.high - info.low) * 2.0**-24 + 0.5 + magnitude * 2.0**-52 * 4
    assert np.all(np.abs(oc - expected) <= tolerance)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOAT_DTYPES))
def test_floats_are_within_the_documented_bound_and_clipped_outside(data, dtype):
    limit = FLOAT_MAX[dtype]
    width = {np.float16: 16, np.float32: 32, np.float64: 64}[dtype]
    elements = st.floats(-limit, limit, allow_nan=False, allow_infinity=False, width=width)
    x = data.draw(arrays(dtype, shapes(), elements=elements))
    out, info = round_trip(x)
    xc, oc = color_part(x).astype(np.float64), color_part(out).astype(np.float64)
    if xc.min() >= 0 and xc.max() <= 1:
        assert (info.low, info.high) == (0.0, 1.0)
    expected = np.clip(xc, info.low, info.high)
    magnitude = max(abs(info.low), abs(info.high))
    tolerance = (info.high - info.low) * 2.0**-23 + magnitude * (np.finfo(dtype).eps + 1e-15)
    assert np.all(np.abs(oc - expected) <= tolerance)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_nan_and_infinities_map_to_the_bounds(data, dtype):
    x = data.draw(arrays(dtype, shapes(channels=(None, 3)), elements=st.floats(-100, 100, width=32)))
    special = data.draw(arrays(np.int8, x.shape, elements=st.integers(0, 3)))
    x = x.copy()
    x[special == 1], x[special == 2], x[special == 3] = np.nan, np.inf, -np.inf
    out, info = round_trip(x)
    assert np.isfinite(out).all()
    tolerance = (info.high - info.low) * 2.0**-23 + 1e-9
    assert np.all(np.abs(out[special == 1] - info.low) <= tolerance)
    assert np.all(np.abs(out[special == 2] - info.high) <= tolerance)
    assert np.all(np.abs(out[special == 3] - info.low) <= tolerance)


@SETTINGS
@given(
    data=st.data(),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32]),
    low=st.integers(-1000, 1000),
    span=st.integers(1, 5000),
)
def test_contrast_limits_define_the_range(data, dtype, low, span):
    if np.dtype(dtype).kind in "iu":
        info_t = np.iinfo(dtype)
        elements = st.integers(int(info_t.min), int(info_t.max))
        low = int(np.clip(low, info_t.min, info_t.max - 1))
        high = int(min(low + span, info_t.max))
    else:
        elements = st.floats(-1e4, 1e4, width=32)
        high = low + span
    x = data.draw(arrays(dtype, shapes(), elements=elements))
    out, info = round_trip(x, (low, high))
    assert (info.low, info.high) == (float(low), float(high))
    xc, oc = color_part(x).astype(np.float64), color_part(out).astype(np.float64)
    expected = np.clip(xc, low, high)
    tolerance = (high - low) * 2.0**-23 + 1e-9 + (0.0 if np.dtype(dtype).kind == "f" else 0.0)
    assert np.all(np.abs(oc - expected) <= tolerance)


@SETTINGS
@given(value=st.floats(-1e6, 1e6), dtype=st.sampled_from([np.float32, np.int32, np.uint16]))
def test_constant_images_round_trip(value, dtype):
    if np.dtype(dtype).kind in "iu":
        info_t = np.iinfo(dtype)
        value = float(np.clip(round(value), info_t.min, info_t.max))
    x = np.full((5, 7), value, dtype=dtype)
    out, info = round_trip(x)
    assert info.high > info.low
    np.testing.assert_allclose(out.astype(np.float64), x.astype(np.float64), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, *INT_DTYPES[2:]])
@pytest.mark.parametrize("pattern", ["extremes", "min", "max"])
def test_integer_extremes_round_trip_without_overflow(dtype, pattern):
    info_t = np.iinfo(dtype)
    x = np.array([[info_t.min, info_t.max], [info_t.max, info_t.min]], dtype)
    if pattern != "extremes":
        x = np.full((2, 3), info_t.min if pattern == "min" else info_t.max, dtype)
    with np.errstate(all="raise"):
        out, info = round_trip(x)
    # 64-bit values beyond 2**53 pass through float64: within 2**-52 of their magnitude
    tolerance = 0 if info_t.bits < 64 else 2.0**-52 * 4 * max(abs(int(info_t.min)), int(info_t.max))
    assert np.all(np.abs(out.astype(object) - x.astype(object)) <= tolerance)


@SETTINGS
@given(h=st.integers(1, 5000), w=st.integers(1, 5000), long_side=st.integers(16, 4096))
def test_working_sizes_are_never_below_the_network_minimum(h, w, long_side):
    out = fit_long_side((h, w), long_side)
    assert min(out) >= MIN_SIDE and max(out) == max(long_side, MIN_SIDE)
    if min(h, w) * long_side >= MIN_SIDE * max(h, w) + max(h, w):  # thick enough: aspect kept
        assert abs(out[0] / out[1] - h / w) <= (h / w) * (1 / min(out) + 1 / max(out))


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros((8, 8), np.complex64), "complex images are not supported"),
        (np.zeros((8, 8), object), "dtype object is not supported"),
        (np.zeros((8, 8, 2), np.uint8), "has 2 channels; style transfer needs grayscale, RGB or RGBA"),
        (np.zeros((20, 20, 5), np.uint8), "has 5 channels; style transfer needs grayscale, RGB or RGBA"),
        (np.zeros((3, 20, 20), np.uint8), "looks channel-first (3 channels on axis 0); move them last"),
        (np.zeros((5, 20, 20), np.uint8), "is not a 2D image (a stack of 5 planes?)"),
        (np.zeros((2, 20, 20, 3), np.uint8), "is not a 2D image"),
        (np.zeros(5, np.uint8), "is not a 2D image"),
        (np.zeros((0, 5), np.uint8), "is empty"),
        ([[1, 2], [3, 4]], "expected a numpy array"),
    ],
)
def test_arrays_the_engine_cannot_use_are_refused_in_one_sentence(array, expected):
    with pytest.raises(ImageError) as info:
        to_rgb01(array, name="content")
    message = str(info.value)
    assert message.startswith("content: ") and expected in message and "\n" not in message


# --- arrays a scientist passes from Python (issue 14) -------------------------------------------------

ALL_DTYPES = [np.bool_, np.uint8, *INT_DTYPES, *FLOAT_DTYPES]


def plain(dtype):
    """Any values of ``dtype`` (floats: the whole range, NaN and infinities included)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8)
    if dtype.kind == "b":
        return st.booleans()
    info = np.iinfo(dtype)
    return st.integers(int(info.min), int(info.max))


#: Ways the same values reach the engine: numpy subclasses, odd layouts, byte orders, tensors.
VIEWS = {
    "matrix": lambda x, tmp: np.asmatrix(x) if x.ndim == 2 else x,
    "memmap": lambda x, tmp: _memmap(x, tmp),
    "read-only": lambda x, tmp: _read_only(x),
    "fortran order": lambda x, tmp: np.asfortranarray(x),
    "negative strides": lambda x, tmp: np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1],
    "big-endian": lambda x, tmp: x.astype(x.dtype.newbyteorder(">")),
    "tensor with grad": lambda x, tmp: _tensor(x),
}


def _memmap(x, tmp):
    m = np.memmap(tmp / f"m{id(x)}.dat", dtype=x.dtype, mode="w+", shape=x.shape)
    m[...] = x
    return m


def _read_only(x):
    y = x.copy()
    y.flags.writeable = False
    return y


def _tensor(x):
    import torch

    if x.dtype.kind != "f" or x.dtype == np.float16:
        return torch.from_numpy(x.copy())
    return torch.from_numpy(x.copy()).requires_grad_(True) * 1  # a non-leaf tensor with autograd state


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(ALL_DTYPES), view=st.sampled_from(list(VIEWS)))
def test_numpy_subclasses_layouts_and_tensors_convert_like_the_plain_array(
    data, dtype, view, tmp_path_factory
):
    if view == "tensor with grad" and np.dtype(dtype) in (np.dtype(np.uint32), np.dtype(np.uint64)):
        dtype = np.int64  # torch has no unsigned 32/64-bit tensors from numpy
    x = data.draw(arrays(dtype, shapes(), elements=plain(dtype)))
    given_as = VIEWS[view](x, tmp_path_factory.mktemp("views"))
    rgb, info = to_rgb01(given_as)
    expected, expected_info = to_rgb01(x)
    np.testing.assert_array_equal(rgb, expected)
    assert (info.low, info.high, info.channels) == (
        expected_info.low,
        expected_info.high,
        expected_info.channels,
    )
    out = from_rgb01(rgb, info)
    assert type(out) is np.ndarray and out.shape == x.shape


@settings(max_examples=100, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(FLOAT_DTYPES))
def test_floats_across_the_whole_range_convert_without_overflow(data, dtype):
    """±max, subnormals, NaN and ±inf together: finite RGB, no warning, a finite result within range."""
    x = data.draw(arrays(dtype, shapes(), elements=plain(dtype)))
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # (underflow to 0 is fine)
        rgb, info = to_rgb01(x)
        out = converted(rgb, info, x)
    assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    assert math.isfinite(info.low) and math.isfinite(info.high) and info.low < info.high
    colour = color_part(out).astype(np.float64)  # (an alpha channel comes back unchanged, inf included)
    assert np.isfinite(colour).all()
    slack = (info.high - info.low) * 2.0**-23 + max(abs(info.low), abs(info.high)) * np.finfo(dtype).eps
    assert colour.min() >= info.low - slack and colour.max() <= info.high + slack


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64]))
def test_masked_pixels_count_as_missing(data, dtype):
    """Masked pixels are the low end, and the range comes from the pixels shown only."""
    x = data.draw(
        arrays(
            dtype,
            shapes(channels=(None,)),
            elements=plain(dtype) if dtype != np.float64 else st.floats(-1e3, 1e3),
        )
    )
    hidden = data.draw(arrays(np.bool_, x.shape))
    masked = np.ma.masked_array(x, mask=hidden)
    rgb, info = to_rgb01(masked)
    assert np.isfinite(rgb).all()
    shown = x[~hidden]
    if shown.size and np.dtype(dtype).kind == "f":
        assert (info.low, info.high) == value_range(shown)  # the hidden values play no part
        np.testing.assert_array_equal(rgb[hidden], 0.0)
    if shown.size and np.dtype(dtype).kind in "iu":
        assert np.all(rgb[hidden] <= rgb[~hidden].min() + 1e-7)


LABEL_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(LABEL_DTYPES))
def test_labels_at_the_ends_of_their_dtype_keep_their_identity(data, dtype):
    """uint64 labels above 2**63, negative labels, the dtype's min and max: each its own region."""
    from napari_style_transfer.engine.masks import check_labels, plan_regions, region_plane

    info = np.iinfo(dtype)
    ends = st.sampled_from([int(info.min), int(info.min) + 1, int(info.max) - 1, int(info.max), 0])
    values = data.draw(
        st.lists(ends | st.integers(int(info.min), int(info.max)), min_size=2, max_size=4, unique=True)
    )
    labels = np.array(data.draw(st.lists(st.sampled_from(values), min_size=12, max_size=12)), dtype).reshape(
        3, 4
    )
    checked = check_labels(labels, (3, 4))
    present = sorted({int(v) for v in labels.ravel()})
    assert sorted({int(v) for v in checked.ravel()}) == present  # no label wrapped around or merged
    chosen = data.draw(st.sampled_from(present))
    (region,) = plan_regions(checked, {chosen: 0}, 1)
    assert region.labels == (chosen,)
    np.testing.assert_array_equal(
        region_plane(checked, region.labels) == 1, labels == np.array(chosen).astype(dtype)
    )


@pytest.mark.parametrize(
    ("mapping", "labels", "expected"),
    [
        ({5: 0}, np.array([[0, 1], [1, 0]]), "label_styles: label 5 is not in the mask (its labels: 0, 1)"),
        (None, np.zeros((2, 2), np.uint8), "content_mask: holds no non-zero label"),
        ({}, np.ones((2, 2), np.uint8), "label_styles: maps no label to a style"),
        ({2**64 - 1: 0}, np.array([[0, 2**63]], np.uint64), f"label {2**64 - 1} is not in the mask"),
    ],
)
def test_mappings_that_would_stylise_nothing_are_refused(mapping, labels, expected):
    from napari_style_transfer.engine import ConfigError
    from napari_style_transfer.engine.masks import check_labels, plan_regions

    with pytest.raises(ConfigError) as info:
        plan_regions(check_labels(labels, labels.shape), mapping, 1)
    assert expected in str(info.value)


# --- the same arrays through a whole (tiny) run ------------------------------------------------------


def _pil(x):
    from PIL import Image

    return Image.fromarray(x).convert("P")


RUNS = {
    "Pillow palette image as the style": lambda c, s: (c, _pil(s)),
    "Pillow image as the content": lambda c, s: (_pil(c).convert("RGBA"), s),
    "tensors with grad as content and style": lambda c, s: (
        _tensor(c.astype(np.float32) / 255),
        _tensor(s.astype(np.float64)),
    ),
    "masked content": lambda c, s: (np.ma.masked_greater(c[..., 0], 200), s),
    "matrix content": lambda c, s: (np.asmatrix(c[..., 0].astype(np.float64)), s),
    "float64 across the range": lambda c, s: (np.where(c[..., 0] > 128, 1.7e308, -1.7e308), s),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_python_arrays_run_through_the_engine(name, content_image, style_image):
    import torch

    from napari_style_transfer.engine import StyleConfig, stylize

    torch.set_num_threads(1)
    content, style = RUNS[name](content_image, style_image)
    result = stylize(content, style, StyleConfig(size=32, iterations=1, multiscale=False))
    assert type(result) is np.ndarray and result.shape[:2] == (22, 32)
    assert np.isfinite(result.astype(np.float64)).all()


@pytest.mark.parametrize(
    "labels", [np.array([0, 2**63 + 1, 2**64 - 1], np.uint64), np.array([0, -128, 127], np.int8)]
)
def test_labels_at_the_ends_of_their_dtype_steer_a_run(labels, content_image, style_image):
    import torch

    from napari_style_transfer.engine import StyleConfig, stylize

    torch.set_num_threads(1)
    mask = np.repeat(labels, [20, 22, 22])[None].repeat(43, axis=0).astype(labels.dtype)
    config = StyleConfig(size=32, iterations=2, multiscale=False)
    out = stylize(content_image, style_image, config, content_mask=mask, label_styles={int(labels[-1]): 0})
    assert out.shape == (22, 32, 3)
    from PIL import Image

    small = np.asarray(Image.fromarray(content_image).resize((32, 22), Image.BILINEAR)).astype(np.float64)
    kept, styled = (
        np.abs(out[:, cols].astype(np.float64) - small[:, cols]).mean()
        for cols in (slice(0, 8), slice(-8, None))
    )
    assert (
        styled > 1.0 and styled > 5 * kept
    )  # the last label (the dtype's max) is stylised, label 0 keeps the content


@pytest.mark.parametrize(
    "values",
    [
        np.array([-1.7e308, 1.7e308]),
        np.array([np.finfo(np.float64).max] * 2),
        np.array([-np.finfo(np.float64).max, 0.0, 5e-324, np.inf, np.nan, np.finfo(np.float64).max]),
        np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max, 0.0], np.float32),
    ],
    ids=["±1.7e308", "constant max", "everything", "float32 ±max"],
)
def test_the_ends_of_the_float_range_round_trip(values):
    x = np.resize(values, (4, 6))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        rgb, info = to_rgb01(x)
        out = from_rgb01(rgb, info)
    assert (
        np.isfinite(rgb).all() and np.isfinite(out).all() and math.isfinite(info.high - info.low) is not None
    )
    finite = x[np.isfinite(x)]
    if finite.min() < finite.max():  # each end comes back as itself (within float32's steps of the range)
        for end in (finite.min(), finite.max()):
            assert np.abs(out[x == end] / end - 1).max() < 1e-6
