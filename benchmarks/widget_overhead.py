"""What a run started from the dock widget costs on top of the same ``stylize()`` call.

    xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/widget_overhead.py \
        --size 256 --iterations 60 --previews 10 1 --pairs 3 --json widget_overhead.json

One process, a real napari viewer (shown, under Xvfb) with the plugin's dock widget opened
through its manifest and the sample pair as layers. For each preview interval, one warm-up
of each kind, then ``--pairs`` interleaved pairs: (a) ``stylize()`` with the widget's settings
on the GUI thread, (b) Run pressed in the widget, timed until the worker's ``finished`` signal
(the result layer then holds the final image), Qt's own event loop running meanwhile.
Both use the engine's default torch threads. The medians and their ratio are printed.

For the widget runs the script also times, without changing the plugin (wrappers installed
here): the engine's own time (inside ``run_iter``), the worker's time between the engine's
events (signal emission, saved previews), the delivery delay of each event to the GUI thread,
the GUI-thread slots (the whole ``_on_event``, and within it the result layer's ``show``, the
status line and the activity dock's bar), vispy's canvas draws, and the CPU time of each kind
of thread (GUI thread, Mesa llvmpipe threads, the rest: worker and torch threads) from
``/proc/self/task``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by each kind of thread: gui (this one), llvmpipe, other."""
    out: dict[str, float] = defaultdict(float)
    main = threading.main_thread().native_id
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / CLK
        kind = "gui" if int(tid) == main else "llvmpipe" if comm.startswith("llvmpipe") else "other"
        out[kind] += seconds
    return out


