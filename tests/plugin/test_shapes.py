"""Shapes layers as regions (plugin/shapes.py, Qt-free): masks on the content, style regions on a style.

Expected masks are computed here from world coordinates: a pixel belongs to a shape when its
centre, mapped to the world by its layer's scale and translate, lies inside the shape mapped the
same way by the Shapes layer's. Shape edges are placed off pixel centres, so no pixel is ambiguous
(ellipses: pixels close to the outline are left out of the comparison).
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels, Shapes

from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.label_masks import plan_mask_read
from napari_style_transfer.plugin.result_metadata import result_metadata
from napari_style_transfer.plugin.run_request import RunChoices, prepare
from napari_style_transfer.plugin.shapes import (
    ShapesMaskRead,
    plan_shapes_mask,
    plan_style_region,
    shape_labels,
)
from napari_style_transfer.plugin.sources import GalleryChoice

PARAMS = dict(size=32, iterations=2, multiscale=False, preview_every=1, device="cpu")


def centres(layer, hw):
    """World (y, x) of each pixel centre of a 2D layer with scale and translate."""
    rows, cols = np.mgrid[0 : hw[0], 0 : hw[1]].astype(float)
    (sy, sx), (ty, tx) = layer.scale, layer.translate
    return ty + sy * rows, tx + sx * cols


def world(shapes, points):
    """Shapes data coordinates → world (scale and translate)."""
    return np.asarray(shapes.translate) + np.asarray(shapes.scale) * np.asarray(points, float)


def in_box(y, x, corner0, corner1):
    (y0, x0), (y1, x1) = np.minimum(corner0, corner1), np.maximum(corner0, corner1)
    return (y > y0) & (y < y1) & (x > x0) & (x < x1)


@pytest.fixture
def content():
    return Image(np.zeros((20, 30), np.float32), scale=(2.0, 2.0), translate=(10.0, -4.0), name="photo")


def test_a_rectangle_on_another_scale_lands_on_the_contents_pixels(content):
    shapes = Shapes(scale=(0.5, 0.5), translate=(1.0, 2.0), name="regions")
    box = np.array([[20.3, 1.1], [50.9, 40.7]])  # in the Shapes layer's data coordinates
    shapes.add_rectangles(box)
    labels = plan_shapes_mask(shapes, content, (20, 30)).read()
    y, x = centres(content, (20, 30))
    expected = in_box(y, x, *world(shapes, box))
    assert labels.dtype == np.int32 and expected.any() and not expected.all()
    np.testing.assert_array_equal(labels, expected.astype(np.int32))

    # read at a reduced grid (the content read at half size): pixel j covers 2j + ½ of the content
    half = plan_shapes_mask(shapes, content, (10, 15)).read()
    rows, cols = np.mgrid[0:10, 0:15].astype(float)
    y, x = 10.0 + 2.0 * (2 * rows + 0.5), -4.0 + 2.0 * (2 * cols + 0.5)
    np.testing.assert_array_equal(half, in_box(y, x, *world(shapes, box)).astype(np.int32))


def test_polygons_rectangles_and_ellipses_later_shapes_on_top(content):
    shapes = Shapes(scale=(1.0, 1.0), name="regions")
    triangle = np.array([[12.1, -2.9], [12.1, 30.3], [40.7, -2.9]])
    rectangle = np.array([[25.3, 20.1], [45.1, 50.9]])
    centre, radii = np.array([30.2, 30.6]), np.array([9.3, 14.1])
    shapes.add_polygons([triangle])
    shapes.add_rectangles(rectangle)
    shapes.add_ellipses(np.array([centre, radii]))
    assert shape_labels(shapes) == {
        0: "outside the shapes",
        1: "shape 1 (polygon)",
        2: "shape 2 (rectangle)",
        3: "shape 3 (ellipse)",
    }
    labels = plan_shapes_mask(shapes, content, (20, 30)).read()

    y, x = centres(content, (20, 30))
    in_triangle = (y > 12.1) & (x > -2.9) & ((y - 12.1) / (40.7 - 12.1) + (x + 2.9) / (30.3 + 2.9) < 1)
    ellipse = ((y - centre[0]) / radii[0]) ** 2 + ((x - centre[1]) / radii[1]) ** 2
    expected = np.zeros((20, 30), np.int32)
    expected[in_triangle] = 1
    expected[in_box(y, x, *rectangle)] = 2
    expected[ellipse < 1] = 3
    clear = np.abs(ellipse - 1) > 0.1  # the ellipse is drawn as a polygon: its outline may differ by a pixel
    assert {1, 2, 3} <= set(np.unique(labels[clear]))
    np.testing.assert_array_equal(labels[clear], expected[clear])


def test_empty_layers_paths_and_shapes_beside_the_content_are_one_sentence(content):
    with pytest.raises(UserError, match="'nothing' has no shapes"):
        plan_shapes_mask(Shapes(name="nothing"), content, (20, 30))
    path = Shapes([np.array([[12, 0], [30, 20]])], shape_type="path", name="lines")
    with pytest.raises(UserError, match="Shape 1 of 'lines' is a path, which encloses no area"):
        plan_shapes_mask(path, content, (20, 30))
    beside = Shapes([np.array([[500, 500], [600, 600]])], shape_type="rectangle", name="far")
    with pytest.raises(UserError, match="The shapes of 'far' do not lie over 'photo'"):
        plan_shapes_mask(beside, content, (20, 30))
    assert isinstance(
        plan_mask_read(Shapes([np.array([[12, 0], [30, 20]])]), content, (20, 30)), ShapesMaskRead
    )
    with pytest.raises(UserError, match="choose a Labels or Shapes layer as the mask"):
        plan_mask_read(Image(np.zeros((20, 30))), content, (20, 30))


def test_a_style_region_on_a_style_of_another_scale():
    style = Image(
        np.zeros((40, 60, 3), np.uint8), rgb=True, scale=(0.5, 0.25), translate=(3.0, 1.0), name="paint"
    )
    region = Shapes(scale=(2.0, 2.0), translate=(-1.0, 0.0), name="area")
    box = np.array([[2.1, 0.6], [7.3, 4.9]])
    region.add_rectangles(box)
    mask = plan_style_region(region, style, (40, 60)).read()
    y, x = centres(style, (40, 60))
    expected = in_box(y, x, *world(region, box))
    assert mask.dtype == bool and expected.sum() > 50
    np.testing.assert_array_equal(mask, expected)

    tiny = Shapes([np.array([[5.01, 2.01], [5.02, 2.02]])], shape_type="rectangle", name="speck")
    plan = plan_style_region(tiny, style, (40, 60))  # over the style: accepted when Run is pressed
    with pytest.raises(UserError, match="The style region 'speck' covers no pixel of the style 'paint'"):
        plan.read()
    with pytest.raises(UserError, match="needs a style layer"):
        plan_style_region(region, GalleryChoice("brick"), (40, 60))


def test_regions_and_shapes_masks_reach_the_engines_guidance(content):
    rng = np.random.default_rng(0)
    photo = Image(
        rng.random((20, 30)).astype(np.float32), scale=(2.0, 2.0), translate=(10.0, -4.0), name="photo"
    )
    style = Image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), rgb=True, scale=(0.5, 0.5), name="paint")
    other = Image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), rgb=True, name="other")
    area = Shapes([np.array([[1.3, 1.3], [10.7, 12.7]])], shape_type="rectangle", name="area")
    mask = Shapes(name="where")
    mask.add_rectangles(np.array([[12.3, -2.7], [30.1, 20.9]]))  # over the content
    mask.add_rectangles(np.array([[900.0, 900.0], [950.0, 950.0]]))  # beside it
    choices = RunChoices(
        photo,
        [(style, 1.0), (None, 1.0), (other, 1.0)],
        PARAMS,
        mask_layer=mask,
        label_styles={1: 1, 2: 0},
        style_regions=[area, None, None],
    )
    request = prepare(choices)
    guidance = request.read().guidance
    (region, none) = guidance.style_masks
    assert none is None and region.shape == (40, 40) and region.dtype == bool
    assert (
        region.sum()
        == ((np.arange(40) * 0.5 > 1.3) & (np.arange(40) * 0.5 < 10.7)).sum()
        * ((np.arange(40) * 0.5 > 1.3) & (np.arange(40) * 0.5 < 12.7)).sum()
    )
    assert guidance.content_mask.shape == (20, 30) and set(np.unique(guidance.content_mask)) == {0, 1}
    assert guidance.label_styles == {1: 1}  # shape 2 lies beside the content
    meta = result_metadata(request)
    assert meta["style_regions"] == ["area", None] and meta["mask_layer"] == "where"
    assert meta["input_identities"]["mask"] == {"kind": "Shapes", "ndim": 2, "rgb": False}

    alone = RunChoices(photo, [(style, 1.0)], PARAMS, mask_layer=mask, label_styles={2: 0})
    with pytest.raises(UserError, match="None of the shapes of 'where' that are mapped to a style covers"):
        prepare(alone).read()


def test_a_labels_mask_still_works_beside_shapes(content):
    labels = Labels(np.ones((20, 30), np.int32), scale=(2.0, 2.0), translate=(10.0, -4.0), name="labels")
    plan = plan_mask_read(labels, content, (20, 30))
    assert plan.read().shape == (20, 30)
