"""The dock widget in a real napari viewer (pytest-qt; Xvfb via pytest-xvfb on Linux).

Runs use the real engine on tiny images (output 32-48 px, a few iterations, previews at
every step, one scale); a few tests swap in a fake engine generator for exact control.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from napari.layers import Image
from napari.utils.notifications import ErrorNotification, NotificationSeverity
from widget_helpers import PLUGIN, WIDGET, on_result_images, open_widget, shown_results

import napari_style_transfer._qt.worker as worker_module
from napari_style_transfer.engine import ProgressEvent, StyleConfig, StyleTransferError
from napari_style_transfer.plugin.composite import CANVAS

FAST = dict(size=32, iterations=4, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 60_000


def add_pair(viewer, content_image, style_image, **content_kwargs):
    content = viewer.add_image(content_image, name="cat", rgb=True, **content_kwargs)
    style = viewer.add_image(style_image, name="swirls style", rgb=True)
    return content, style


def wait_done(qtbot, widget, timeout=TIMEOUT_MS):
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def result_layers(viewer):
    return [layer for layer in viewer.layers if layer.name.startswith("cat stylised")]


def record_result_updates(viewer):
    """Copies of the result layer's data each time an image reaches it (not its hidden placeholder)."""
    snapshots: list[np.ndarray] = []
    on_result_images(viewer, lambda layer: snapshots.append(np.array(layer.data)))
    return snapshots


def user_errors(notes):
    return [n for n in notes if n.severity >= NotificationSeverity.WARNING]


# ---------------------------------------------------------------------------------------------


def test_sample_data_loads_through_the_manifest(viewer):
    viewer.open_sample(PLUGIN, "cat_and_swirls")
    assert [layer.name for layer in viewer.layers] == ["cat (content)", "swirls (style)"]
    content, style = viewer.layers
    assert content.data.shape == (300, 451, 3) and content.rgb and content.data.dtype == np.uint8
    assert style.data.shape == (384, 384, 3) and style.rgb
    viewer.open_sample(PLUGIN, "gravel")  # a gallery style (the others: tests/qt/test_manifest.py)
    assert viewer.layers[-1].name == "Gravel (style)" and viewer.layers[-1].data.shape == (512, 512)


def test_layer_choices_follow_the_viewer(viewer, content_image, style_image):
    widget = open_widget(viewer)
    assert widget.content_layer.choices == ()
    content, style = add_pair(viewer, content_image, style_image)
    viewer.add_labels(np.zeros((43, 64), np.int32), name="masks")
    # Image layers only, then the canvas (the visible image layers as shown)
    assert widget.content_layer.choices == (content, style, CANVAS)
    assert widget.content_layer.value is content
    assert [layer for layer, _ in widget.styles] == [style]  # defaults to a different layer

    style.name = "brush strokes"
    assert [widget.content_layer.native.itemText(i) for i in range(2)] == ["cat", "brush strokes"]

    third = viewer.add_image(style_image[::-1].copy(), name="another style", rgb=True)
    row = widget.add_style()
    assert row.layer.value is third and len(widget.styles) == 2
    assert not row.weight.native.isHidden() and not row.remove_button.native.isHidden()
    viewer.layers.remove(third)
    assert third not in widget.content_layer.choices and third not in row.layer.choices
    row.remove_button.native.click()
    assert len(widget.styles) == 1
    assert not widget.advanced_section.isExpanded()


