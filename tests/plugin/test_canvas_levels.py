"""The canvas reads a multiscale (pyramid) layer from its coarsest level that covers the run
(plugin/canvas_levels.py through plugin/composite.py, Qt-free).

Every pyramid here is made of exact block images: level 0 is constant over blocks of 8 × 8 pixels
(``np.kron``), so each level (level 0 decimated by 2, 4, 8) is both the decimation and the block
mean of level 0, and a canvas read from a coarse level must equal the block means of the canvas
composited from level 0 (as a run read it before pyramids were used). Each level is a dask array
that records what is computed of it: level 0 must stay untouched when a smaller level suffices.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image

from napari_style_transfer.arrays import block_mean
from napari_style_transfer.plugin.composite import Canvas, plan_canvas_read

da = pytest.importorskip("dask.array")

GRAY = dict(colormap="gray", contrast_limits=(0, 1000))


def blocks(shape, seed, size=8):
    """An image of ``shape`` × ``size`` that is constant over ``size`` × ``size`` blocks."""
    coarse = np.random.default_rng(seed).uniform(0, 1000, shape).astype(np.float32)
    return np.kron(coarse, np.ones((1,) * (len(shape) - 2) + (size, size), np.float32))


def recorded_pyramid(level0, steps=(1, 2, 4, 8), lead_steps=None):
    """(the levels as dask arrays, per level the list of block shapes computed of it)."""
    levels, reads = [], []
    for i, step in enumerate(steps):
        lead = () if lead_steps is None else (slice(None, None, lead_steps[i]),)
        level = np.ascontiguousarray(level0[(*lead, slice(None, None, step), slice(None, None, step))])
        seen: list = []

        def record(block, seen=seen):
            seen.append(block.shape)
            return block

        levels.append(da.from_array(level, chunks=(1,) * (level.ndim - 2) + (25, 25)).map_blocks(record))
        reads.append(seen)
    return levels, reads


def full_canvas(layers):
    """The canvas composited from the layers' numpy data at full resolution (no pyramid, no reduction)."""
    _, read = plan_canvas_read(Canvas(tuple(layers)), None, None, None)
    return read.read()


def test_a_pyramid_first_layer_is_read_from_its_small_level_and_matches_level_0():
    level0 = blocks((25, 37), 0)  # (200, 296)
    levels, reads = recorded_pyramid(level0)
    top = blocks((25, 37), 1, size=4)  # (100, 148) at scale 2: pixel i covers canvas pixels 2i, 2i + 1
    over = dict(
        colormap="green", blending="additive", contrast_limits=(0, 1000), scale=(2, 2), translate=(0.5, 0.5)
    )
    pyramid = Image(levels, multiscale=True, name="pyramid", **GRAY)
    for seen in reads:
        seen.clear()  # napari read what it shows
    _, read = plan_canvas_read(Canvas((pyramid, Image(top, **over))), None, None, 32)
    assert reads == [[], [], [], []]  # planned: nothing read
    got = read.read()

    # a 32 px run needs pixels of about 9 canvas pixels: the 8× level is enough (composited on a grid
    # of 2 × 2 canvas pixels, the finest the top layer has, then block means of 2)
    assert reads[0] == reads[1] == reads[2] == [] and reads[3] != []
    flat = full_canvas([Image(level0, name="level 0", **GRAY), Image(top, **over)])
    assert got.shape == (50, 74, 3) and read.shape == got.shape  # the same read as for level 0 alone
    np.testing.assert_allclose(got, block_mean(flat, 4), atol=1e-6)


def test_a_pyramid_over_a_plain_first_layer_is_read_from_its_coarsest_sufficient_level():
    base = blocks((25, 37), 2, size=8)  # (200, 296): the canvas's grid
    level0 = blocks((25, 37), 3, size=16)  # (400, 592) at scale 0.5: 16 × 16 blocks = 8 × 8 canvas pixels
    levels, reads = recorded_pyramid(level0, steps=(1, 2, 4, 8, 16))
    over = dict(colormap="magenta", blending="additive", contrast_limits=(0, 1000), scale=(0.5, 0.5))
    pyramid = Image(levels, multiscale=True, translate=(-0.25, -0.25), name="pyramid", **over)
    for seen in reads:
        seen.clear()
    _, read = plan_canvas_read(Canvas((Image(base, **GRAY), pyramid)), None, None, 32)
    got = read.read()

    # a 32 px run needs pixels of about 9 canvas pixels: level 16 (8 canvas pixels) is enough
    assert all(seen == [] for seen in reads[:4]) and reads[4] != []
    flat = full_canvas([Image(base, **GRAY), Image(level0, translate=(-0.25, -0.25), **over)])
    np.testing.assert_allclose(got, block_mean(flat, 4), atol=1e-6)

    # at full size (no long side) the pyramid is read at level 0, as napari shows it fully zoomed in
    _, whole = plan_canvas_read(Canvas((Image(base, **GRAY), pyramid)), None, None, None)
    np.testing.assert_allclose(whole.read(), flat, atol=1e-6)
    assert reads[0] != []


def test_an_nd_pyramid_maps_the_slice_shown_to_its_levels_slices():
    level0 = blocks((4, 25, 37), 4)  # (4, 200, 296); the 4× level keeps every other slice
    levels, reads = recorded_pyramid(level0, steps=(1, 4), lead_steps=(1, 2))
    stack = Image(levels, multiscale=True, name="stack", **GRAY)
    for seen in reads:
        seen.clear()
    index, read = plan_canvas_read(Canvas((stack,)), "slice", (2.0, 0.0, 0.0), 32)
    assert index == (2,)
    got = read.read()
    assert reads[0] == [] and reads[1] != []
    np.testing.assert_allclose(got, block_mean(full_canvas([Image(level0[2], **GRAY)]), 4), atol=1e-6)
