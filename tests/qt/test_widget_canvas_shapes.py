"""The dock widget with the canvas as content, style regions and masks from Shapes layers.

Real viewer, real layers, the real engine on tiny images (output 32 px, 2-3 iterations, one
scale); a spy on the worker's ``run_iter`` shows what the engine was given.
"""

from __future__ import annotations

import numpy as np
from widget_helpers import open_widget, wait_until_done, warnings_among

from napari_style_transfer.plugin.composite import CANVAS, CANVAS_LABEL

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")


def results(viewer):
    return [layer for layer in viewer.layers if "stylised" in layer.name]


def rgb(size=32, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def level(x, lo, hi):
    return np.clip((np.asarray(x, float) - lo) / (hi - lo), 0, 1)


def add_channels(viewer):
    """Three channels of a 'micrograph' as three additive layers (green, magenta, gray)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:40]
    data = [np.sin(xx / 4 + i) * 400 + 500 + rng.normal(0, 20, (24, 40)) for i in range(3)]
    kwargs = dict(blending="additive", scale=(2.0, 2.0), translate=(5.0, -3.0))
    return [
        viewer.add_image(data[0], name="nuclei", colormap="green", contrast_limits=(100, 900), **kwargs),
        viewer.add_image(data[1], name="actin", colormap="magenta", contrast_limits=(0, 1000), **kwargs),
        viewer.add_image(data[2], name="membrane", colormap="gray", contrast_limits=(200, 1100), **kwargs),
    ]


def test_a_canvas_run_and_continue_from_its_result(viewer, qtbot, seen, notes):
    nuclei, actin, membrane = add_channels(viewer)
    style = viewer.add_image(rgb(), name="paint style", rgb=True)
    hidden = viewer.add_image(np.ones((24, 40)), name="hidden", visible=False)
    widget = open_widget(viewer, **FAST)
    assert widget.content_layer.native.itemText(widget.content_layer.native.count() - 1) == CANVAS_LABEL
    widget.content_layer.value = CANVAS
    assert [layer for layer, _ in widget.styles] == [style]
    assert widget.run()
    wait_until_done(qtbot, widget)
    assert warnings_among(notes) == []

    content = seen["args"][0]
    expected = np.zeros((24, 40, 3))
    for layer, colour in ((nuclei, (0, 1, 0)), (actin, (1, 0, 1)), (membrane, (1, 1, 1))):
        expected += level(layer.data, *layer.contrast_limits)[..., None] * np.array(colour)
    np.testing.assert_allclose(content, np.clip(expected, 0, 1), atol=1e-6)  # the style and 'hidden' left out

    (result,) = results(viewer)
    meta = result.metadata
    assert result.name == "canvas stylised" and meta["content_layer"] == "canvas"
    assert [r["name"] for r in meta["canvas"]["layers"]] == ["nuclei", "actin", "membrane"]
    assert [r["blending"] for r in meta["canvas"]["layers"]] == ["additive"] * 3
    assert meta["canvas"]["layers"][1]["colormap"]["name"] == "magenta"
    assert result.data.shape == (19, 32, 3) and result.data.dtype == np.float32 and result.rgb
    # laid over the first layer: the same outer edges in world coordinates
    np.testing.assert_allclose(nuclei.data_to_world((-0.5, -0.5)), result.data_to_world((-0.5, -0.5)))
    np.testing.assert_allclose(nuclei.data_to_world((23.5, 39.5)), result.data_to_world((18.5, 31.5)))
    assert hidden.name not in str(meta["canvas"])

    viewer.layers.selection.active = result
    actin.opacity = 0.2  # Continue draws the canvas as the result recorded it
    assert widget.continue_run(iterations=2)
    wait_until_done(qtbot, widget)
    assert warnings_among(notes) == []
    np.testing.assert_allclose(seen["args"][0], content)
    continued = results(viewer)[-1]
    assert (
        continued.name == "canvas stylised +2" and continued.metadata["continued_from"] == "canvas stylised"
    )
    assert continued.metadata["canvas"] == meta["canvas"]

    viewer.layers.remove(membrane)
    viewer.layers.selection.active = result
    assert not widget.continue_run(iterations=2)
    assert "The canvas layer 'membrane' of this result is gone" in str(warnings_among(notes)[-1].message)


def test_a_style_region_from_a_shapes_layer(viewer, qtbot, seen, notes):
    viewer.add_image(rgb(seed=3), name="cat", rgb=True)
    style = viewer.add_image(rgb(48, seed=4), name="micrograph style", rgb=True, scale=(0.5, 0.5))
    widget = open_widget(viewer, **FAST, style_scale=1.0)
    row = widget.style_rows[0]
    assert row.region_row.native.isHidden()  # no Shapes layer yet
    area = viewer.add_shapes(name="texture area")
    assert not row.region_row.native.isHidden()
    row.region.value = area
    assert widget.run() is False  # no shapes yet: one sentence
    assert "'texture area' has no shapes" in str(warnings_among(notes)[-1].message)

    area.add_rectangles(np.array([[2.1, 4.1], [12.9, 20.9]]))  # world: style pixels 5-25 × 9-41
    assert widget.run()
    wait_until_done(qtbot, widget)
    (region,) = seen["guidance"].style_masks
    assert region.shape == (48, 48) and region.dtype == bool
    rows, cols = np.nonzero(region)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 25, 9, 41)
    assert region.sum() == 21 * 33
    (result,) = results(viewer)
    assert result.metadata["style_regions"] == ["texture area"]
    assert style.name in result.metadata["style_layers"]


def test_a_shapes_mask_styles_one_shape_and_keeps_the_content_elsewhere(viewer, qtbot, seen):
    content = np.full((32, 32, 3), 128, np.uint8)
    content[..., 0] = np.linspace(40, 220, 32).astype(np.uint8)[None, :]
    cat = viewer.add_image(content, name="cat", rgb=True)
    stripes = (((np.mgrid[0:32, 0:32][1] // 4) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    viewer.add_image(stripes, name="stripes style", rgb=True)
    shapes = viewer.add_shapes(name="regions", scale=(2.0, 2.0))
    shapes.add_rectangles(np.array([[-1.0, 7.8], [17.0, 17.0]]))  # the content's columns 16-31
    widget = open_widget(viewer, **{**FAST, "iterations": 3})
    widget.mask_layer.value = shapes
    shapes.add_ellipses(np.array([[4.0, 2.0], [2.0, 1.5]]))  # the table follows the shapes
    names = [w.label for w in widget.label_table]
    assert names == ["outside the shapes", "shape 1 (rectangle)", "shape 2 (ellipse)"]
    assert widget.label_styles == {1: 0, 2: 0}  # shapes take the first style, the rest keeps the content
    widget.set_label_style(2, None)
    assert widget.label_styles == {1: 0}
    assert widget.run()
    wait_until_done(qtbot, widget)

    labels = seen["guidance"].content_mask
    assert labels.shape == (32, 32) and set(np.unique(labels)) == {0, 1, 2}
    assert (labels[:, 16:] == 1).all() and (labels[:, :14] != 1).all()
    assert seen["guidance"].label_styles == {1: 0}
    (result,) = results(viewer)
    diff = np.abs(result.data.astype(float) - cat.data.astype(float)).mean(-1)
    assert diff[:, :12].mean() < 3  # outside the shape styled (beyond the feathered edge)
    assert diff[:, 20:].mean() > 3 * max(diff[:, :12].mean(), 0.5)
    assert result.metadata["mask_layer"] == "regions" and result.metadata["label_styles"] == {"1": 0}
