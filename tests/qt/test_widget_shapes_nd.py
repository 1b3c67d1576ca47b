"""The dock widget with a 3D Shapes layer as the mask of a stack: the run takes the shapes napari
shows in the slice (current slice), or each slice's own shapes (all slices).

Real viewer, real layers, the real engine on a tiny (3, 32, 32) stack; a spy on the worker's
``run_iter`` shows the label image the engine was given.
"""

from __future__ import annotations

import numpy as np
from widget_helpers import halves, open_widget, plane_box, wait_until_done, warnings_among

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")
LEFT, RIGHT = halves(32)


def test_a_3d_shapes_mask_gives_the_shapes_of_the_slice_or_of_each_slice(viewer, qtbot, seen, notes):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    stack = viewer.add_image(data, name="stack")
    viewer.add_image(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), name="paint style", rgb=True)
    shapes = viewer.add_shapes(ndim=3, scale=(2.0, 1.0, 1.0), name="regions")  # data z 1 = world z 2
    shapes.add_rectangles(plane_box(0, (0, 15)))  # shape 1 over slice 0, the left half
    shapes.add_rectangles(plane_box(1, (16, 31)))  # shape 2 over slice 2, the right half
    widget = open_widget(viewer, **FAST)
    widget.content_layer.value = stack
    widget.mask_layer.value = shapes
    assert widget.label_styles == {1: 0, 2: 0}

    viewer.dims.set_current_step(0, 2)
    assert list(np.flatnonzero(shapes._data_view._displayed)) == [1]  # napari itself shows shape 2 only
    widget.stack_mode.value = "slice"
    assert widget.run()
    wait_until_done(qtbot, widget)
    assert warnings_among(notes) == []
    labels = seen["guidance"].content_mask
    np.testing.assert_array_equal(labels, np.where(RIGHT, 2, 0))
    assert seen["guidance"].label_styles == {2: 0}

    widget.stack_mode.value = "all"
    assert widget.run()
    wait_until_done(qtbot, widget)
    assert warnings_among(notes) == []
    labels = seen["guidance"].content_mask
    assert labels.shape == (3, 32, 32)
    np.testing.assert_array_equal(labels[0], np.where(LEFT, 1, 0))
    np.testing.assert_array_equal(labels[1], 0)  # no shape in slice 1
    np.testing.assert_array_equal(labels[2], np.where(RIGHT, 2, 0))
    result = [layer for layer in viewer.layers if layer.name == "stack stylised"][-1]
    assert result.data.shape == (3, 32, 32)
    np.testing.assert_array_equal(result.data[1], data[1])  # slice 1 keeps the content
    assert np.abs(result.data[0, :, 20:].astype(float) - data[0, :, 20:]).max() <= 1  # outside shape 1
    assert not np.array_equal(result.data[0, :, :12], data[0, :, :12])  # inside it: stylised

    viewer.dims.set_current_step(0, 1)
    widget.stack_mode.value = "slice"
    assert widget.run() is False
    assert "'regions' has no shapes in the slice shown" in str(warnings_among(notes)[-1].message)
