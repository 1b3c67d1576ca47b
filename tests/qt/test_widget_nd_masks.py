"""The dock widget with nD stacks, Labels masks and tiling, in a real napari viewer.

Tiny data (a (3, 32, 32) stack, output 32 px, 2-3 iterations, one scale) and the real engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity
from widget_helpers import on_result_images, open_widget

from napari_style_transfer.engine import StackOptions

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 120_000


def wait_done(qtbot, widget, timeout=TIMEOUT_MS):
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def results(viewer):
    return [layer for layer in viewer.layers if "stylised" in layer.name]


def record_status(widget, statuses):
    set_status = widget._set_status

    def recording(text):
        statuses.append(text)
        set_status(text)

    widget._set_status = recording


def make_stack(n=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    slices = [
        ((np.sin(xx / 3 + i) + np.cos(yy / 4)) * 60 + 128 + rng.normal(0, 5, (size, size))) for i in range(n)
    ]
    return np.clip(np.stack(slices), 0, 255).astype(np.uint8)


def style_image(size=32, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def stripes(size=32):
    yy, xx = np.mgrid[0:size, 0:size]
    return (((xx // 4) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)


def test_stack_choice_is_visible_only_for_nd_content(viewer):
    viewer.add_image(style_image(), name="flat style", rgb=True)
    widget = open_widget(viewer)
    assert widget._stack_row.native.isHidden()
    stack = viewer.add_image(make_stack(), name="stack", scale=(2.0, 1.0, 1.0))
    widget.content_layer.value = stack
    assert not widget._stack_row.native.isHidden()
    widget.stack_mode.value = "all"
    assert not widget.coherent.native.isHidden()


def test_current_slice_gives_a_result_placed_over_that_slice(viewer, qtbot):
    data = make_stack()
    before = data.copy()
    stack = viewer.add_image(data, name="stack", scale=(2.0, 0.5, 0.5), translate=(10.0, 0.0, 0.0))
    style = viewer.add_image(style_image(), name="swirls style", rgb=True)
    style_before = np.array(style.data)
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    widget.content_layer.value = stack
    widget.stack_mode.value = "slice"
    viewer.dims.set_current_step(0, 2)
    assert widget.run()
    wait_done(qtbot, widget)
    (result,) = results(viewer)
    assert result.data.shape == (1, 32, 32)  # one 2D slice, placed over slice 2
    assert result.scale[0] == pytest.approx(2.0)
    assert result.translate[0] == pytest.approx(10.0 + 2 * 2.0)
    np.testing.assert_allclose(result.scale[1:], stack.scale[1:])
    assert not np.array_equal(result.data[0], data[2])
    np.testing.assert_array_equal(stack.data, before)
    np.testing.assert_array_equal(style.data, style_before)


def test_all_slices_fill_one_nd_result_slice_by_slice_and_stop_keeps_finished(viewer, qtbot):
    data = make_stack(n=3)
    before = data.copy()
    stack = viewer.add_image(data, name="stack", scale=(3.0, 1.0, 1.0))
    viewer.add_image(style_image(), name="swirls style", rgb=True)
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    widget.content_layer.value = stack
    widget.stack_mode.value = "all"
    assert widget.coherent.value  # coherent by default
    states: list[np.ndarray] = []
    statuses: list[str] = []
    record_status(widget, statuses)

    on_result_images(viewer, lambda layer: states.append(np.array(layer.data)))  # not the hidden placeholder
    assert widget.run()
    wait_done(qtbot, widget)
    (result,) = results(viewer)
    assert result.data.shape == (3, 32, 32) and result.data.dtype == np.uint8
    np.testing.assert_allclose(result.scale, (3.0, 1.0, 1.0))
    # the first state: slice 0 filled, the later ones still zero
    assert states[0][0].any() and not states[0][1].any() and not states[0][2].any()
    assert any(s[1].any() and not s[2].any() for s in states)
    assert all(result.data[i].any() for i in range(3))
    # the status names the slice (redrawn at most twice a second, so not necessarily slice 2's)
    assert any(s.startswith("Slice ") and "/3 · " in s for s in statuses), statuses
    assert result.metadata["slices_done"] == 3
    np.testing.assert_array_equal(stack.data, before)

    # Stop after the first slice: the finished slice stays, the rest are zero
    widget.iterations.value = 3

    on_result_images(viewer, lambda layer: widget.stop())  # Stop after the first slice
    assert widget.run()
    wait_done(qtbot, widget)
    stopped = results(viewer)[-1]
    assert stopped.name.endswith("(stopped)")
    assert stopped.metadata["stopped"]
    assert stopped.data[0].any() and not stopped.data[2].any()
    assert stopped.metadata["slices_done"] < 3


def _mask_setup(viewer):
    size = 32
    content = np.full((size, size, 3), 128, np.uint8)
    content[..., 0] = np.linspace(40, 220, size).astype(np.uint8)[None, :]
    cat = viewer.add_image(content, name="cat", rgb=True)
    labels = np.zeros((size, size), np.int32)
    labels[:, 16:] = 1
    return cat, labels


def test_mask_keeps_the_content_outside_the_labels(viewer, qtbot):
    cat, labels = _mask_setup(viewer)
    viewer.add_image(stripes(), name="stripes style", rgb=True)
    mask = viewer.add_labels(labels, name="mask")
    labels_before = np.array(mask.data)
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "iterations": 3})
    widget.mask_layer.value = mask
    assert [w.label for w in widget.label_table] == ["label 0", "label 1"]
    assert widget.label_styles == {1: 0}  # background keeps the content by default
    assert widget.run()
    wait_done(qtbot, widget)
    (result,) = results(viewer)
    diff = np.abs(result.data.astype(float) - cat.data.astype(float)).mean(-1)
    assert diff[:, :12].mean() < 3  # outside the label region (beyond the feathered edge)
    assert diff[:, 20:].mean() > 3 * max(diff[:, :12].mean(), 0.5)
    np.testing.assert_array_equal(mask.data, labels_before)


def test_label_style_table_drives_the_engine(viewer, qtbot, monkeypatch):
    import napari_style_transfer._qt.worker as worker_module

    seen = {}
    real = worker_module.run_iter

    def spy(*args, **kwargs):
        seen.update(kwargs)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "run_iter", spy)
    cat, labels = _mask_setup(viewer)
    labels[:16, :16] = 2
    viewer.add_image(stripes(), name="stripes style", rgb=True)
    viewer.add_image(style_image(), name="noise style", rgb=True)
    mask = viewer.add_labels(labels, name="mask")
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    widget.add_style()
    assert len(widget.style_rows) == 2
    widget.mask_layer.value = mask
    widget.set_label_style(1, 0)
    widget.set_label_style(2, 1)
    assert widget.label_styles == {1: 0, 2: 1}
    assert widget.run()
    wait_done(qtbot, widget)
    assert seen["stack"] is None
    assert seen["guidance"].label_styles == {1: 0, 2: 1}
    assert seen["guidance"].content_mask.shape == (32, 32)
    (result,) = results(viewer)
    assert result.metadata["info"]["regions"] == [{"labels": [1], "style": 0}, {"labels": [2], "style": 1}]


def test_mask_of_another_shape_is_refused_with_a_clear_notification(viewer, notes):
    _mask_setup(viewer)
    viewer.add_image(stripes(), name="stripes style", rgb=True)
    mask = viewer.add_labels(np.zeros((20, 20), np.int32), name="small mask")
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    widget.mask_layer.value = mask
    assert not widget.run()
    warnings = [n for n in notes if n.severity >= NotificationSeverity.WARNING]
    assert warnings and "same size" in str(warnings[-1].message)


def test_tiling_forced_on_runs_and_says_so(viewer, qtbot, notes):
    _mask_setup(viewer)
    viewer.add_image(stripes(), name="stripes style", rgb=True)
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "size": 64, "tiling": "on", "tile_size": 32})
    statuses: list[str] = []
    record_status(widget, statuses)
    assert widget.run()
    wait_done(qtbot, widget)
    (result,) = results(viewer)
    assert result.metadata["done"] and "tiled" in result.metadata["info"]
    assert any("tiling" in str(n.message) for n in notes if n.severity == NotificationSeverity.INFO)
    assert any("tiled" in s.lower() or "tiling" in s.lower() for s in statuses)
    assert "Tiled" in widget.status.value


def test_nd_style_uses_the_slice_shown_and_a_mask_applies_to_every_slice(viewer, qtbot, monkeypatch):
    import napari_style_transfer._qt.worker as worker_module

    seen = {}
    real = worker_module.run_iter

    def spy(content, styles, *args, **kwargs):
        seen.update(kwargs, content=content, styles=styles)
        yield from real(content, styles, *args, **kwargs)

    monkeypatch.setattr(worker_module, "run_iter", spy)
    data = make_stack(n=2)
    stack = viewer.add_image(data, name="stack")
    style_stack = np.stack([stripes()[..., 0], 255 - stripes()[..., 0]])
    style = viewer.add_image(style_stack, name="stripes style")
    labels = np.zeros((32, 32), np.int32)
    labels[:, 16:] = 1
    mask = viewer.add_labels(labels, name="mask")
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    widget.content_layer.value = stack
    widget.style_rows[0].layer.value = style
    widget.stack_mode.value = "all"
    widget.mask_layer.value = mask
    viewer.dims.set_current_step(0, 1)
    assert widget.run()
    wait_done(qtbot, widget)
    np.testing.assert_array_equal(seen["styles"][0], style_stack[1])
    np.testing.assert_array_equal(seen["content"], data)
    assert seen["stack"] == StackOptions(rgb=False, coherence=True)  # all slices: the stack engine
    assert seen["guidance"].label_styles == {1: 0} and seen["guidance"].content_mask.shape == (32, 32)
    (result,) = results(viewer)
    assert result.data.shape == (2, 32, 32)
    diff = np.abs(result.data.astype(float) - data.astype(float))
    assert diff[:, :, :12].mean() < diff[:, :, 20:].mean()


def test_mask_table_lists_at_most_ten_labels_and_says_the_rest_keep_the_content(viewer):
    _mask_setup(viewer)
    viewer.add_image(stripes(), name="stripes style", rgb=True)
    labels = (np.arange(32 * 32).reshape(32, 32) % 13).astype(np.int32)
    widget = open_widget(viewer)
    widget.mask_layer.value = viewer.add_labels(labels, name="many")
    rows = [w for w in widget.label_table if w.name != "label_more"]
    assert len(rows) == 10
    assert "3 more label value(s)" in widget.label_table["label_more"].value
    assert widget.label_styles == {v: 0 for v in range(1, 10)}
    widget.mask_layer.value = None
    assert len(widget.label_table) == 0
