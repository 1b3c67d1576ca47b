"""Lazy and slow data in napari (issue 14): dask and zarr layers that fail while being read, that
are far larger than memory, that are slow, and that change or go away while being read.

Nothing here measures time: "the GUI thread is not blocked" is checked by recording which
thread computes each chunk (none may be computed on the GUI thread inside ``run()``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity
from widget_helpers import open_widget as open_dock

da = pytest.importorskip("dask.array")
try:
    import zarr
except ImportError:  # the zarr extra is not installed
    zarr = None
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 60_000


class Reads:
    """Which thread computed each chunk of the arrays made through :meth:`watch`; optionally slow or broken."""

    def __init__(self):
        self.threads: list[threading.Thread] = []
        self.blocks = 0
        self.broken = threading.Event()
        self.first = threading.Event()  # set by the first chunk computed off the GUI thread

    def watch(self, array):
        def read(block):
            self.threads.append(threading.current_thread())
            self.blocks += 1
            if threading.current_thread() is not threading.main_thread():
                self.first.set()
            if self.broken.is_set():
                raise OSError("the network share went away")
            return block

        return array.map_blocks(read, dtype=array.dtype)

    def on_gui_thread(self) -> int:
        return sum(t is threading.main_thread() for t in self.threads)


def open_widget(viewer, **config):
    return open_dock(viewer, **{**FAST, **config})


def run_and_wait(qtbot, widget, content, style, **kwargs):
    assert widget.run(content=content, styles=[(style, 1.0)], **kwargs)
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def errors(notes):
    return [n.message for n in notes if n.severity == NotificationSeverity.ERROR]


def mangled_zarr_layer(viewer, content_image, tmp_path):
    """A zarr-backed layer, drawn by napari, then one chunk file mangled on disk."""
    store = zarr.open_array(
        str(tmp_path / "z.zarr"), mode="w", shape=(43, 64), chunks=(16, 16), dtype="uint16"
    )
    store[:] = content_image[..., 0].astype(np.uint16) * 200
    data = zarr.open_array(str(tmp_path / "z.zarr"), mode="r")
    layer = viewer.add_image(data, name="zarr", contrast_limits=(0, 51000))
    chunk = next(p for p in (tmp_path / "z.zarr").rglob("*") if p.is_file() and p.name[0].isdigit())
    chunk.write_bytes(b"\x00garbage, not a compressed chunk")
    return layer


def test_layers_that_fail_while_being_read_are_one_notification_and_the_next_run_works(
    qtbot, viewer, content_image, style_image, notes, tmp_path
):
    reads = Reads()
    broken = viewer.add_image(
        reads.watch(da.from_array(content_image, chunks=(16, 16, 3))), name="share", rgb=True
    )
    style = viewer.add_image(style_image, name="style", rgb=True)
    layers = [broken]
    if zarr is not None:  # the zarr extra (in the test tools); without it the dask case still runs
        layers.append(mangled_zarr_layer(viewer, content_image, tmp_path))
    widget = open_widget(viewer)
    reads.broken.set()  # the share goes away after napari has drawn the layer
    for layer in layers:
        run_and_wait(qtbot, widget, layer, style)
    said = errors(notes)
    assert len(said) == len(layers), said  # one notification per run, a sentence each, no traceback
    assert said[0].startswith("Could not read layer 'share' — OSError: the network share went away")
    assert all(s.startswith(f"Could not read layer '{x.name}' — ") for s, x in zip(said, layers))
    assert [layer.name for layer in viewer.layers] == ["share", "style", *["zarr"][: len(layers) - 1]]
    good = viewer.add_image(content_image, name="cat", rgb=True)  # the GUI is still usable
    run_and_wait(qtbot, widget, good, style)
    assert viewer.layers[-1].name == "cat stylised" and viewer.layers[-1].metadata["done"]


def test_a_stack_far_larger_than_memory_reads_one_slice_of_a_small_level_or_is_refused(
    qtbot, viewer, style_image, notes
):
    reads = Reads()
    shape, levels = (10_000, 100_000, 100_000), []  # 100 TB of uint8, never there at once
    while shape[-1] >= 256:
        chunks = (1, min(shape[1], 4096), min(shape[2], 4096))
        levels.append(reads.watch(da.ones(shape, dtype=np.uint8, chunks=chunks) * 100))
        shape = (shape[0], shape[1] // 2, shape[2] // 2)
    stack = viewer.add_image(levels, multiscale=True, name="huge", contrast_limits=(0, 255))
    style = viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer)
    widget.stack_mode.value = "all"
    reads.threads.clear()
    assert not widget.run(content=stack, styles=[(style, 1.0)])  # every slice: refused, nothing read
    said = [n.message for n in notes]
    assert reads.threads == [] and len(said) == 1 and "reading it at this size needs about" in said[0]
    widget.stack_mode.value = "slice"
    viewer.dims.set_point(0, 1234)
    before = len(reads.threads)
    assert widget.run(content=stack, styles=[(style, 1.0)])
    assert (
        threading.main_thread() not in reads.threads[before:]
    )  # run() read nothing (the worker may have begun)
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    worker_reads = [t for t in reads.threads[before:] if t is not threading.main_thread()]
    assert 1 <= len(worker_reads) <= 4  # one slice of the smallest level that is big enough
    result = viewer.layers[-1]
    assert result.name == "huge stylised (slice 1234)" and result.data.shape == (1, 32, 32)
    assert result.metadata["done"]


def test_a_slow_lazy_stack_is_read_off_the_gui_thread_and_may_change_or_go_while_read(
    qtbot, viewer, content_image, style_image, notes
):
    reads, armed, gate = Reads(), threading.Event(), threading.Event()
    frames = np.stack([np.roll(content_image, 4 * i, axis=1) for i in range(3)])

    def slow(block):
        if armed.is_set():
            gate.wait(30)  # the read goes on until the test has changed the layer
        return block

    data = reads.watch(da.from_array(frames, chunks=(1, 16, 16, 3))).map_blocks(slow, dtype=np.uint8)
    lazy = viewer.add_image(data, name="lazy", rgb=True)
    style = viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer)
    widget.stack_mode.value = "all"
    widget.coherent.value = False
    armed.set()  # from now on, every chunk waits for the gate (napari has drawn the layer)
    before = reads.on_gui_thread()
    assert widget.run(content=lazy, styles=[(style, 1.0)])
    assert reads.on_gui_thread() == before  # run() computed no chunk: it would have waited 30 s
    assert reads.first.wait(30)  # the worker is reading
    lazy.data = np.zeros_like(frames)  # the layer changes while it is read…
    viewer.layers.remove(lazy)  # …and then goes away
    gate.set()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    result = viewer.layers["lazy stylised"]
    assert result.metadata["done"] and result.data.shape == (3, 22, 32, 3) and result.data.any()
    infos = [n.message for n in notes if n.severity == NotificationSeverity.INFO]
    assert infos == [
        "Layer 'lazy' was deleted during the run; the run goes on with the copy taken when Run was pressed."
    ]
    assert errors(notes) == []


def test_a_lazy_labels_mask_lists_its_labels_without_reading_on_the_gui_thread(
    qtbot, viewer, content_image, style_image
):
    reads = Reads()
    labels = np.zeros(content_image.shape[:2], dtype=np.int32)
    labels[:, 20:40], labels[:, 40:] = 3, 7
    viewer.add_image(content_image, name="cat", rgb=True)
    viewer.add_image(style_image, name="style", rgb=True)
    mask = viewer.add_labels(reads.watch(da.from_array(labels, chunks=(16, 16))), name="lazy mask")
    widget = open_widget(viewer)
    reads.threads.clear()  # what napari read to draw the layer is napari's
    widget.mask_layer.value = mask
    qtbot.waitUntil(lambda: "label_7" in [w.name for w in widget.label_table], timeout=TIMEOUT_MS)
    assert [w.label for w in widget.label_table] == ["label 0", "label 3", "label 7"]
    assert reads.threads and threading.main_thread() not in reads.threads
    blocks = reads.blocks
    widget.label_table.rebuild(mask, ["style"])  # a rebuild (e.g. a layer added) reads nothing again
    assert reads.blocks == blocks and len([w for w in widget.label_table if w.name.startswith("label_")]) == 3
