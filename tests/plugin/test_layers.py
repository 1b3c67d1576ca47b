"""Layers as the engine's inputs (Qt-free): placement over the content, contrast limits, read plans."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from napari.layers import Image

from napari_style_transfer.plugin.layers import (
    layer_contrast_limits,
    layer_geometry,
    plan_layer_read,
    result_geometry,
)


def rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("transform", "content_shape", "result_shape"),
    [
        ({}, (43, 64), (22, 32)),
        ({"scale": (2.0, 0.5), "translate": (10.0, -5.0)}, (43, 64), (86, 128)),
        ({"scale": (1.5, 3.0), "translate": (4.0, 2.0), "rotate": 30, "shear": [0.2]}, (40, 60), (20, 30)),
        ({"affine": np.array([[0.0, 1.0, 5.0], [-1.0, 0.0, 7.0], [0.0, 0.0, 1.0]])}, (30, 20), (60, 40)),
    ],
)
def test_result_geometry_overlays_the_content_edge_to_edge(transform, content_shape, result_shape):
    content = Image(np.zeros(content_shape, np.float32), **transform)
    geometry = result_geometry(layer_geometry(content), content_shape, result_shape)
    result = Image(np.zeros(result_shape, np.float32), **geometry)
    hc, wc = content_shape
    hr, wr = result_shape
    # outer pixel edges and the image centre land on the same world points
    for c_point, r_point in [
        ((-0.5, -0.5), (-0.5, -0.5)),
        ((hc - 0.5, wc - 0.5), (hr - 0.5, wr - 0.5)),
        ((-0.5, wc - 0.5), (-0.5, wr - 0.5)),
        (((hc - 1) / 2, (wc - 1) / 2), ((hr - 1) / 2, (wr - 1) / 2)),
    ]:
        np.testing.assert_allclose(content.data_to_world(c_point), result.data_to_world(r_point), atol=1e-9)


def test_contrast_limits_only_where_they_matter():
    assert layer_contrast_limits(Image(rgb(), rgb=True), rgb()) is None  # uint8 RGB: 0-255
    gray16 = np.full((4, 4), 7, np.uint16)
    assert layer_contrast_limits(Image(gray16, contrast_limits=(0, 100)), gray16) == (0.0, 100.0)
    rgb_float = rgb().astype(np.float32) / 255
    assert layer_contrast_limits(Image(rgb_float, rgb=True, contrast_limits=(0, 0.5)), rgb_float) == (
        0.0,
        0.5,
    )
    # degenerate limits (a constant image) fall back to the engine's own range
    assert layer_contrast_limits(SimpleNamespace(rgb=False, contrast_limits=(5.0, 5.0)), gray16) is None


class CountingArray:
    """An array-like that counts every read (slicing or conversion)."""

    def __init__(self, data):
        self.data, self.reads = data, 0
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    def __getitem__(self, key):
        self.reads += 1
        return self.data[key]

    def __array__(self, dtype=None, copy=None):
        self.reads += 1
        out = self.data if dtype is None else self.data.astype(dtype)
        return out.copy() if copy else out


@pytest.mark.parametrize(
    ("long_side", "shape"), [(None, (160, 240, 3)), (64, (160, 240, 3)), (32, (54, 80, 3)), (16, (32, 48, 3))]
)
def test_a_read_plan_knows_its_shape_before_reading(long_side, shape):
    data = CountingArray(rgb(160, 240))
    plan = plan_layer_read(SimpleNamespace(data=data, ndim=2, name="lazy"), long_side)
    assert data.reads == 0 and plan.shape == shape and plan.dtype == np.uint8
    out = plan.read()
    assert data.reads >= 1 and out.shape == plan.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, data.data)
