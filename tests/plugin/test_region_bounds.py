"""A style region's box in its style image's full-resolution pixels (``shapes.region_bounds``): what a
saved result tells the CLI's ``--style-region``, computed from the shapes' outlines on the GUI thread.

Expected boxes are computed here by hand: a Shapes vertex goes to the world by the Shapes layer's
scale and translate, then to the style's data coordinates by the inverse of the style's; the box holds the pixels whose centres lie in that
extent, edges included (as the widget's rasteriser takes them), in the CLI's convention (pixel i
spans [i, i + 1)): from ⌈low⌉ to ⌊high⌋ + 1.
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
    """(x0, y0, x1, y1): the Shapes rectangle's corners → world → the style's data coordinates →
    the first pixel centre inside and one past the last."""
    ends = []
    for corner in (corner0, corner1):
        world = np.asarray(shapes.translate) + np.asarray(shapes.scale) * np.asarray(corner, float)
        ends.append((world - np.asarray(style.translate)) / np.asarray(style.scale))
    (y0, x0), (y1, x1) = np.ceil(np.minimum(*ends)), np.floor(np.maximum(*ends)) + 1
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
    # world rows 3.2–13.6, columns 1.2–9.8 → style rows 0.4–21.2, columns 0.8–35.2 → centres 1–35, 1–21
    assert plan.bounds == pytest.approx((1.0, 1.0, 36.0, 22.0)) and plan.exact
    assert plan.bounds == pytest.approx(by_hand(region, style, *box))
    # the CLI's --style-region with this box selects exactly the pixels the widget's region does
    np.testing.assert_array_equal(region_mask(plan.bounds, (40, 60)), plan.read())

    request = prepare(
        RunChoices(Image(np.zeros((24, 24)), name="photo"), [(style, 1.0)], PARAMS, style_regions=[region])
    )
    meta = result_metadata(request)
    assert meta["style_regions"] == ["area"]
    assert meta["style_region_bounds"] == [{"bounds": pytest.approx([1.0, 1.0, 36.0, 22.0]), "exact": True}]


def test_a_rectangle_with_its_edges_on_pixel_centres_gives_the_pixels_the_widget_takes():
    style = Image(np.zeros((100, 120, 3), np.uint8), rgb=True, name="paint")
    region = Shapes(name="area")
    region.add_rectangles(np.array([[10.0, 10.0], [60.0, 80.0]]))  # centres 10–60 and 10–80, edges included
    plan = plan_style_region(region, style, (100, 120))
    assert plan.bounds == (10.0, 10.0, 81.0, 61.0) and plan.exact
    taken = plan.read()
    assert taken.sum() == 51 * 71  # what the widget's region covers
    np.testing.assert_array_equal(region_mask(plan.bounds, (100, 120)), taken)


def test_the_box_is_clipped_to_the_image_and_says_when_the_region_is_not_that_box(style):
    over = Shapes([np.array([[-10.0, 10.0], [100.0, 100.0]])], shape_type="rectangle", name="over")
    plan = plan_style_region(over, style, (40, 60))
    # world rows −10–100 and columns 10–100 → style rows cut to 0–40, columns from centre 36 to 60
    assert plan.bounds == pytest.approx((36.0, 0.0, 60.0, 40.0)) and plan.exact

    two = Shapes(name="two")
    two.add_rectangles(np.array([[4.0, 2.0], [6.0, 4.0]]))
    two.add_ellipses(np.array([[10.0, 8.0], [2.0, 2.0]]))  # centre (10, 8), radii 2: world rows 8–12
    plan = plan_style_region(two, style, (40, 60))
    x0, y0, _, _ = by_hand(two, style, (4.0, 2.0), (6.0, 4.0))
    _, _, x1, y1 = by_hand(two, style, (8.0, 6.0), (12.0, 10.0))
    assert plan.bounds == pytest.approx((x0, y0, x1, y1), abs=1.0) and not plan.exact  # a polygon's box
    box = region_mask(plan.bounds, (40, 60))
    assert not (plan.read() & ~box).any()  # the box holds every pixel the shapes take

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
    # world rows 5.3–20.7 → full-res rows 6.6–37.4; columns 4.1–30.3 → 10.2–62.6 → centres 7–37, 11–62
    assert plan.bounds == pytest.approx((11.0, 7.0, 63.0, 38.0)) and plan.exact
    assert plan.bounds == pytest.approx(by_hand(region, style, *box))
    np.testing.assert_array_equal(
        region_mask(plan.bounds, (80, 120)), plan_style_region(region, style, (80, 120)).read()
    )


def test_an_nd_region_takes_the_box_of_the_shapes_in_the_slice_shown(style):
    region = Shapes(ndim=3, name="stack area")
    region.add_rectangles(corners(0, (3.2, 1.2), (13.6, 9.8)))
    region.add_rectangles(corners(1, (8.2, 2.2), (15.6, 4.8)))
    at_one = plan_style_region(region, style, (40, 60), (1.0, 0.0, 0.0))
    # world rows 8.2–15.6, columns 2.2–4.8 → style rows 10.4–25.2, columns 4.8–15.2 → centres 11–25, 5–15
    assert at_one.bounds == pytest.approx((5.0, 11.0, 16.0, 26.0)) and at_one.exact
    at_zero = plan_style_region(region, style, (40, 60), (0.0, 0.0, 0.0))
    assert at_zero.bounds == pytest.approx((1.0, 1.0, 36.0, 22.0)) and at_zero.exact
