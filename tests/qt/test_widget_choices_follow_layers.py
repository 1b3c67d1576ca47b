"""The widget's layer choices follow the layers as a user edits them (found in a user test):
a renamed layer stays chosen (content, style, region, mask), and deleting a shape of a Shapes
mask keeps every other shape's style choice with its shape.

Real viewer, real layers, the dock widget opened through the plugin's manifest.
"""

from __future__ import annotations

import numpy as np
from widget_helpers import open_widget


def test_renamed_layers_stay_chosen_with_their_mask_table(viewer, qtbot):
    rng = np.random.default_rng(0)
    content = viewer.add_image(rng.integers(0, 256, (40, 40), dtype=np.uint8), name="photo")
    style = viewer.add_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), name="paint", rgb=True)
    viewer.add_image(rng.integers(0, 256, (40, 40), dtype=np.uint8), name="other")
    area = viewer.add_shapes(name="area")
    area.add_rectangles(np.array([[2.0, 2.0], [20.0, 20.0]]))
    mask = viewer.add_shapes(name="where")
    mask.add_rectangles(np.array([[0.0, 0.0], [10.0, 39.0]]))
    mask.add_rectangles(np.array([[20.0, 0.0], [30.0, 39.0]]))
    widget = open_widget(viewer)
    widget.content_layer.value = content
    row = widget.style_rows[0]
    row.layer.value, row.region.value, widget.mask_layer.value = style, area, mask
    widget.set_label_style(1, None)
    widget.set_label_style(2, 0)
    for layer, name in (
        (mask, "where (renamed)"),
        (area, "area 2"),
        (content, "photo 2"),
        (style, "paint 2"),
    ):
        layer.name = name
        qtbot.wait(10)
        assert widget.content_layer.value is content and row.layer.value is style
        assert row.region.value is area and widget.mask_layer.value is mask, name
        assert widget.label_styles == {2: 0}, name
    labels = viewer.add_labels(np.zeros((40, 40), np.int32), name="cells")
    widget.mask_layer.value = labels
    labels.name = "cells 2"
    qtbot.wait(10)
    assert widget.mask_layer.value is labels


def test_deleting_a_shape_keeps_each_other_shapes_choice(viewer, qtbot):
    rng = np.random.default_rng(1)
    content = viewer.add_image(rng.integers(0, 256, (40, 40), dtype=np.uint8), name="photo")
    first = viewer.add_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), name="paint", rgb=True)
    second = viewer.add_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), name="ink", rgb=True)
    mask = viewer.add_shapes(name="bands")
    for top in (0.0, 12.0, 24.0, 32.0):
        mask.add_rectangles(np.array([[top, 0.0], [top + 6.0, 39.0]]))
    widget = open_widget(viewer)
    widget.content_layer.value = content
    widget.style_rows[0].layer.value = first
    widget.add_style(second)
    widget.mask_layer.value = mask
    for label, style in ((1, 0), (2, None), (3, 1), (4, 0)):
        widget.set_label_style(label, style)
    mask.selected_data = {0, 2}  # shapes 1 and 3
    mask.remove_selected()
    qtbot.wait(10)
    # shape 2 (keep content) is now shape 1, shape 4 (style 1) is now shape 2
    assert [w.label for w in widget.label_table] == [
        "outside the shapes",
        "shape 1 (rectangle)",
        "shape 2 (rectangle)",
    ]
    assert widget.label_styles == {2: 0}


def test_removing_a_style_row_gives_its_labels_the_content_and_keeps_the_others(viewer, qtbot):
    rng = np.random.default_rng(2)
    content = viewer.add_image(rng.integers(0, 256, (40, 40), dtype=np.uint8), name="photo")
    styles = [
        viewer.add_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), name=name, rgb=True)
        for name in ("paint", "ink", "chalk")
    ]
    labels = np.zeros((40, 40), np.int32)
    labels[:10], labels[10:20], labels[20:30] = 1, 2, 3
    widget = open_widget(viewer)
    widget.content_layer.value = content
    widget.style_rows[0].layer.value = styles[0]
    widget.add_style(styles[1])
    widget.add_style(styles[2])
    widget.mask_layer.value = viewer.add_labels(labels, name="cells")
    for label, style in ((1, 0), (2, 1), (3, 2)):
        widget.set_label_style(label, style)
    widget.style_rows.remove(widget.style_rows[1])  # "ink": label 2's style
    qtbot.wait(10)
    assert [row.layer.value.name for row in widget.style_rows] == ["paint", "chalk"]
    assert widget.label_styles == {1: 0, 3: 1}  # label 2 keeps the content; label 3 still "chalk"


def test_the_region_choice_is_offered_for_layer_styles_only(viewer, qtbot):
    rng = np.random.default_rng(3)
    viewer.add_image(rng.integers(0, 256, (40, 40), dtype=np.uint8), name="photo")
    paint = viewer.add_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), name="paint", rgb=True)
    viewer.add_shapes(name="area").add_rectangles(np.array([[2.0, 2.0], [20.0, 20.0]]))
    widget = open_widget(viewer)
    row = widget.style_rows[0]
    row.layer.value = paint
    assert not row.region_row.native.isHidden()
    row.use_gallery("gravel")  # a gallery style has no layer to draw its region on
    assert row.region_row.native.isHidden()
    row.layer.value = paint
    assert not row.region_row.native.isHidden()
