"""The widget's "Batch" choice in a real napari viewer, on a real (in-process) Dask cluster:
several layers and the slices of a stack, results as layers as they finish, Stop, a bad layer."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from napari.utils import progress
from widget_helpers import open_widget as open_dock

from napari_style_transfer.engine import StyleConfig, stylize

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=2, preview_every=0, multiscale=False, device="cpu", precision="fp32")
TIMEOUT_MS = 120_000


def open_widget(viewer, mode, **config):
    widget = open_dock(viewer, **{**FAST, **config})
    widget.batch.choice.value = mode
    return widget


def test_batch_of_selected_layers_reads_off_the_gui_thread_and_a_bad_layer_fails_alone(
    qtbot, viewer, content_image, style_image, notes
):
    reads: list[threading.Thread] = []
    broken = threading.Event()

    def record(block):
        reads.append(threading.current_thread())
        return block

    def fail(block):
        if broken.is_set():
            raise OSError("the network share went away")
        return block

    gray = (np.arange(36 * 40, dtype=np.uint16).reshape(36, 40) * 3) % 4000
    a = viewer.add_image(gray, name="a", contrast_limits=(0, 4000))
    b = viewer.add_image(
        da.from_array(content_image, chunks=(16, 16, 3)).map_blocks(record), name="b", rgb=True
    )
    bad = viewer.add_image(
        da.from_array(gray, chunks=(12, 40)).map_blocks(fail), name="bad", contrast_limits=(0, 4000)
    )
    style = viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, "layers")
    widget.style_rows[0].layer.value = style
    viewer.layers.selection = {a, b, bad, style}  # the style layer is left out
    broken.set()  # the dask layer 'bad' cannot be read any more (napari has drawn it already)
    reads.clear()
    assert widget.run()
    assert threading.main_thread() not in reads  # Run read nothing on the GUI thread
    bar = widget.batch.active.bar.progress
    assert bar in progress._all_instances and bar.total == 3  # the activity dock
    spinner = widget.batch.active.bar.spinner  # napari's animated indicator: held still, stepped per item
    assert spinner is not None and spinner.state() != spinner.MovieState.Running
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert bar not in progress._all_instances
    results = {layer.name: layer for layer in viewer.layers if layer.name.endswith("stylised")}
    assert sorted(results) == ["a stylised", "b stylised"]
    assert results["a stylised"].data.dtype == np.uint16 and results["b stylised"].data.shape == (22, 32, 3)
    assert results["a stylised"].metadata["batch"] == {"mode": "layers", "items": 3}
    # the same path as a single image: 'a' mapped with its own contrast limits
    config = StyleConfig(**FAST, contrast_limits=(0.0, 4000.0))
    np.testing.assert_array_equal(results["a stylised"].data, stylize(gray, [style_image], config))
    errors = [n for n in notes if n.severity == "error"]
    assert len(errors) == 1 and errors[0].message.startswith("Layer 'bad' was not stylised — ")
    assert errors[0].message.endswith("cannot read the content: OSError: the network share went away.")
    assert widget.status.value.startswith("Batch done: 2 done, 1 failed of 3")
    assert widget.run_button.enabled and not widget.stop_button.enabled


def test_batch_of_every_slice_fills_one_layer_and_stop_keeps_what_is_done(qtbot, viewer, style_image):
    stack = np.stack(
        [np.roll(np.arange(32 * 36, dtype=np.uint8).reshape(32, 36), 3 * i, axis=1) for i in range(5)]
    )
    viewer.add_image(stack, name="stack")
    viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, "slices", iterations=15)
    assert widget.run()
    qtbot.waitUntil(lambda: widget.batch.active.counts.get("done", 0) >= 1, timeout=TIMEOUT_MS)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    result = viewer.layers["stack stylised (stopped)"]
    assert result.data.shape == (5, 28, 32) and result.data.dtype == np.uint8
    done = result.metadata["slices_done"]
    filled = [i for i in range(5) if result.data[i].any()]
    assert 1 <= done < 5 and len(filled) == done  # finished slices kept, the others empty
    assert result.metadata["stopped"] and not result.metadata["done"]
    assert widget.status.value.startswith(f"Batch stopped: {done} done, {5 - done} cancelled of 5")


def test_batches_that_cannot_run_are_refused_in_one_sentence_before_anything_is_read(style_image):
    from napari.layers import Image, Labels

    from napari_style_transfer.plugin.batch_request import prepare_batch
    from napari_style_transfer.plugin.faults import UserError

    flat, style = Image(np.zeros((32, 32), np.uint8), name="flat"), Image(style_image, rgb=True, name="style")
    huge = Image(
        da.zeros((1_000_000, 2048, 2048), np.uint16, chunks=(1, 2048, 2048)),
        name="huge",
        contrast_limits=(0, 1),
    )
    styles, params = [(style, 1.0)], dict(FAST, size=512)
    cases = [
        ("slices", [flat], {}, "Batch 'every slice' needs a stack, and layer 'flat' is 2D"),
        ("layers", [], {}, "Batch: select the image layers to stylise in the layer list"),
        ("layers", [flat], {"mask_layer": Labels(np.zeros((32, 32), int))}, "A batch does not use a mask"),
        ("slices", [huge], {}, "Layer 'huge' has 1000000 slices; their results at 512×512 px need about"),
    ]
    for mode, layers, extra, message in cases:
        with pytest.raises(UserError, match=message.replace("(", r"\(")):
            prepare_batch(mode, layers, styles, params, **extra)
