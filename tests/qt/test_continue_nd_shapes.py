"""Continue takes an nD Shapes mask's and style region's shapes from the slice the continued run took
them from (its recorded world point), even after the viewer has moved to another slice.

Real viewer, real layers, the real engine on a tiny 2D content (32 × 32) under 3D Shapes layers; a
spy on the worker's ``run_iter`` shows the label image and style region the engine was given.
"""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import halves, open_widget, plane_box, wait_until_done, warnings_among

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu", style_scale=1.0)
LEFT, RIGHT = halves(32)


def test_continue_takes_the_shapes_of_the_runs_slice_after_the_viewer_moved(viewer, qtbot, seen, notes):
    rng = np.random.default_rng(0)
    content = viewer.add_image(rng.integers(0, 256, (32, 32), dtype=np.uint8), name="photo")
    style = viewer.add_image(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), name="paint", rgb=True)
    mask = viewer.add_shapes(ndim=3, scale=(2.0, 1.0, 1.0), name="where")  # data z 1 = world z 2
    mask.add_rectangles(plane_box(0, (0, 15)))  # shape 1 on slice 0, the left half
    mask.add_rectangles(plane_box(1, (16, 31)))  # shape 2 on slice 2, the right half
    area = viewer.add_shapes(ndim=3, scale=(2.0, 1.0, 1.0), name="area")
    area.add_rectangles(plane_box(0, (16, 31)))  # the style's right half on slice 0
    area.add_rectangles(plane_box(1, (0, 15)))  # its left half on slice 2
    widget = open_widget(viewer, **FAST)
    widget.content_layer.value = content
    assert [layer for layer, _ in widget.styles] == [style]
    widget.style_rows[0].region.value = area
    widget.mask_layer.value = mask
    assert widget.label_styles == {1: 0, 2: 0}

    viewer.dims.set_current_step(0, 2)
    assert widget.run()
    wait_until_done(qtbot, widget)
    assert warnings_among(notes) == []
    np.testing.assert_array_equal(seen["guidance"].content_mask, np.where(RIGHT, 2, 0))
    assert seen["guidance"].label_styles == {2: 0}
    np.testing.assert_array_equal(seen["guidance"].style_masks[0], LEFT)
    (result,) = [layer for layer in viewer.layers if layer.name == "photo stylised"]
    assert result.metadata["world_point"] == pytest.approx(list(viewer.dims.point))
    assert result.metadata["style_region_bounds"] == [{"bounds": [0.0, 0.0, 16.0, 32.0], "exact": True}]

    viewer.dims.set_current_step(0, 0)  # the viewer now shows shape 1 and the style's right half
    seen.clear()
    viewer.layers.selection.active = result
    assert widget.continue_run(iterations=2)
    wait_until_done(qtbot, widget)
    assert warnings_among(notes) == []
    np.testing.assert_array_equal(seen["guidance"].content_mask, np.where(RIGHT, 2, 0))  # the run's slice
    assert seen["guidance"].label_styles == {2: 0}
    np.testing.assert_array_equal(seen["guidance"].style_masks[0], LEFT)
    continued = [layer for layer in viewer.layers if layer.name == "photo stylised +2"][-1]
    assert continued.metadata["world_point"] == result.metadata["world_point"]
