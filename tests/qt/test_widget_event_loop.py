"""Run's turns of the event loop (issue 26): the checks, then the activity dock's bar, then the
result layer, inserted hidden before the worker starts and shown with the first image; a run
that shows no image leaves no layer. The order of events is checked here, not their timing
(that is benchmarks/event_loop_gaps.py).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity
from widget_helpers import on_result_images, open_widget

import napari_style_transfer._qt.worker as worker_module
from napari_style_transfer.engine import ProgressEvent
from napari_style_transfer.plugin.composite import CANVAS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 120_000


def wait_done(qtbot, widget, timeout=TIMEOUT_MS):
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def errors(notes):
    return [str(n.message) for n in notes if n.severity >= NotificationSeverity.ERROR]


def record_inserted(viewer, widget, log):
    """Each layer inserted, as (what, name, visible, shape, dtype, the worker started)."""

    def inserted(event):
        layer = event.value
        run = widget._active
        started = run is not None and run.started
        log.append(("inserted", layer.name, layer.visible, layer.data.shape, layer.data.dtype, started))

    viewer.layers.events.inserted.connect(inserted)


def logging_engine(log, shapes, *, fail=None, delay=0.01, dtype=np.uint8):
    """A stand-in for run_iter (2D): logs its start (in the worker thread), then one RGB preview
    per shape, of ``dtype``, then done; ``fail``: raised before any image."""

    def fake_iter(content, styles, config, *, stack=None, guidance=None, stop=None):
        log.append(("engine started",))
        if fail is not None:
            raise fail
        for step, shape in enumerate(shapes, start=1):
            time.sleep(delay)
            last = step == len(shapes) or stop.is_set()
            yield ProgressEvent(
                scale=0,
                n_scales=1,
                shape=shape,
                iteration=step,
                iterations=len(shapes),
                step=step,
                total_steps=len(shapes),
                losses={"total": 1.0 / step},
                elapsed=0.01 * step,
                preview=np.full(shape + (3,), 40 * step, dtype),
                done=last,
                stopped=stop.is_set(),
                info={"device": "fake", "weights": "embedded"} if last else {},
            )
            if last:
                return

    return fake_iter


def add_pair(viewer, content_image, style_image):
    content = viewer.add_image(content_image, name="cat", rgb=True)
    style = viewer.add_image(style_image, name="swirls style", rgb=True)
    return content, style


def test_the_result_layer_is_inserted_hidden_before_the_worker_starts(
    qtbot, viewer, content_image, style_image, monkeypatch, notes
):
    log: list[tuple] = []
    monkeypatch.setattr(worker_module, "run_iter", logging_engine(log, [(22, 32)] * 3))
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, **FAST)
    record_inserted(viewer, widget, log)
    on_result_images(viewer, lambda layer: log.append(("image", layer.visible, int(layer.data.max()))))

    assert widget.run()
    run = widget._active
    # Run's own turn: the checks and the controls only; the bar, the layer and the worker come later
    assert run.bar is None and run.layer is None and not run.started and widget.running
    assert log == []
    wait_done(qtbot, widget)

    assert log[0] == ("inserted", "cat stylised", False, (22, 32, 3), np.dtype(np.uint8), False)
    assert log[1] == ("engine started",)
    assert [entry for entry in log if entry[0] == "inserted"] == [log[0]]  # one layer, never re-made
    images = [entry for entry in log if entry[0] == "image"]
    assert images[0] == ("image", True, 40)  # visible with the first image, which it holds
    assert images[-1] == ("image", True, 120)
    (layer,) = [layer for layer in viewer.layers if layer.name == "cat stylised"]
    assert layer.visible and layer.metadata["done"] and layer.interpolation2d == "linear"
    assert errors(notes) == []
    assert run.bar is not None and run.bar.closed  # the bar came in its own turn, and went


@pytest.mark.parametrize("first", ["smaller", "float32"])
def test_a_first_image_unlike_the_placeholder_is_shown_right(
    qtbot, viewer, content_image, style_image, monkeypatch, notes, first
):
    """The placeholder is made for the first image the request predicts; another size is set and
    placed over the content, another dtype replaces the placeholder by a new layer."""
    log: list[tuple] = []
    shape, dtype = ((11, 16), np.uint8) if first == "smaller" else ((22, 32), np.float32)
    monkeypatch.setattr(worker_module, "run_iter", logging_engine(log, [shape] * 2, dtype=dtype))
    content, _ = add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, **FAST)
    record_inserted(viewer, widget, log)
    assert widget.run()
    wait_done(qtbot, widget)
    inserted = [entry[:3] for entry in log if entry[0] == "inserted"]
    assert inserted[0] == ("inserted", "cat stylised", False)
    assert inserted[1:] == ([] if first == "smaller" else [("inserted", "cat stylised", True)])
    (layer,) = [layer for layer in viewer.layers if "stylised" in layer.name]
    assert layer.name == "cat stylised" and layer.visible and layer.metadata["done"]
    assert layer.data.shape == (*shape, 3) and layer.data.dtype == dtype and layer.interpolation2d == "linear"
    last = np.array(shape) - 0.5  # the outer corners lie on the content's
    np.testing.assert_allclose(
        content.data_to_world(np.array(content.data.shape[:2]) - 0.5), layer.data_to_world(last)
    )
    assert widget.status.value.startswith("Done") and errors(notes) == []


def test_a_run_that_fails_before_any_image_leaves_no_layer(
    qtbot, viewer, content_image, style_image, monkeypatch, notes
):
    log: list[tuple] = []
    failure = RuntimeError("CUDA out of memory (simulated)")
    monkeypatch.setattr(worker_module, "run_iter", logging_engine(log, [], fail=failure))
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, **FAST)
    record_inserted(viewer, widget, log)
    removed = []
    viewer.layers.events.removed.connect(lambda e: removed.append(e.value.name))

    assert widget.run()
    wait_done(qtbot, widget)
    assert [entry[:3] for entry in log] == [("inserted", "cat stylised", False), ("engine started",)]
    assert removed == ["cat stylised"]  # the hidden placeholder went with the failure
    assert [layer.name for layer in viewer.layers] == ["cat", "swirls style"]
    assert widget.status.value.startswith("Failed: Not enough memory")
    assert len(errors(notes)) == 1 and widget.run_button.enabled


def test_a_run_stopped_before_its_first_image_leaves_no_layer(qtbot, viewer, content_image, style_image):
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, **FAST)
    viewer.layers.events.inserted.connect(lambda e: widget.stop())  # Stop as the layer comes in
    assert widget.run()
    wait_done(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == ["cat", "swirls style"]
    assert widget.status.value.startswith("Stopped") and widget.run_button.enabled


@pytest.mark.parametrize("when", ["at Run", "after the bar"])
def test_stop_between_run_turns_makes_no_bar_or_layer(qtbot, viewer, content_image, style_image, when):
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, **FAST)
    assert widget.run()
    run = widget._active
    if when == "after the bar":
        qtbot.waitUntil(lambda: run.bar is not None, timeout=5_000)
    widget.stop()
    wait_done(qtbot, widget)
    assert (run.bar is not None) == (when == "after the bar") and run.layer is None
    assert run.started and run.finished.is_set()  # the worker ran and ended the usual way
    assert [layer.name for layer in viewer.layers] == ["cat", "swirls style"]
    assert widget.status.value.startswith("Stopped") and widget.run_button.enabled


def test_closing_the_panel_right_after_run_leaves_nothing(qtbot, viewer, content_image, style_image, notes):
    add_pair(viewer, content_image, style_image)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    widget.set_config(**FAST)
    assert widget.run()
    run = widget._active
    viewer.window.remove_dock_widget(dock)  # what the panel's close button does
    qtbot.waitUntil(run.finished.is_set, timeout=TIMEOUT_MS)
    qtbot.wait(100)  # any turn still queued runs now
    assert [layer.name for layer in viewer.layers] == ["cat", "swirls style"]
    assert run.stop.is_set() and errors(notes) == []


def grey(shape=(40, 60), dtype=np.float32):
    values = np.random.default_rng(0).random(shape)
    return (values > 0.5) if dtype == np.bool_ else (values * 200).astype(dtype)


CASES = {
    "rgb uint8": dict(content=lambda v, c: v.add_image(c, name="c", rgb=True)),
    "grey float": dict(content=lambda v, c: v.add_image(grey(), name="c")),
    "grey uint16, colour result": dict(
        content=lambda v, c: v.add_image(grey(dtype=np.uint16), name="c"), config={"result_colour": "style"}
    ),
    "bool, colour result": dict(
        content=lambda v, c: v.add_image(grey(dtype=np.bool_), name="c"), config={"result_colour": "style"}
    ),
    "stack, one slice": dict(content=lambda v, c: v.add_image(grey((3, 40, 60)), name="c"), stack="slice"),
    "stack, all slices": dict(content=lambda v, c: v.add_image(grey((3, 40, 60)), name="c"), stack="all"),
    "rgb stack, all slices": dict(
        content=lambda v, c: v.add_image(np.stack([c, c[::-1]]), name="c", rgb=True), stack="all"
    ),
    "canvas": dict(content=lambda v, c: (v.add_image(c, name="c", rgb=True), CANVAS)[1]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_placeholder_has_the_first_image_shape_and_dtype(
    qtbot, viewer, content_image, style_image, notes, case
):
    """The first image only sets the data: the placeholder is made for it (never re-made)."""
    spec = CASES[case]
    content = spec["content"](viewer, content_image)
    viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, **{**FAST, **spec.get("config", {})})
    widget.content_layer.value = content
    if "stack" in spec:
        widget.stack_mode.value = spec["stack"]
    log: list[tuple] = []
    record_inserted(viewer, widget, log)
    first: list[tuple] = []
    held: list[int] = []  # the array the layer holds, at insertion and at the first image
    viewer.layers.events.inserted.connect(lambda event: held.append(id(event.value.data)))
    on_result_images(viewer, lambda layer: first.append((layer.data.shape, layer.data.dtype)))
    on_result_images(viewer, lambda layer: held.append(id(layer.data)))
    assert widget.run()
    wait_done(qtbot, widget)
    assert errors(notes) == []
    if spec.get("stack") == "all":  # the first slice goes into the placeholder's zeros: no second stack
        assert held[1] == held[0], case
    (inserted,) = log  # one layer, inserted hidden before the worker started
    _, name, visible, shape, dtype, started = inserted
    assert not visible and not started
    assert first and first[0] == (shape, dtype), case
    result = viewer.layers[name]
    assert result.visible and result.metadata["done"]
