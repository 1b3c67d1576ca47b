"""Reliability of the dock widget in a real viewer: odd layers, faults, deletions, closing, Stop.

What must hold in every case: the user's layers are unchanged byte for byte (and no layer is
added but the result), the user gets one sentence as a napari notification, and no worker
thread is left behind. Real engine on tiny images (16-32 px, 1-4 iterations), faults
injected into the VGG network's forward pass. The cases are listed in docs/reliability.md.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from napari.utils.notifications import ErrorNotification, NotificationSeverity
from qtpy.QtCore import QThreadPool
from widget_helpers import open_widget as open_dock

import napari_style_transfer._qt.worker as worker_module
import napari_style_transfer.plugin.layers as layers_module
from napari_style_transfer.engine import vgg

FAST = dict(size=32, iterations=3, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 60_000


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def open_widget(viewer, **config):
    return open_dock(viewer, **{**FAST, **config})


def add_pair(viewer, content_image, style_image):
    return viewer.add_image(content_image, name="cat", rgb=True), viewer.add_image(
        style_image, name="style", rgb=True
    )


def wait_done(qtbot, widget, timeout=TIMEOUT_MS):
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def snapshot(viewer):
    """Names and copies of the data of every layer (multiscale: every level)."""
    out = []
    for layer in viewer.layers:
        data = (
            [np.array(level) for level in layer.data]
            if getattr(layer, "multiscale", False)
            else np.array(layer.data)
        )
        out.append((layer.name, data))
    return out


def assert_unchanged(viewer, before, added=()):
    """The layers in ``before`` are still there, byte for byte; the only new ones are ``added``."""
    names = [layer.name for layer in viewer.layers]
    assert names[: len(before)] == [name for name, _ in before]
    assert names[len(before) :] == list(added)
    for layer, (_, data) in zip(viewer.layers, before):
        if isinstance(data, list):
            for level, saved in zip(layer.data, data):
                np.testing.assert_array_equal(np.asarray(level), saved)
        else:
            np.testing.assert_array_equal(np.asarray(layer.data), data)


def messages(notes, severity=NotificationSeverity.WARNING):
    found = [n for n in notes if n.severity >= severity]
    for note in found:
        assert "\n" not in note.message and not isinstance(
            note, ErrorNotification
        )  # one sentence, no traceback
    return [n.message for n in found]


def wait_idle(qtbot, threads_before):
    """No worker left: the Qt pool is idle and the Python thread count is back to where it was."""
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=10_000)
    qtbot.waitUntil(lambda: threading.active_count() <= threads_before, timeout=10_000)


class Fault:
    """The VGG network raises ``error`` from its forward pass after ``after`` calls (then works again)."""

    def __init__(self, monkeypatch, error: BaseException, after: int):
        self.calls = 0
        real = vgg.VGGFeatures.forward

        def forward(net, x, names):
            self.calls += 1
            if self.calls == after + 1:
                raise error
            return real(net, x, names)

        monkeypatch.setattr(vgg.VGGFeatures, "forward", forward)


def record_previews(monkeypatch):
    """The previews the engine yields (seen from the worker thread)."""
    previews = []
    real = worker_module.run_iter

    def recording(*args, **kwargs):
        for event in real(*args, **kwargs):
            if event.preview is not None:
                previews.append(event.preview)
            yield event

    monkeypatch.setattr(worker_module, "run_iter", recording)
    return previews


# ---------------------------------------------------------------------------------------------


def test_layers_that_are_not_images_are_refused_as_content_and_as_style(
    viewer, content_image, style_image, notes
):
    content, style = add_pair(viewer, content_image, style_image)
    others = [
        viewer.add_labels(np.zeros((43, 64), np.int32), name="labels"),
        viewer.add_points(np.array([[5.0, 5.0]]), name="points"),
        viewer.add_shapes([np.array([[0, 0], [10, 10], [0, 10]])], shape_type="polygon", name="shapes"),
    ]
    widget = open_widget(viewer)
    before = snapshot(viewer)
    for other in others:
        kind = type(other).__name__
        for role, call in [("content", dict(content=other)), ("style", dict(styles=[(other, 1.0)]))]:
            notes.clear()
            assert widget.run(**call) is False and not widget.running
            assert messages(notes) == [
                f"Layer '{other.name}' is a {kind} layer; choose an Image layer as the {role}."
            ]
    notes.clear()
    assert widget.run(content=content, styles=[(content, 1.0)]) is False
    assert messages(notes) == [
        "Layer 'cat' is chosen as both the content and a style; choose a different style layer."
    ]
    assert_unchanged(viewer, before)


def test_tiny_and_thin_images_are_upscaled_and_laid_over_the_content(qtbot, viewer, style_image, notes):
    style = viewer.add_image(style_image, name="style", rgb=True)
    rng = np.random.default_rng(0)
    cases = [
        ("1x1", rng.integers(0, 255, (1, 1, 3), dtype=np.uint8), None, (16, 16, 3)),
        ("3x3", rng.random((3, 3)).astype(np.float32), None, (16, 16)),
        ("16x16", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), None, (16, 16, 3)),
        ("4000x3", rng.integers(0, 255, (4000, 3), dtype=np.uint16), 64, (64, 16)),
    ]
    widget = open_widget(viewer, iterations=1)
    for name, data, size, expected in cases:
        layer = viewer.add_image(data, name=name, rgb=data.ndim == 3, translate=(5.0, -2.0))
        before = snapshot(viewer)
        widget.set_config(size=size)
        assert widget.run(content=layer, styles=[(style, 1.0)])
        wait_done(qtbot, widget)
        result = viewer.layers[-1]
        assert (
            result.name == f"{name} stylised"
            and result.data.shape == expected
            and result.data.dtype == data.dtype
        )
        h, w = data.shape[:2]
        hr, wr = expected[:2]
        np.testing.assert_allclose(
            layer.data_to_world((h - 0.5, w - 0.5)), result.data_to_world((hr - 0.5, wr - 0.5))
        )
        assert_unchanged(viewer, before, added=[result.name])
    assert messages(notes) == []


VALUES = {
    "nan and inf": lambda b: np.where(b > 0.9, np.nan, np.where(b < 0.05, np.inf, b * 100 - 20)).astype(
        np.float32
    ),
    "constant": lambda b: np.full(b.shape, 7.0, np.float64),
    "bool": lambda b: b > 0.5,
    "int8": lambda b: (b * 255 - 128).astype(np.int8),
    "int16": lambda b: (b * 60000 - 30000).astype(np.int16),
    "int32": lambda b: (b * 4e9 - 2e9).astype(np.int32),
    "int64": lambda b: (b * 1e15 - 5e14).astype(np.int64),
    "uint16 small range": lambda b: (2000 + b * 30).astype(np.uint16),
    "float above 1": lambda b: (b * 4000).astype(np.float32),
    "negative": lambda b: (-b * 2 - 5).astype(np.float64),
    "rgb float": lambda b: np.stack([b, b**2, 1 - b], axis=-1).astype(np.float32),
    "rgba uint16": lambda b: (np.stack([b, b, b, 1 - b], axis=-1) * 65535).astype(np.uint16),
}


def test_any_real_values_run_and_keep_their_dtype(qtbot, viewer, style_image, notes):
    style = viewer.add_image(style_image, name="style", rgb=True)
    base = np.random.default_rng(1).random((20, 28))
    widget = open_widget(viewer, iterations=1, size=16)
    for name, make in VALUES.items():
        data = make(base)
        layer = viewer.add_image(data, name=name, rgb=data.ndim == 3)
        before = snapshot(viewer)
        assert widget.run(content=layer, styles=[(style, 1.0)]), messages(notes)
        wait_done(qtbot, widget)
        result = viewer.layers[-1]
        assert result.name == f"{name} stylised", messages(notes)
        assert result.data.dtype == data.dtype and result.data.shape[2:] == data.shape[2:]
        if data.dtype.kind == "f":
            assert np.isfinite(result.data).all()
        assert_unchanged(viewer, before, added=[result.name])
    assert messages(notes) == []


def test_channels_and_stacks(qtbot, viewer, style_image, notes):
    style = viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, iterations=1)
    two = viewer.add_image(np.zeros((43, 64, 2), np.uint8), name="two", rgb=False)
    stack = viewer.add_image(np.zeros((6, 32, 32), np.float32), name="stack")
    before = snapshot(viewer)
    notes.clear()
    assert widget.run(content=two, styles=[(style, 1.0)]) is False
    (message,) = messages(notes)
    assert "slices are too small" in message and "channel_axis=2" in message
    assert_unchanged(viewer, before)
    # a stack is stylised slice by slice (the slice shown, by default)
    assert widget.run(content=stack, styles=[(style, 1.0)])
    wait_done(qtbot, widget)
    assert viewer.layers[-1].name.startswith("stack stylised") and viewer.layers[-1].data.shape[0] == 1
    viewer.layers.remove(viewer.layers[-1])
    # with channel_axis napari splits the channels into layers; each one is a 2D image
    channels = viewer.add_image(
        np.random.default_rng(2).random((5, 24, 30)).astype(np.float32), channel_axis=0, name=list("abcde")
    )
    assert len(channels) == 5
    notes.clear()
    assert widget.run(content=channels[3], styles=[(style, 1.0)])
    wait_done(qtbot, widget)
    assert viewer.layers[-1].name == "d stylised" and viewer.layers[-1].data.shape == (26, 32)
    assert messages(notes) == []


def test_pyramids_and_dask_layers_read_only_what_is_needed(qtbot, viewer, style_image, notes):
    da = pytest.importorskip("dask.array")
    base = da.random.default_rng(3).integers(0, 255, (1024, 1536, 3), dtype=np.uint8, chunks=(256, 256, 3))
    levels = [base]
    for _ in range(3):
        levels.append(levels[-1][::2, ::2])
    pyramid = viewer.add_image(levels, multiscale=True, rgb=True, name="pyramid", scale=(0.5, 0.5))
    lazy = viewer.add_image(base, rgb=True, name="lazy")
    style = viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, iterations=1)
    for layer in (pyramid, lazy):
        assert widget.run(content=layer, styles=[(style, 1.0)])
        wait_done(qtbot, widget)
        result = viewer.layers[-1]
        # 21×32 from the pyramid's 128×192 level; the lazy layer is first reduced by 3×3 block
        # means (a 43×64 image: its last, cut-off block row rounds the output up to 22 rows)
        assert result.name == f"{layer.name} stylised" and result.data.shape in ((21, 32, 3), (22, 32, 3))
        # the result covers the full-resolution data
        hr, wr = result.data.shape[:2]
        np.testing.assert_allclose(
            layer.data_to_world((1023.5, 1535.5)), result.data_to_world((hr - 0.5, wr - 0.5))
        )
    assert viewer.layers[-2].metadata["content_layer"] == "pyramid"
    assert messages(notes) == []


def test_a_size_beyond_the_memory_is_refused_with_the_largest_size_that_fits(
    qtbot, viewer, content_image, style_image, notes, monkeypatch
):
    import napari_style_transfer.engine.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 2 * 2**30)
    add_pair(viewer, content_image, style_image)
    before = snapshot(viewer)
    widget = open_widget(viewer, size=8192)
    assert widget.run()
    wait_done(qtbot, widget)
    (message,) = messages(notes)
    assert message.startswith("Not enough memory — size: 8192 px needs about")
    largest = int(message.rsplit("set the output size to ", 1)[1].split(" px")[0])
    assert 16 <= largest < 8192 and f"the largest size that fits is about {largest} px" in message
    assert widget.status.value == f"Failed: {message}"
    assert_unchanged(viewer, before)  # no result layer: nothing was computed


def test_a_layer_too_big_to_read_is_refused_before_the_run(
    viewer, content_image, style_image, notes, monkeypatch
):
    monkeypatch.setattr(layers_module, "free_host_memory", lambda: 100_000)
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, size=None)
    before = snapshot(viewer)
    assert widget.run() is False
    (message,) = messages(notes)
    assert message.startswith("Layer 'cat' is 64×43 px; reading it at this size needs about")
    assert_unchanged(viewer, before)


@pytest.mark.parametrize("source", ["corrupted embedded", "torchvision offline", "corrupted file"])
def test_weights_that_cannot_load_are_one_sentence_and_the_next_run_works(
    qtbot, viewer, content_image, style_image, notes, monkeypatch, tmp_path, source
):
    vgg.clear_network_cache()
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, iterations=1)
    bad = tmp_path / "vgg19.pth"
    bad.write_bytes(b"not weights at all")
    if source == "corrupted embedded":
        monkeypatch.setattr(vgg, "embedded_weights_path", lambda: bad)
        expected = "Could not load the VGG-19 weights — embedded VGG-19 weights at"
    elif source == "torchvision offline":
        import urllib.error

        pytest.importorskip("torchvision")  # an extra; without it the sentence says what to install

        monkeypatch.setenv("TORCH_HOME", str(tmp_path))
        monkeypatch.setattr(
            torch.hub, "urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline"))
        )
        widget.set_config(weights="torchvision")
        expected = "Could not load the VGG-19 weights — could not download torchvision's VGG-19 weights (are you offline?)"
    else:
        widget.set_config(weights=str(bad))
        expected = (
            f"Could not load the VGG-19 weights — weights file {bad} could not be read as a torch state dict"
        )
    before = snapshot(viewer)
    try:
        assert widget.run()
        wait_done(qtbot, widget)
        (message,) = messages(notes)
        assert message.startswith(expected)
        assert_unchanged(viewer, before)
    finally:
        monkeypatch.undo()
        vgg.clear_network_cache()
    widget.set_config(weights="embedded")
    assert widget.run()
    wait_done(qtbot, widget)
    assert viewer.layers[-1].name == "cat stylised" and widget.status.value.startswith("Done")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)"),
            "Not enough memory — the run at 32×22 px ran out of memory on cpu; the largest size that fits is about 16 px: set the output size to 16 px or less.",
        ),
        (KeyError("boom"), "Style transfer failed unexpectedly (KeyError: 'boom')."),
    ],
    ids=["out of memory", "bug"],
)
def test_a_fault_mid_run_keeps_the_partial_result_and_the_next_run_works(
    qtbot, viewer, content_image, style_image, notes, monkeypatch, caplog, error, expected
):
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, iterations=50)
    assert widget.run()  # warm-up: the thread pool's thread exists from now on
    wait_done(qtbot, widget)
    threads = threading.active_count()
    viewer.layers.remove(viewer.layers[-1])
    before = snapshot(viewer)
    previews = record_previews(monkeypatch)
    Fault(monkeypatch, error, after=2 + 6)  # content and style targets, then 6 steps; the 7th fails
    assert widget.run()
    wait_done(qtbot, widget)
    assert messages(notes) == [expected]
    assert widget.status.value == f"Failed: {expected}" and widget.run_button.enabled
    # an unexpected error is a bug: its traceback goes to the log (not to the user)
    assert ("Traceback" in caplog.text and "KeyError: 'boom'" in caplog.text) == isinstance(error, KeyError)
    (layer,) = viewer.layers[2:]
    assert layer.name == "cat stylised (failed)"
    assert len(previews) == 6
    np.testing.assert_array_equal(layer.data, previews[-1])  # the newest preview is kept
    meta = layer.metadata
    assert meta["failed"] is True and meta["partial"] is True and meta["error"] == expected
    assert meta["steps"] == 6 and meta["done"] is False and meta["stopped"] is False
    assert_unchanged(viewer, before, added=[layer.name])
    wait_idle(qtbot, threads)
    # the fault is gone: the next run works
    monkeypatch.undo()
    widget.set_config(iterations=2)
    assert widget.run()
    wait_done(qtbot, widget)
    assert viewer.layers[-1].name == "cat stylised" and widget.status.value.startswith("Done: 2 steps")
    wait_idle(qtbot, threads)


def test_deleting_the_content_and_style_mid_run_goes_on_with_the_copies(
    qtbot, viewer, content_image, style_image, notes
):
    content, style = add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, iterations=40)
    assert widget.run()
    # the first preview (the result layer is hidden until then)
    qtbot.waitUntil(lambda: len(viewer.layers) == 3 and viewer.layers[-1].visible, timeout=TIMEOUT_MS)
    viewer.layers.remove(content)
    viewer.layers.remove(style)
    wait_done(qtbot, widget)
    assert messages(notes, NotificationSeverity.INFO) == [
        "Layer 'cat' was deleted during the run; the run goes on with the copy taken when Run was pressed.",
        "Layer 'style' was deleted during the run; the run goes on with the copy taken when Run was pressed.",
    ]
    (result,) = viewer.layers
    assert result.name == "cat stylised" and result.metadata["done"] and result.metadata["steps"] == 40
    assert widget.status.value.startswith("Done: 40 steps")


def test_closing_the_viewer_mid_run_leaves_no_thread(
    qtbot, make_napari_viewer, content_image, style_image, notes
):
    threads = threading.active_count()
    viewer = make_napari_viewer()
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, iterations=500)
    assert widget.run()
    run = widget._active
    qtbot.waitUntil(lambda: len(viewer.layers) == 3 and viewer.layers[-1].visible, timeout=TIMEOUT_MS)
    viewer.close()
    qtbot.waitUntil(run.finished.is_set, timeout=20_000)
    wait_idle(qtbot, threads + 1)  # the pool keeps one idle thread for a while
    assert messages(notes) == []


def test_closing_the_viewer_right_after_run_is_silent(
    qtbot, make_napari_viewer, content_image, style_image, notes
):
    """Closing removes every layer (the run's inputs too) before the window goes: no notification."""
    viewer = make_napari_viewer()
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, iterations=500)
    assert widget.run()
    run = widget._active
    viewer.close()
    qtbot.waitUntil(run.finished.is_set, timeout=20_000)
    qtbot.wait(50)  # a notification deferred to the next turn of the event loop would show by now
    assert messages(notes) == []


