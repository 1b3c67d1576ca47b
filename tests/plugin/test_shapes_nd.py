"""nD Shapes layers as masks and style regions (plugin/shapes.py, shape_slices.py, run_masks.py;
Qt-free): a run takes the shapes napari shows in the slice, as the user sees them.

The Shapes layer here has a z spacing of 2 world units and the stack one of 1, so a shape at data
z = 1 lies over stack slice 2: the slice is found through world coordinates, not by index. Shape
edges lie off pixel centres, so the expected masks are exact (ellipses: away from the outline).
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Shapes

from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.run_request import RunChoices, prepare
from napari_style_transfer.plugin.shapes import plan_shapes_mask, plan_style_region

PARAMS = dict(size=32, iterations=2, multiscale=False, preview_every=1, device="cpu")


def box(z, corner0, corner1):
    """The four corners of an axis-aligned rectangle in the plane at data ``z``."""
    (y0, x0), (y1, x1) = corner0, corner1
    return np.array([[z, y0, x0], [z, y0, x1], [z, y1, x1], [z, y1, x0]], float)


def inside(hw, corner0, corner1):
    rows, cols = np.mgrid[0 : hw[0], 0 : hw[1]]
    (y0, x0), (y1, x1) = corner0, corner1
    return (rows > y0) & (rows < y1) & (cols > x0) & (cols < x1)


LEFT = ((2.3, 1.4), (12.6, 9.7))  # in z = 0
RIGHT = ((4.2, 14.3), (16.8, 26.6))  # in z = 1 (world z = 2)
CENTRE, RADII = (10.1, 20.2), (3.3, 4.4)  # an ellipse in z = 1, over RIGHT


@pytest.fixture
def stack():
    return Image(np.random.default_rng(0).random((3, 20, 30)).astype(np.float32), name="stack")


@pytest.fixture
def shapes():
    """Shapes in two planes, a world z spacing of 2: shape 1 over slice 0, shapes 2 and 3 over slice 2."""
    layer = Shapes(ndim=3, scale=(2.0, 1.0, 1.0), name="regions")
    layer.add_rectangles(box(0, *LEFT))
    layer.add_rectangles(box(1, *RIGHT))
    (cy, cx), (ry, rx) = CENTRE, RADII
    layer.add_ellipses(box(1, (cy - ry, cx - rx), (cy + ry, cx + rx)))
    return layer


def ellipse_level(hw):
    rows, cols = np.mgrid[0 : hw[0], 0 : hw[1]]
    return ((rows - CENTRE[0]) / RADII[0]) ** 2 + ((cols - CENTRE[1]) / RADII[1]) ** 2


def slice_two_labels(hw=(20, 30)):
    expected = np.zeros(hw, np.int32)
    expected[inside(hw, *RIGHT)] = 2
    expected[ellipse_level(hw) < 1] = 3
    return expected


def test_a_slice_run_takes_only_the_shapes_of_the_slice_shown(stack, shapes):
    style = Image(np.random.default_rng(1).random((32, 32)).astype(np.float32), name="style")
    choices = RunChoices(
        stack, [(style, 1.0)], PARAMS, stack="slice", point=(2.0, 0.0, 0.0), mask_layer=shapes
    )
    request = prepare(RunChoices(**{**vars(choices), "label_styles": {2: 0, 3: 0}}))
    assert request.slice_index == (2,)
    labels = request.read().guidance.content_mask
    clear = np.abs(ellipse_level((20, 30)) - 1) > 0.15
    assert labels.shape == (20, 30) and 1 not in labels  # the rectangle of slice 0 is not shown here
    np.testing.assert_array_equal(labels[clear], slice_two_labels()[clear])

    at_zero = plan_shapes_mask(shapes, stack, (20, 30), (0.0, 0.0, 0.0)).read()
    np.testing.assert_array_equal(at_zero, inside((20, 30), *LEFT).astype(np.int32))  # shape 1 keeps label 1

    with pytest.raises(UserError, match="'regions' has no shapes in the slice shown; draw rectangles"):
        prepare(RunChoices(**{**vars(choices), "point": (1.0, 0.0, 0.0)}))
    with pytest.raises(UserError, match="None of the shapes of 'regions' that are mapped to a style covers"):
        prepare(RunChoices(**{**vars(choices), "label_styles": {1: 0}})).read()  # shape 1 is not in slice 2


def test_a_path_in_another_slice_does_not_block_this_slice(stack, shapes):
    shapes.add_paths(np.array([[0.0, 1.0, 1.0], [0.0, 5.0, 9.0]]))
    labels = plan_shapes_mask(shapes, stack, (20, 30), (2.0, 0.0, 0.0)).read()
    assert set(np.unique(labels)) == {0, 2, 3}
    with pytest.raises(UserError, match="Shape 4 of 'regions' is a path"):
        plan_shapes_mask(shapes, stack, (20, 30), (0.0, 0.0, 0.0))


def test_an_all_slices_run_gets_one_label_image_per_slice(stack, shapes):
    style = Image(np.random.default_rng(1).random((32, 32)).astype(np.float32), name="style")
    choices = RunChoices(stack, [(style, 1.0)], PARAMS, stack="all", point=(1.0, 0.0, 0.0), mask_layer=shapes)
    request = prepare(RunChoices(**{**vars(choices), "label_styles": {1: 0, 3: 0}}))
    labels = request.read().guidance.content_mask
    assert labels.shape == (3, 20, 30) and labels.dtype == np.int32
    np.testing.assert_array_equal(labels[0], inside((20, 30), *LEFT).astype(np.int32))
    assert not labels[1].any()  # no shape lies in slice 1: it keeps the content
    clear = np.abs(ellipse_level((20, 30)) - 1) > 0.15
    np.testing.assert_array_equal(labels[2][clear], slice_two_labels()[clear])
    assert request.guidance(labels).label_styles == {1: 0, 3: 0}

    flat = Shapes([box(0, *LEFT)[:, 1:]], shape_type="rectangle", name="flat")  # 2D: one mask for every slice
    plan = plan_shapes_mask(flat, stack, (20, 30), (1.0, 0.0, 0.0), all_slices=True)
    np.testing.assert_array_equal(plan.read(), inside((20, 30), *LEFT).astype(np.int32))

    elsewhere = Shapes(ndim=3, scale=(2.0, 1.0, 1.0), name="elsewhere")
    elsewhere.add_rectangles(box(5, *LEFT))  # world z = 10: beyond the stack's 3 slices
    with pytest.raises(UserError, match="None of the shapes of 'elsewhere' lies in a slice of 'stack'"):
        plan_shapes_mask(elsewhere, stack, (20, 30), (1.0, 0.0, 0.0), all_slices=True)


def test_a_style_region_takes_the_shapes_of_the_slice_shown(shapes):
    paint = Image(np.zeros((20, 30, 3), np.uint8), rgb=True, name="paint")
    mask = plan_style_region(shapes, paint, (20, 30), (0.0, 0.0, 0.0)).read()
    np.testing.assert_array_equal(mask, inside((20, 30), *LEFT))
    mask = plan_style_region(shapes, paint, (20, 30), (2.0, 5.0, 5.0)).read()
    clear = np.abs(ellipse_level((20, 30)) - 1) > 0.15
    np.testing.assert_array_equal(mask[clear], (slice_two_labels() != 0)[clear])
    assert not mask[inside((20, 30), *LEFT) & ~inside((20, 30), *RIGHT)].any()
    with pytest.raises(UserError, match="'regions' has no shapes in the slice shown"):
        plan_style_region(shapes, paint, (20, 30), (4.0, 0.0, 0.0))