def test_run_shows_live_previews_then_the_final_image(qtbot, viewer, content_image, style_image, notes):
    content, style = add_pair(viewer, content_image, style_image, scale=(2.0, 0.5), translate=(10.0, -5.0))
    before = [content.data.copy(), style.data.copy()]
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "iterations": 16})
    snapshots = record_result_updates(viewer)

    widget.run_button.native.click()
    assert widget.running and not widget.run_button.enabled and widget.stop_button.enabled
    wait_done(qtbot, widget)

    (layer,) = result_layers(viewer)
    assert layer.name == "cat stylised"
    # at least two different intermediate images reached the layer, then the final one
    intermediate = {s.tobytes() for s in snapshots[:-1]}
    assert len(intermediate) >= 2, f"only {len(intermediate)} distinct previews"
    np.testing.assert_array_equal(snapshots[-1], layer.data)
    assert layer.data.shape == (22, 32, 3) and layer.data.dtype == np.uint8 and layer.rgb
    # laid over the content: same outer edges in world coordinates
    np.testing.assert_allclose(layer.scale, content.scale * np.array([43 / 22, 64 / 32]))
    np.testing.assert_allclose(content.data_to_world((-0.5, -0.5)), layer.data_to_world((-0.5, -0.5)))
    np.testing.assert_allclose(content.data_to_world((42.5, 63.5)), layer.data_to_world((21.5, 31.5)))

    meta = layer.metadata
    assert meta["content_layer"] == "cat" and meta["style_layers"] == ["swirls style"]
    assert meta["stopped"] is False and meta["done"] is True and meta["steps"] == 16
    assert meta["config"]["iterations"] == 16 and meta["config"]["size"] == 32
    assert meta["config"]["style_weight"] == widget.style_strength_value.value
    assert meta["weights"] == "embedded" and meta["device"] == "cpu"
    assert meta["info"]["elapsed_s"] > 0 and meta["elapsed_s"] > 0
    assert widget.status.value.startswith("Done: 16 steps")
    assert widget.run_button.enabled and not widget.stop_button.enabled
    assert widget.progress_bar.value == widget.progress_bar.max == 16
    # the user's layers are untouched, byte for byte
    np.testing.assert_array_equal(content.data, before[0])
    np.testing.assert_array_equal(style.data, before[1])
    assert user_errors(notes) == []

    # a second run makes a second layer and leaves the first one alone
    first = layer.data.copy()
    widget.set_config(iterations=2)
    assert widget.run()
    wait_done(qtbot, widget)
    assert [layer.name for layer in result_layers(viewer)] == ["cat stylised", "cat stylised [1]"]
    np.testing.assert_array_equal(result_layers(viewer)[0].data, first)


def test_stop_ends_within_one_iteration_and_keeps_the_image(
    qtbot, viewer, content_image, style_image, monkeypatch
):
    produced = []  # steps the engine has finished, seen from the worker thread
    real_iter = worker_module.run_iter

    def counting_iter(*args, **kwargs):
        for event in real_iter(*args, **kwargs):
            produced.append(event.step)
            yield event

    monkeypatch.setattr(worker_module, "run_iter", counting_iter)
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "iterations": 500})
    assert widget.run()
    qtbot.waitUntil(lambda: len(result_layers(viewer)) == 1 and len(produced) >= 3, timeout=TIMEOUT_MS)

    widget.stop_button.native.click()
    at_stop = produced[-1]
    assert not widget.stop_button.enabled
    wait_done(qtbot, widget, timeout=20_000)

    (layer,) = result_layers(viewer)
    meta = layer.metadata
    assert layer.name == "cat stylised (stopped)"
    assert meta["stopped"] is True and meta["done"] is False  # like a stopped stack: not done
    # the step running when Stop was pressed may finish; no further step starts
    assert at_stop <= meta["steps"] <= at_stop + 1 < 500
    assert layer.data.shape == (22, 32, 3)
    assert widget.status.value.startswith("Stopped at step")
    assert widget.run_button.enabled


def test_run_twice_starts_one_run(qtbot, viewer, content_image, style_image):
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    widget.run_button.native.click()
    widget.run_button.native.click()  # disabled: ignored by Qt
    assert widget.run() is False  # and guarded in code
    wait_done(qtbot, widget)
    assert len(result_layers(viewer)) == 1


def test_closing_the_viewer_mid_run_stops_the_worker(qtbot, viewer, content_image, style_image, notes):
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "iterations": 500})
    assert widget.run()
    run = widget._active
    qtbot.waitUntil(lambda: len(shown_results(viewer)) == 1, timeout=TIMEOUT_MS)  # the first image

    viewer.close()
    qtbot.waitUntil(run.finished.is_set, timeout=20_000)  # the worker thread ended
    qtbot.waitUntil(lambda: not widget.running, timeout=5_000)
    assert run.stop.is_set() and widget._closed
    assert run.final is None or run.final.stopped
    assert not [n for n in notes if n.severity >= NotificationSeverity.ERROR]


def test_closing_the_panel_mid_run_stops_the_run(qtbot, viewer, content_image, style_image, monkeypatch):
    monkeypatch.setattr(worker_module, "run_iter", fake_engine([(22, 32)] * 500, delay=0.01))
    add_pair(viewer, content_image, style_image)
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget.set_config(**FAST)
    assert widget.run()
    qtbot.waitUntil(lambda: len(shown_results(viewer)) == 1, timeout=10_000)
    viewer.window.remove_dock_widget(dock)  # what the panel's close button does
    wait_done(qtbot, widget, timeout=10_000)
    (layer,) = result_layers(viewer)
    assert layer.name == "cat stylised (stopped)" and layer.metadata["steps"] < 500