def test_stop_pressed_50_times_across_start_stop_cycles(qtbot, viewer, content_image, style_image, notes):
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, iterations=500)
    assert widget.run()  # warm-up
    widget.stop()
    wait_done(qtbot, widget)
    threads = threading.active_count()
    before = snapshot(viewer)
    presses = 0
    for cycle in range(25):
        assert widget.run()
        widget.run_button.native.click()  # Run while running: ignored
        assert widget.run() is False
        if cycle % 2:  # let a step or two happen first
            qtbot.waitUntil(
                lambda: widget._active is None or widget._active.last_event is not None, timeout=TIMEOUT_MS
            )
        for _ in range(2):
            widget.stop()  # the second press is a no-op while stopping
            presses += 1
        wait_done(qtbot, widget)
        widget.stop()  # Stop with nothing running
    assert presses == 50
    wait_idle(qtbot, threads)
    assert messages(notes) == []
    results = [layer for layer in viewer.layers if layer.name.startswith("cat stylised")]
    assert all("(stopped)" in layer.name and layer.metadata["stopped"] for layer in results)
    assert_unchanged(viewer, before, added=[layer.name for layer in results])
    # still works
    widget.set_config(iterations=2)
    assert widget.run()
    wait_done(qtbot, widget)
    assert widget.status.value.startswith("Done: 2 steps")


def test_a_fixed_seed_gives_the_same_result_twice(qtbot, viewer, content_image, style_image):
    add_pair(viewer, content_image, style_image)
    widget = open_widget(viewer, iterations=3, seed=11)
    widget.init.value = "noise"
    for _ in range(2):
        assert widget.run()
        wait_done(qtbot, widget)
    first, second = viewer.layers[-2:]
    np.testing.assert_array_equal(first.data, second.data)
