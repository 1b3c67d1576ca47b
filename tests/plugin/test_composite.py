"""The canvas as content (plugin/composite.py, Qt-free): visible image layers composited as napari draws them.

Every expected image is computed here from the definitions, independently of the compositor:
a single-channel value v = clip((x − lo) / (hi − lo), 0, 1) ** gamma is drawn as green (0, v, 0),
magenta (v, 0, v) or gray (v, v, v); layers are blended bottom to top over black (translucent:
c·α + out·(1 − α), additive: out + c·α, minimum: min(out, c), opaque: c) and clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image
from scipy.ndimage import map_coordinates

from napari_style_transfer.arrays import block_mean
from napari_style_transfer.plugin.composite import (
    CANVAS_NAME,
    Canvas,
    LayerLook,
    canvas_layers,
    plan_canvas_read,
)
from napari_style_transfer.plugin.continuation import continue_choices
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.result_metadata import result_metadata
from napari_style_transfer.plugin.run_request import RunChoices, prepare

PARAMS = dict(size=32, iterations=2, multiscale=False, preview_every=1, device="cpu")
COLOURS = {"green": (0, 1, 0), "magenta": (1, 0, 1), "gray": (1, 1, 1)}


def values(shape, seed, high=1000.0):
    return np.random.default_rng(seed).uniform(0, high, shape).astype(np.float32)


def level(x, limits, gamma=1.0):
    lo, hi = limits
    return np.clip((np.asarray(x, float) - lo) / (hi - lo), 0, 1) ** gamma


def coloured(v, name):
    return v[..., None] * np.array(COLOURS[name], float)


def composite(layers, **kwargs):
    """The canvas of ``layers`` read as a run reads it (full size: no reduction)."""
    _, read = plan_canvas_read(Canvas(tuple(layers)), None, None, kwargs.get("long_side"))
    return read.read()


def test_three_channels_add_up_like_napari_draws_them():
    a, b, c = values((24, 36), 0), values((24, 36), 1), values((24, 36), 2)
    layers = [
        Image(a, colormap="green", blending="additive", contrast_limits=(100, 900), name="a"),
        Image(b, colormap="magenta", blending="additive", contrast_limits=(0, 500), name="b"),
        Image(c, colormap="gray", blending="additive", contrast_limits=(200, 1000), gamma=0.5, name="c"),
    ]
    got = composite(layers)
    expected = np.clip(
        coloured(level(a, (100, 900)), "green")
        + coloured(level(b, (0, 500)), "magenta")
        + coloured(level(c, (200, 1000), 0.5), "gray"),
        0,
        1,
    )
    assert got.shape == (24, 36, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.max() == 1.0  # the sum is clipped


def test_translucent_layers_blend_with_their_opacity():
    a, b = values((20, 30), 3), values((20, 30), 4)
    layers = [
        Image(a, colormap="gray", contrast_limits=(0, 1000), opacity=0.8, name="bottom"),
        Image(b, colormap="green", contrast_limits=(0, 1000), opacity=0.3, name="top"),
    ]
    bottom = coloured(level(a, (0, 1000)), "gray") * 0.8  # over black
    expected = coloured(level(b, (0, 1000)), "green") * 0.3 + bottom * 0.7
    np.testing.assert_allclose(composite(layers), expected, atol=1e-6)


def test_minimum_and_opaque_blending():
    a, b, c = values((20, 30), 5), values((20, 30), 6), values((20, 30), 7)
    base = Image(a, colormap="gray", contrast_limits=(0, 1000), name="base")
    low = Image(b, colormap="magenta", contrast_limits=(0, 1000), blending="minimum", opacity=0.5, name="min")
    expected = np.minimum(coloured(level(a, (0, 1000)), "gray"), coloured(level(b, (0, 1000)), "magenta"))
    np.testing.assert_allclose(composite([base, low]), expected, atol=1e-6)  # opacity plays no part

    cover = Image(
        c, colormap="green", contrast_limits=(0, 1000), blending="opaque", opacity=0.5, name="opaque"
    )
    np.testing.assert_allclose(
        composite([base, low, cover]), coloured(level(c, (0, 1000)), "green"), atol=1e-6
    )


def test_gamma_and_rgb_layers():
    gray = values((20, 30), 8)
    layer = Image(gray, colormap="gray", contrast_limits=(100, 700), gamma=2.2, name="gamma")
    np.testing.assert_allclose(composite([layer]), coloured(level(gray, (100, 700), 2.2), "gray"), atol=1e-6)

    rgb = np.random.default_rng(9).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    photo = Image(rgb, rgb=True, contrast_limits=(20, 200), gamma=0.7, opacity=0.5, name="photo")
    np.testing.assert_allclose(composite([photo]), level(rgb, (20, 200), 0.7) * 0.5, atol=1e-6)


def test_a_scaled_and_moved_layer_is_resampled_onto_the_first_layers_grid():
    base = values((20, 30), 10)
    small = values((8, 12), 11)
    first = Image(base, colormap="gray", contrast_limits=(0, 1000), name="base", scale=(1.0, 1.0))
    kwargs = dict(colormap="green", contrast_limits=(0, 1000), blending="additive", scale=(2.0, 2.0))
    nearest = Image(small, translate=(6.0, -3.0), interpolation2d="nearest", name="nearest", **kwargs)

    rows, cols = np.mgrid[0:20, 0:30].astype(float)  # canvas pixel centres (world = data for the base)
    y, x = (rows - 6.0) / 2.0, (cols + 3.0) / 2.0  # in the small layer's pixels
    inside = (y >= -0.5) & (y < 7.5) & (x >= -0.5) & (x < 11.5)
    picked = small[
        np.clip(np.floor(y + 0.5), 0, 7).astype(int), np.clip(np.floor(x + 0.5), 0, 11).astype(int)
    ]
    expected = (
        coloured(level(base, (0, 1000)), "gray")
        + coloured(level(picked, (0, 1000)), "green") * inside[..., None]
    )
    np.testing.assert_allclose(composite([first, nearest]), np.clip(expected, 0, 1), atol=1e-6)

    linear = Image(small, translate=(6.0, -3.0), interpolation2d="linear", name="linear", **kwargs)
    smooth = map_coordinates(small.astype(float), [y, x], order=1, mode="nearest")
    expected = (
        coloured(level(base, (0, 1000)), "gray")
        + coloured(level(smooth, (0, 1000)), "green") * inside[..., None]
    )
    np.testing.assert_allclose(composite([first, linear]), np.clip(expected, 0, 1), atol=1e-5)


def test_a_large_canvas_is_reduced_by_block_means_of_the_full_composite():
    a, b = values((200, 300), 12), values((100, 150), 13)
    layers = [
        Image(a, colormap="magenta", contrast_limits=(0, 1000), name="a"),
        Image(
            b,
            colormap="green",
            contrast_limits=(0, 1000),
            blending="additive",
            scale=(2, 2),
            translate=(0.5, 0.5),
        ),
    ]
    _, read = plan_canvas_read(Canvas(tuple(layers)), None, None, 32)
    assert read.reduce == 4 and read.shape == (50, 75, 3)
    full = composite(layers)
    np.testing.assert_allclose(read.read(), block_mean(full, 4), atol=1e-6)


def test_a_rotated_or_sheared_layer_is_refused_by_name():
    base = Image(values((20, 30), 14), name="base")
    for kwargs in (dict(rotate=30), dict(shear=[0.3])):
        tilted = Image(values((20, 30), 15), name="tilted", **kwargs)
        with pytest.raises(UserError, match="Layer 'tilted' is rotated or sheared against 'base'"):
            plan_canvas_read(Canvas((base, tilted)), None, None, 32)
    # the same rotation for both: fine (the canvas lies on the first layer's grid)
    plan_canvas_read(
        Canvas((Image(values((20, 30), 0), rotate=30), Image(values((20, 30), 1), rotate=30))), None, None, 32
    )


def test_pixels_are_read_only_in_read_even_for_lazy_layers():
    da = pytest.importorskip("dask.array")
    computed = []

    def record(block):
        computed.append(block.shape)
        return block

    lazy = da.from_array(values((64, 96), 16), chunks=(32, 32)).map_blocks(record, dtype=np.float32)
    layer = Image(lazy, colormap="gray", contrast_limits=(0, 1000), name="lazy")
    top = Image(values((64, 96), 17), colormap="green", blending="additive", contrast_limits=(0, 1000))
    computed.clear()  # napari read what it shows
    request = prepare(RunChoices(Canvas((layer, top)), [(Image(values((32, 32), 18)), 1.0)], PARAMS))
    assert computed == []
    content = request.read().content
    assert len(computed) >= 6 and content.shape == (64, 96, 3)
    expected = coloured(level(np.asarray(lazy), (0, 1000)), "gray") + coloured(
        level(top.data, (0, 1000)), "green"
    )
    np.testing.assert_allclose(content, np.clip(expected, 0, 1), atol=1e-6)


def test_nd_canvas_takes_the_slice_shown_or_every_slice():
    stack = values((3, 20, 30), 19)
    flat = values((20, 30), 20)
    layers = (
        Image(stack, colormap="magenta", contrast_limits=(0, 1000), name="stack"),
        Image(flat, colormap="green", contrast_limits=(0, 1000), blending="additive", name="flat"),
    )

    def expected(i):
        return np.clip(
            coloured(level(stack[i], (0, 1000)), "magenta") + coloured(level(flat, (0, 1000)), "green"), 0, 1
        )

    index, read = plan_canvas_read(Canvas(layers), "slice", (2.0, 0.0, 0.0), None)
    assert index == (2,)
    np.testing.assert_allclose(read.read(), expected(2), atol=1e-6)
    _, read = plan_canvas_read(Canvas(layers), "all", None, None)
    assert read.shape == (3, 20, 30, 3)
    np.testing.assert_allclose(read.read(), np.stack([expected(i) for i in range(3)]), atol=1e-6)


def test_the_canvas_takes_visible_user_images_only():
    shown, hidden, style = (
        Image(values((8, 8), 0)),
        Image(values((8, 8), 1), visible=False),
        Image(values((8, 8), 2)),
    )
    result = Image(values((8, 8), 3), metadata={"napari-style-transfer": "1"})
    assert canvas_layers([shown, hidden, style, result], exclude=[style]) == [shown]
    with pytest.raises(UserError, match="The canvas shows no image layer"):
        prepare(RunChoices(Canvas(()), [(style, 1.0)], PARAMS))


def test_a_canvas_run_records_its_layers_and_continues_from_them():
    a = Image(
        values((24, 32), 21), colormap="green", blending="additive", contrast_limits=(0, 1000), name="a"
    )
    b = Image(
        values((12, 16), 22), colormap="magenta", scale=(2, 2), translate=(0.5, 0.5), name="b", opacity=0.7
    )
    style = Image(
        np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8), rgb=True, name="paint"
    )
    request = prepare(RunChoices(Canvas((a, b)), [(style, 1.0)], {**PARAMS, "size": 24}))
    assert request.content_name == CANVAS_NAME and request.result_name == "canvas stylised"
    assert request.display == {"rgb": True, "contrast_limits": (0.0, 1.0)} and request.rgb
    assert request.content_shape == (24, 32) and request.config.contrast_limits == (0.0, 1.0)
    np.testing.assert_allclose(request.placement((18, 24))["scale"], [24 / 18, 32 / 24])  # over layer 'a'

    meta = result_metadata(request)
    recorded = meta["canvas"]["layers"]
    assert [r["name"] for r in recorded] == ["a", "b"] and meta["content_layer"] == "canvas"
    assert recorded[0]["blending"] == "additive" and recorded[1]["opacity"] == pytest.approx(0.7)
    assert recorded[0]["colormap"]["name"] == "green"
    result = Image(np.zeros((18, 24, 3), np.float32), rgb=True, name="canvas stylised", metadata=meta)

    b.colormap, b.opacity = "gray", 1.0  # Continue draws the canvas as it was recorded
    choices = continue_choices(result, [a, b, style, result], 3)
    assert choices.content.layers == (a, b)
    assert choices.content.looks == (LayerLook.from_record(recorded[0]), LayerLook.from_record(recorded[1]))
    again = prepare(choices)
    np.testing.assert_allclose(again.read().content, request.read().content)

    with pytest.raises(UserError, match="The canvas layer 'b' of this result is gone"):
        continue_choices(result, [a, style, result], 3)
    b.data = values((12, 17), 23)
    with pytest.raises(UserError, match="canvas layer 'b' is no longer the image"):
        continue_choices(result, [a, b, style, result], 3)
