"""The run's thread in a real napari viewer: layers read in the worker, progress in the activity dock."""

from __future__ import annotations

import time

import numpy as np
import pytest
from napari.utils import progress
from widget_helpers import open_widget as open_dock

import napari_style_transfer._qt.worker as worker_module
from napari_style_transfer._qt.worker import RunProgress

FAST = dict(size=32, iterations=3, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def open_widget(viewer, **config):
    return open_dock(viewer, **{**FAST, **config})


def wait_done(qtbot, widget, timeout=TIMEOUT_MS):
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def run_bar(qtbot, widget):
    """The run's ActivityBar: Run opens it in a later turn of the event loop than its checks."""
    run = widget._active
    qtbot.waitUntil(lambda: run.bar is not None, timeout=5_000)
    return run.bar


def activity_bar(viewer, prog):
    """The activity dock's bar of a ``napari.utils.progress`` (None if there is none)."""
    return viewer.window._qt_window._activity_dialog.get_pbar_from_prog(prog)


def test_a_slow_lazy_layer_is_read_in_the_worker_not_in_run(qtbot, viewer, style_image):
    da = pytest.importorskip("dask.array")

    def slow(block):
        time.sleep(0.05)
        return block

    base = np.random.default_rng(0).integers(0, 255, (512, 512), dtype=np.uint8)
    lazy = da.from_array(base, chunks=(64, 64)).map_blocks(slow, dtype=np.uint8)  # 64 slow chunks
    start = time.perf_counter()
    np.asarray(lazy)
    read_s = time.perf_counter() - start
    content = viewer.add_image(lazy, name="lazy", contrast_limits=(0, 255))
    style = viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, iterations=2)
    start = time.perf_counter()
    assert widget.run(content=content, styles=[(style, 1.0)])
    run_s = time.perf_counter() - start
    assert run_s < read_s / 4, f"run() blocked {run_s:.2f} s; reading the layer takes {read_s:.2f} s"
    wait_done(qtbot, widget)
    result = viewer.layers[-1]
    assert result.name == "lazy stylised" and result.metadata["done"] and result.data.shape == (32, 32)


def test_a_run_shows_its_progress_in_the_activity_dock(qtbot, viewer, content_image, style_image):
    viewer.add_image(content_image, name="cat", rgb=True)
    viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, iterations=4)
    assert widget.run()
    bar = run_bar(qtbot, widget).progress
    assert isinstance(bar, RunProgress) and bar in progress._all_instances and bar.total == 4
    shown = activity_bar(viewer, bar)
    assert shown is not None and shown.description_label.text().startswith("Style transfer: cat stylised")
    values = []
    shown.qt_progress_bar.valueChanged.connect(values.append)
    # napari's "in progress" animation: held still, stepped with the bar
    spinner = run_bar(qtbot, widget).spinner
    assert spinner is not None and spinner.state() != spinner.MovieState.Running
    wait_done(qtbot, widget)
    assert values and values == sorted(values) and values[-1] == 4  # redrawn a few times a second, to the end
    assert bar not in progress._all_instances  # closed at the end, and its bar goes away
    qtbot.waitUntil(lambda: activity_bar(viewer, bar) is None, timeout=5_000)


def test_cancel_in_the_activity_dock_stops_the_run(qtbot, viewer, content_image, style_image):
    viewer.add_image(content_image, name="cat", rgb=True)
    viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer, iterations=500)
    assert widget.run()
    bar = run_bar(qtbot, widget).progress
    qtbot.waitUntil(lambda: bar.n >= 2, timeout=TIMEOUT_MS)
    activity_bar(viewer, bar).cancel_button.click()
    assert not widget.stop_button.enabled
    wait_done(qtbot, widget)
    result = viewer.layers[-1]
    assert result.name == "cat stylised (stopped)" and result.metadata["steps"] < 500
    assert widget.status.value.startswith("Stopped (cancelled in the activity dock) at step")
    assert bar not in progress._all_instances


def test_the_bar_closes_when_the_run_fails(qtbot, viewer, content_image, style_image, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")
        yield  # a generator

    monkeypatch.setattr(worker_module, "run_iter", failing)
    viewer.add_image(content_image, name="cat", rgb=True)
    viewer.add_image(style_image, name="style", rgb=True)
    widget = open_widget(viewer)
    assert widget.run()
    errored = []
    widget._active.worker.errored.connect(errored.append)
    bar = run_bar(qtbot, widget).progress
    wait_done(qtbot, widget)
    assert widget.status.value.startswith("Failed: Not enough memory")
    # The failure is the last event, never `errored`: napari 0.9 connects `errored` to a slot
    # PySide6 calls with one argument too many, a TypeError in the event loop under PySide6.
    assert errored == []
    assert bar not in progress._all_instances
    qtbot.waitUntil(lambda: activity_bar(viewer, bar) is None, timeout=5_000)


def test_the_bar_moves_in_a_later_turn_and_at_most_a_few_times_a_second(qtbot, viewer):
    """napari's bar processes Qt events when it moves (30–60 ms under software OpenGL): never
    inside the slot that asked (the first preview's new layer), and not at every step."""
    from napari_style_transfer._qt.worker import BAR_INTERVAL_S, ActivityBar

    bar = ActivityBar(viewer, total=1000, desc="test", on_cancel=lambda: None)
    moves = []
    bar.progress.events.value.connect(lambda event: moves.append(event.value))
    bar.advance(1)
    assert bar.progress.n == 0  # not yet: in a later turn of the event loop
    qtbot.waitUntil(lambda: bar.progress.n == 1, timeout=5_000)
    start = time.monotonic()
    step = 1
    while time.monotonic() - start < 4 * BAR_INTERVAL_S:
        step += 1
        bar.advance(step)
        qtbot.wait(5)
    assert len(moves) <= 1 + 5, moves  # about one move per BAR_INTERVAL_S, not one per step
    assert moves == sorted(moves)
    bar.advance(step + 1)
    bar.close()  # a move still waiting is made before the bar closes: it ends where the run did
    assert moves[-1] == step + 1
