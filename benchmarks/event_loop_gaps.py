"""How long napari's event loop stalls while a run streams into the viewer (issue 26, part 3).

    xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/event_loop_gaps.py \
        --sizes 256 512 1024 --iterations 20 --json out/event_loop_gaps.json

One process, a real napari viewer (shown, under Xvfb) with the plugin's dock widget opened
through its manifest. A QTimer fires every 10 ms on the GUI thread and records how late each
tick is: a tick ``d`` ms late means the event loop was busy for about ``d`` ms. For each size a
2D run of the sample pair (first preview, previews, final layer), then a stack of 4 slices
filled slice by slice ("all slices"). Reported per run: the largest gap, p99, and how many gaps
exceed 100 ms; and, for the gaps over 50 ms, which of our GUI-thread slots overlapped them
(Run's turns: the checks, the activity-dock bar, the hidden result layer, the worker's start;
the widget's event slot, the result layer's ``show``, its creation, the bar's moves and the
finish), timed with wrappers installed here without changing the plugin (a slot this version
lacks is skipped). A gap no slot of ours overlaps is napari's or vispy's own (a draw, a texture
upload, the first shader, the layer list's paint after a layer is added).
The JSON is rewritten after every run, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import numpy as np

TICK_MS = 10


class TickRecorder:
    """A 10 ms QTimer on the GUI thread; each tick's lateness is how long the loop was busy."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[tuple[float, float]] = []  # (end time, lateness ms)
        self._last: float | None = None

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append((now, max(0.0, (now - self._last) * 1000 - TICK_MS)))
        self._last = now


class SlotTimes:
    """Wrappers around our GUI-thread slots that record (name, start, end) of each call."""

    def __init__(self):
        self.calls: list[tuple[str, float, float]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls.append((label, start, time.perf_counter()))

        setattr(owner, name, timed)

    def overlapping(self, end: float, lateness_ms: float) -> dict[str, float]:
        """ms of each slot inside the gap that ended at ``end``."""
        start = end - (lateness_ms + TICK_MS) / 1000
        out: dict[str, float] = {}
        for label, a, b in self.calls:
            inside = min(b, end) - max(a, start)
            if inside > 0:
                out[label] = round(out.get(label, 0.0) + inside * 1000, 1)
        return out


def summarise(gaps: list[tuple[float, float]], slots: SlotTimes) -> dict:
    late = [g for _, g in gaps] or [0.0]
    big = sorted(((g, t) for t, g in gaps if g > 50), reverse=True)[:8]
    return {
        "ticks": len(late),
        "max_ms": round(max(late), 1),
        "p99_ms": round(float(np.percentile(late, 99)), 1),
        "median_ms": round(statistics.median(late), 1),
        "over_100ms": sum(g > 100 for g in late),
        "largest": [{"ms": round(g, 1), "ours": slots.overlapping(t, g)} for g, t in big],
    }


def run_once(widget, app, recorder, slots, content, style, timeout_s: float = 900) -> dict:
    slots.calls.clear()
    recorder.start()
    assert widget.run(content, [(style, 1.0)]), widget.status.value
    deadline = time.monotonic() + timeout_s
    while widget.running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)
    for _ in range(30):  # the final layer's draw
        app.processEvents()
        time.sleep(0.01)
    recorder.stop()
    return {"status": widget.status.value, **summarise(recorder.gaps, slots)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--slices", type=int, default=4, help="slices of the stack run (0: none)")
    p.add_argument("--json", type=Path, default=Path("out/event_loop_gaps.json"))
    args = p.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_style_transfer._qt import results, worker
    from napari_style_transfer._qt import widget as widget_module

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    _, widget = viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    slots = SlotTimes()
    widget_class = widget_module.StyleTransferWidget
    for owner, name, label in [
        (widget_class, "_on_event", "widget._on_event"),
        (widget_class, "_on_finished", "widget._on_finished"),
        (widget_class, "run", "widget.run (Run pressed)"),
        (widget_class, "_open_progress", "widget._open_progress (Run's 2nd turn: the bar)"),
        (widget_class, "_insert_result", "widget._insert_result (Run's 3rd turn: the layer)"),
        (worker.ActiveRun, "start", "ActiveRun.start (Run's 4th turn: the worker)"),
        (worker.ActivityBar, "__init__", "ActivityBar created"),
        (results.ResultLayer, "show", "ResultLayer.show"),
        (results.ResultLayer, "_create", "ResultLayer._create (add_image)"),
        (results.ResultLayer, "insert_placeholder", "ResultLayer.insert_placeholder (hidden)"),
        (results.ResultLayer, "finish", "ResultLayer.finish"),
        (worker.ActivityBar, "advance", "ActivityBar.advance"),
    ]:
        if hasattr(owner, name):  # the slots of this version of the plugin
            slots.wrap(owner, name, label)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas  # napari's own draw, for attribution
    drawing: dict[str, float] = {}
    canvas.events.draw.connect(lambda _e: drawing.__setitem__("t", time.perf_counter()), position="first")
    canvas.events.draw.connect(
        lambda _e: slots.calls.append(("vispy draw (napari)", drawing.pop("t", 0.0), time.perf_counter())),
        position="last",
    )
    recorder = TickRecorder()
    report: dict = {"tick_ms": TICK_MS, "runs": []}
    args.json.parent.mkdir(parents=True, exist_ok=True)

    from napari_style_transfer.samples import sample_pair

    content, style = sample_pair()
    for size in args.sizes:
        for kind in ("2D", "stack") if args.slices else ("2D",):
            for layer in list(viewer.layers):
                viewer.layers.remove(layer)
            if kind == "2D":
                content_layer = viewer.add_image(content, name="content", rgb=True)
            else:
                stack = np.stack([np.roll(content, 3 * i, axis=1) for i in range(args.slices)])
                content_layer = viewer.add_image(stack, name="content", rgb=True)
            style_layer = viewer.add_image(style, name="style", rgb=True)
            widget.content_layer.value = content_layer
            widget.set_config(size=size, iterations=args.iterations, multiscale=False, preview_every=1)
            if kind == "stack":
                widget.stack_mode.value = "all"
            run = run_once(widget, app, recorder, slots, content_layer, style_layer)
            result = {"size": size, "kind": kind, **run}
            print(json.dumps({k: result[k] for k in ("size", "kind", "max_ms", "p99_ms", "over_100ms")}))
            report["runs"].append(result)
            args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    viewer.close()


if __name__ == "__main__":
    main()
