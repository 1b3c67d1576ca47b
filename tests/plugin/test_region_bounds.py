"""A style region's box in its style image's full-resolution pixels (``shapes.region_bounds``): what a
saved result tells the CLI's ``--style-region``, computed from the shapes' outlines on the GUI thread.

Expected boxes are computed here by hand: a Shapes vertex goes to the world by the Shapes layer's
scale and translate, then to the style's data coordinates by the inverse of the style's; data
coordinate v is edge coordinate v + ½ in the CLI's convention (pixel i spans [i, i + 1)).
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Shapes

from napari_style_transfer.engine.inputs import region_mask
from napari_style_transfer.plugin.result_metadata import result_metadata
from napari_style_transfer.plugin.run_request import RunChoices, prepare
from napari_style_transfer.plugin.shapes import plan_style_region

PARAMS = dict(size=32, iterations=2, multiscale=False, preview_every=1, device="cpu")


def by_hand(shapes, style, corner0, corner1):
    """(x0, y0, x1, y1): the Shapes rectangle's corners → world → the style's data coordinates + ½."""
    ends = []
    for corner in (corner0, corner1):
        world = np.asarray(shapes.translate) + np.asarray(shapes.scale) * np.asarray(corner, float)
        ends.append((world - np.asarray(style.translate)) / np.asarray(style.scale) + 0.5)
    (y0, x0), (y1, x1) = np.minimum(*ends), np.maximum(*ends)
    return x0, y0, x1, y1


def corners(z, low, high):
    """A rectangle's four vertices at data z (what napari wants of an nD rectangle)."""
    (y0, x0), (y1, x1) = low, high
    return np.array([[z, y0, x0], [z, y0, x1], [z, y1, x1], [z, y1, x0]], float)


@pytest.fixture
def style():
    data = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    return Image(data, rgb=True, scale=(0.5, 0.25), translate=(3.0, 1.0), name="paint")


def test_a_rectangle_over_a_scaled_and_translated_style_gives_its_box_in_the_styles_pixels(style):
    region = Shapes(scale=(2.0, 2.0), translate=(-1.0, 0.0), name="area")
    box = np.array([[2.1, 0.6], [7.3, 4.9]])
    region.add_rectangles(box)
    plan = plan_style_region(region, style, (40, 60))
    # world rows 3.2–13.6, columns 1.2–9.8 → style rows 0.4–21.2, columns 0.8–35.2 → edges + ½
    assert plan.bounds == pytest.approx((1.3, 0.9, 35.7, 21.7)) and plan.exact
    assert plan.bounds == pytest.approx(by_hand(region, style, *box))
    # the CLI's --style-region with this box selects exactly the pixels the widget's region does
    np.testing.assert_array_equal(region_mask(plan.bounds, (40, 60)), plan.read())

    request = prepare(
        RunChoices(Image(np.zeros((24, 24)), name="photo"), [(style, 1.0)], PARAMS, style_regions=[region])
    )
    meta = result_metadata(request)
    assert meta["style_regions"] == ["area"]
    assert meta["style_region_bounds"] == [{"bounds": pytest.approx([1.3, 0.9, 35.7, 21.7]), "exact": True}]


def test_the_box_is_clipped_to_the_image_and_says_when_the_region_is_not_that_box(style):
    over = Shapes([np.array([[-10.0, 10.0], [100.0, 100.0]])], shape_type="rectangle", name="over")
    plan = plan_style_region(over, style, (40, 60))
    # world rows −10–100 and columns 10–100 → style rows cut to 0–40, columns 36.5 (+½) to 60
    assert plan.bounds == pytest.approx((36.5, 0.0, 60.0, 40.0)) and plan.exact

    two = Shapes(name="two")
    two.add_rectangles(np.array([[4.0, 2.0], [6.0, 4.0]]))
    two.add_ellipses(np.array([[10.0, 8.0], [2.0, 2.0]]))  # centre (10, 8), radii 2: world rows 8–12
    plan = plan_style_region(two, style, (40, 60))
    x0, y0, _, _ = by_hand(two, style, (4.0, 2.0), (6.0, 4.0))
    _, _, x1, y1 = by_hand(two, style, (8.0, 6.0), (12.0, 10.0))
    assert plan.bounds == pytest.approx((x0, y0, x1, y1), abs=0.01) and not plan.exact  # polygon

    turned = Shapes([np.array([[4.0, 6.0], [8.0, 10.0], [12.0, 6.0], [8.0, 2.0]])], shape_type="rectangle")
    assert not plan_style_region(turned, style, (40, 60)).exact  # a diamond: its box is more than it


def test_a_pyramid_style_gives_its_full_resolution_pixels():
    rng = np.random.default_rng(1)
    full = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    levels = [full, full[::2, ::2], full[::4, ::4]]
    style = Image(levels, multiscale=True, rgb=True, scale=(0.5, 0.5), translate=(2.0, -1.0), name="slide")
    region = Shapes(name="area")
    box = np.array([[5.3, 4.1], [20.7, 30.3]])  # world coordinates
    region.add_rectangles(box)
    plan = plan_style_region(region, style, (20, 30))  # the run reads the coarsest level
    assert plan.size == (20, 30)
    # world rows 5.3–20.7 → full-res rows 6.6–37.4; columns 4.1–30.3 → 10.2–62.6; then + ½
    assert plan.bounds == pytest.approx((10.7, 7.1, 63.1, 37.9)) and plan.exact
    assert plan.bounds == pytest.approx(by_hand(region, style, *box))
    np.testing.assert_array_equal(
        region_mask(plan.bounds, (80, 120)), plan_style_region(region, style, (80, 120)).read()
    )


def test_an_nd_region_takes_the_box_of_the_shapes_in_the_slice_shown(style):
    region = Shapes(ndim=3, name="stack area")
    region.add_rectangles(corners(0, (3.2, 1.2), (13.6, 9.8)))
    region.add_rectangles(corners(1, (8.2, 2.2), (15.6, 4.8)))
    at_one = plan_style_region(region, style, (40, 60), (1.0, 0.0, 0.0))
    # world rows 8.2–15.6, columns 2.2–4.8 → style rows 10.4–25.2, columns 4.8–15.2 → + ½
    assert at_one.bounds == pytest.approx((5.3, 10.9, 15.7, 25.7)) and at_one.exact
    at_zero = plan_style_region(region, style, (40, 60), (0.0, 0.0, 0.0))
    assert at_zero.bounds == pytest.approx((1.3, 0.9, 35.7, 21.7)) and at_zero.exact