@pytest.mark.parametrize("kind", ["grayscale float", "rgba"])
def test_grayscale_and_rgba_layers(qtbot, viewer, content_image, style_image, kind, notes):
    if kind == "grayscale float":
        data = content_image.mean(axis=2).astype(np.float32) * 4.0  # 0-1020
        content = viewer.add_image(data, name="cat", contrast_limits=(100.0, 900.0), colormap="magma")
        style = viewer.add_image(style_image[..., 0].copy(), name="style")  # uint8 grayscale style
    else:
        alpha = np.full(content_image.shape[:2] + (1,), 200, np.uint8)
        content = viewer.add_image(np.concatenate([content_image, alpha], axis=2), name="cat", rgb=True)
        style = viewer.add_image(
            np.concatenate([style_image, style_image[..., :1]], axis=2), name="s", rgb=True
        )
    before = content.data.copy()
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "iterations": 2})
    assert widget.content_layer.value is content and widget.styles[0][0] is style
    assert widget.run()
    wait_done(qtbot, widget)
    assert user_errors(notes) == []
    (layer,) = result_layers(viewer)
    if kind == "grayscale float":
        assert layer.data.shape == (22, 32) and layer.data.dtype == np.float32 and not layer.rgb
        assert tuple(layer.contrast_limits) == (100.0, 900.0) and layer.colormap.name == "magma"
        assert layer.metadata["config"]["contrast_limits"] == [100.0, 900.0]
        assert layer.data.min() >= 100.0 and layer.data.max() <= 900.0
    else:
        assert layer.data.shape == (22, 32, 4) and layer.data.dtype == np.uint8 and layer.rgb
        np.testing.assert_array_equal(layer.data[..., 3], 200)
    np.testing.assert_array_equal(content.data, before)


def test_two_styles_are_blended_with_their_weights(qtbot, viewer, content_image, style_image):
    add_pair(viewer, content_image, style_image)
    other = viewer.add_image(np.ascontiguousarray(style_image[:, ::-1]), name="mirror", rgb=True)
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "iterations": 2})
    widget.style_rows[0].weight.value = 1.0
    widget.add_style(other, weight=3.0)
    assert widget.run()
    wait_done(qtbot, widget)
    (layer,) = result_layers(viewer)
    assert layer.metadata["style_layers"] == ["swirls style", "mirror"]
    assert layer.metadata["config"]["style_blend_weights"] == [1.0, 3.0]


def choose(viewer, widget, case, content_image, style_image):
    """Set up one bad choice; returns the layer passed to run() as content (or None)."""
    if case == "no image layers":
        viewer.add_labels(np.zeros((8, 8), np.int32), name="masks")
        return None
    content, style = add_pair(viewer, content_image, style_image)
    if case == "labels as content":
        return viewer.add_labels(np.zeros((43, 64), np.int32), name="masks")
    if case == "same layer":
        widget.style_rows[0].layer.value = content
    elif case == "mask of another size":
        widget.mask_layer.value = viewer.add_labels(np.zeros((5, 7), np.int32), name="small mask")
    elif case == "bad setting":
        widget.style_layers.value = "relu9_9"
    elif case == "missing weight file":
        widget.set_config(weights="/no/such/vgg19.pth")
    return None


@pytest.mark.parametrize(
    ("case", "severity", "expected"),
    [
        ("no image layers", NotificationSeverity.WARNING, "no image layer"),
        ("labels as content", NotificationSeverity.WARNING, "is a Labels layer; choose an Image layer"),
        ("same layer", NotificationSeverity.WARNING, "both the content and a style"),
        ("mask of another size", NotificationSeverity.WARNING, "same size as"),
        ("bad setting", NotificationSeverity.ERROR, "Invalid setting — Style layers (style_layers)"),
        ("missing weight file", NotificationSeverity.WARNING, "does not exist"),
    ],
)
def test_bad_choices_are_explained_in_a_notification(
    viewer, content_image, style_image, notes, case, severity, expected
):
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    content = choose(viewer, widget, case, content_image, style_image)
    snapshot = [(layer.name, layer.data.copy()) for layer in viewer.layers]
    assert widget.run(content=content) is False
    assert not widget.running
    (note,) = user_errors(notes)
    assert note.severity == severity and expected in note.message
    assert "\n" not in note.message and not isinstance(note, ErrorNotification)
    # nothing was added and the user's layers are unchanged
    assert [layer.name for layer in viewer.layers] == [name for name, _ in snapshot]
    for layer, (_, data) in zip(viewer.layers, snapshot):
        np.testing.assert_array_equal(layer.data, data)