class Probe:
    """Sums of times (seconds) and counts, by name; reset per run."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.sent: dict[int, float] = {}
        self.delays: list[float] = []

    def add(self, name: str, seconds: float) -> None:
        self.total[name] += seconds
        self.count[name] += 1

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)

        return timed


PROBE = Probe()


def instrument(widget, viewer) -> None:
    """Timers around the plugin's pieces (wrappers only: the plugin's code runs unchanged)."""
    import napari_style_transfer._qt.worker as worker_module
    from napari_style_transfer._qt import results, worker

    engine_run_iter = worker_module.run_iter

    def timed_run_iter(*args, **kwargs):
        events = iter(engine_run_iter(*args, **kwargs))
        while True:
            start = time.perf_counter()
            try:
                event = next(events)
            except StopIteration:
                return
            PROBE.add("engine (worker thread)", time.perf_counter() - start)
            sent = time.perf_counter()
            PROBE.sent[id(event)] = sent
            yield event
            PROBE.add("worker between events", time.perf_counter() - sent)

    worker_module.run_iter = timed_run_iter
    on_event = widget._on_event

    def timed_on_event(event):
        sent = PROBE.sent.pop(id(event), None)
        if sent is not None:
            PROBE.delays.append(time.perf_counter() - sent)
        start = time.perf_counter()
        try:
            on_event(event)
        finally:
            PROBE.add("GUI: _on_event (all)", time.perf_counter() - start)

    widget._on_event = timed_on_event
    widget._set_status = PROBE.wrap("GUI: status line", widget._set_status)
    results.ResultLayer.show = PROBE.wrap("GUI: result layer show", results.ResultLayer.show)
    worker.ActiveRun.advance = PROBE.wrap("GUI: activity bar", worker.ActiveRun.advance)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    draw = {}
    canvas.events.draw.connect(lambda _e: draw.__setitem__("t", time.perf_counter()), position="first")
    canvas.events.draw.connect(
        lambda _e: PROBE.add("GUI: vispy draw", time.perf_counter() - draw.pop("t", time.perf_counter())),
        position="last",
    )


def widget_run(widget, app) -> float:
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    start = time.perf_counter()
    widget.run_button.native.click()
    run = widget._active
    if run is None:
        raise SystemExit(f"the run did not start: {widget.status.value}")
    run.worker.finished.connect(loop.quit)
    QTimer.singleShot(900_000, loop.quit)
    loop.exec()
    seconds = time.perf_counter() - start
    if widget.running or "Done" not in widget.status.value:
        raise SystemExit(f"the run did not finish: {widget.status.value}")
    return seconds


def measure_case(widget, app, pair, config, every: int, warm_up: bool, pairs: int) -> dict:
    """Interleaved pairs (``stylize()``, then Run in the widget) at one preview interval, and their medians."""
    from napari_style_transfer.engine import stylize

    content, style = pair
    times: dict[str, list[float]] = {"stylize": [], "widget": []}
    parts: list[dict] = []
    for i in range(0 if warm_up else 1, pairs + 1):
        start = time.perf_counter()
        stylize(content, style, config)
        stylize_s = time.perf_counter() - start
        app.processEvents()
        PROBE.reset()
        cpu0 = thread_cpu()
        widget_s = widget_run(widget, app)
        cpu1 = thread_cpu()
        app.processEvents()
        if i == 0:  # warm-up
            continue
        times["stylize"].append(stylize_s)
        times["widget"].append(widget_s)
        cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
        parts.append(
            {
                **{k: round(v, 3) for k, v in PROBE.total.items()},
                **{f"n {k}": v for k, v in PROBE.count.items()},
                "delivery delay median ms": round(1000 * statistics.median(PROBE.delays or [0]), 2),
                "delivery delay max ms": round(1000 * max(PROBE.delays or [0]), 2),
                **{f"cpu {k}": round(v, 2) for k, v in cpu.items()},
                "load": round(os.getloadavg()[0], 2),
            }
        )
        print(
            f"preview_every={every} pair {i}: stylize {stylize_s:.2f} s, widget {widget_s:.2f} s "
            f"({widget_s / stylize_s:.3f}x), load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    a, b = statistics.median(times["stylize"]), statistics.median(times["widget"])
    part = {k: statistics.median(p.get(k, 0) for p in parts) for k in parts[0]}
    print(f"preview_every={every}: stylize {a:.2f} s, widget {b:.2f} s, ratio {b / a:.3f}")
    for k, v in part.items():
        print(f"    {k}: {v}")
    return {
        "preview_every": every,
        "times": times,
        "stylize_s": a,
        "widget_s": b,
        "ratio": b / a,
        "breakdown_median": part,
    }


def open_viewer(pair):
    """A shown viewer with the pair as layers and the plugin's dock widget, opened through its manifest."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_style_transfer._qt.worker import avoid_triton_llvm_clash

    content, style = pair
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 860)
    viewer.add_image(content, name="cat (content)", rgb=True)
    viewer.add_image(style, name="swirls (style)", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    app = QApplication.instance()
    app.processEvents()
    avoid_triton_llvm_clash()  # as the widget does before its first run (Mesa's LLVM vs triton's)
    instrument(widget, viewer)
    return viewer, widget, app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--previews", type=int, nargs="+", default=[10, 1], help="preview_every values")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--single-scale", action="store_true", help="multiscale=False (default: multiscale)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from napari_style_transfer.samples import sample_pair

    pair = sample_pair()
    viewer, widget, app = open_viewer(pair)

    import torch

    from napari_style_transfer.engine import StyleConfig

    fields = {f.name for f in dataclasses.fields(StyleConfig)}
    report = {
        "size": args.size,
        "iterations": args.iterations,
        "multiscale": not args.single_scale,
        "torch_threads": torch.get_num_threads(),
        "load_before": os.getloadavg(),
        "cases": [],
    }
    print(f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}", flush=True)
    for every in args.previews:
        widget.set_config(
            size=args.size,
            iterations=args.iterations,
            preview_every=every,
            multiscale=not args.single_scale,
            device="cpu",
        )
        config = StyleConfig(**{k: v for k, v in widget.config_kwargs().items() if k in fields})
        warm_up = every == args.previews[0]  # one warm-up pair, before the first case
        report["cases"].append(measure_case(widget, app, pair, config, every, warm_up, args.pairs))
    report["load_after"] = os.getloadavg()
    if args.json:
        from common import write_report

        write_report(args.json, report)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
