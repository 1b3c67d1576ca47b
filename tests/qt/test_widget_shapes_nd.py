"""The dock widget with a 3D Shapes layer as the mask of a stack: the run takes the shapes napari
shows in the slice (current slice), or each slice's own shapes (all slices).

Real viewer, real layers, the real engine on a tiny (3, 32, 32) stack; a spy on the worker's
``run_iter`` shows the label image the engine was given.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity
from widget_helpers import open_widget

import napari_style_transfer._qt.worker as worker_module

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 120_000
LEFT, RIGHT = np.zeros((32, 32), bool), np.zeros((32, 32), bool)
LEFT[:, :16], RIGHT[:, 16:] = True, True


@pytest.fixture
def seen(monkeypatch):
    """What the engine got in the last run (its keyword arguments)."""
    found: dict = {}
    real = worker_module.run_iter

    def spy(*args, **kwargs):
        found.update(kwargs)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "run_iter", spy)
    return found


def wait_done(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def warnings(notes):
    return [n for n in notes if n.severity >= NotificationSeverity.WARNING]


def plane_box(z, cols):
    """A rectangle over every row and the pixel columns ``cols`` (edges between pixel centres), at data z."""
    x0, x1 = cols[0] - 0.5, cols[1] + 0.5
    return np.array([[z, -0.5, x0], [z, -0.5, x1], [z, 31.5, x1], [z, 31.5, x0]])


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
    wait_done(qtbot, widget)
    assert warnings(notes) == []
    labels = seen["guidance"].content_mask
    np.testing.assert_array_equal(labels, np.where(RIGHT, 2, 0))
    assert seen["guidance"].label_styles == {2: 0}

    widget.stack_mode.value = "all"
    assert widget.run()
    wait_done(qtbot, widget)
    assert warnings(notes) == []
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
    assert "'regions' has no shapes in the slice shown" in str(warnings(notes)[-1].message)