def fake_engine(shapes, *, fail=None, delay=0.0):
    """A stand-in for run_iter (2D): one preview per shape (coarse to fine), then done or an error."""

    def fake_iter(content, styles, config, *, stack=None, guidance=None, stop=None):
        assert stack is None
        total = len(shapes)
        for step, shape in enumerate(shapes, start=1):
            time.sleep(delay)
            stopped = stop is not None and stop.is_set()
            last = step == total or stopped
            if last and fail is not None:
                raise fail
            yield ProgressEvent(
                scale=0 if shape == shapes[0] else 1,
                n_scales=2,
                shape=shape,
                iteration=step,
                iterations=total,
                step=step,
                total_steps=total,
                losses={"total": 1.0 / step},
                elapsed=0.01 * step,
                preview=np.full(shape + (3,), step * 20 % 256, np.uint8),
                done=last,
                stopped=stopped,
                info={"device": "fake", "weights": "embedded"} if last else {},
            )
            if last:
                return

    return fake_iter


def test_multiscale_previews_resize_the_layer_over_the_content(
    qtbot, viewer, content_image, style_image, monkeypatch
):
    monkeypatch.setattr(worker_module, "run_iter", fake_engine([(11, 16), (11, 16), (22, 32), (22, 32)]))
    content, _ = add_pair(viewer, content_image, style_image, translate=(3.0, 4.0))
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    sizes = []
    viewer.layers.events.inserted.connect(
        lambda e: e.value.events.data.connect(lambda _: sizes.append(e.value.data.shape[:2]))
    )
    assert widget.run()
    wait_done(qtbot, widget)
    (layer,) = result_layers(viewer)
    assert layer.data.shape == (22, 32, 3) and np.all(layer.data == 80)
    assert (22, 32) in sizes
    np.testing.assert_allclose(content.data_to_world((42.5, 63.5)), layer.data_to_world((21.5, 31.5)))
    assert isinstance(layer, Image) and layer.metadata["device"] == "fake"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            StyleTransferError("could not load the VGG-19 network on cuda"),
            "Style transfer failed — could not load",
        ),
        (
            RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB"),
            "Not enough memory — the run at 32×22 px",
        ),
    ],
)
def test_worker_errors_become_one_notification_without_traceback(
    qtbot, viewer, content_image, style_image, monkeypatch, notes, error, expected
):
    # RuntimeErrors would be swallowed by superqt's worker (no errored/finished signal) if not wrapped
    monkeypatch.setattr(worker_module, "run_iter", fake_engine([(22, 32), (22, 32), (22, 32)], fail=error))
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    assert widget.run()
    wait_done(qtbot, widget, timeout=10_000)
    errors = [n for n in notes if n.severity >= NotificationSeverity.ERROR]
    assert len(errors) == 1 and errors[0].message.startswith(expected)
    assert not isinstance(errors[0], ErrorNotification)  # no "View traceback" notification
    assert widget.status.value.startswith("Failed: ")
    assert widget.run_button.enabled and not widget.stop_button.enabled
    (layer,) = result_layers(viewer)  # the previews so far are kept, marked as failed
    assert layer.name.endswith("(failed)") and layer.metadata["error"] == errors[0].message


def test_deleting_the_result_layer_stops_the_run(qtbot, viewer, content_image, style_image, monkeypatch):
    monkeypatch.setattr(worker_module, "run_iter", fake_engine([(22, 32)] * 200, delay=0.02))
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    assert widget.run()
    qtbot.waitUntil(lambda: len(shown_results(viewer)) == 1, timeout=10_000)
    viewer.layers.remove(result_layers(viewer)[0])
    assert widget._active is None or widget._active.stop.is_set()
    wait_done(qtbot, widget, timeout=10_000)
    assert result_layers(viewer) == []
    assert widget.status.value == "Stopped: the result layer was deleted."


def test_speed_controls_reach_the_config(viewer):
    """Precision defaults to auto; the torch.compile box (Advanced) reaches StyleConfig.compile."""
    widget = open_widget(viewer)
    assert widget.config_kwargs()["precision"] == "auto" and widget.config_kwargs()["compile"] is False
    widget.set_config(compile=True, precision="fp32")
    assert widget.compile.value is True
    kwargs = widget.config_kwargs()
    assert kwargs["compile"] is True and kwargs["precision"] == "fp32"
    assert StyleConfig(**kwargs).compile is True
