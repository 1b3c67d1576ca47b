"""The widget's "Batch" choice: every selected image layer, or every slice of a stack, stylised
through the engine's ``stylize_batch`` (the CLI's batch path, Dask futures and all).

The batch runs on an embedded Dask cluster of ONE worker thread inside napari's process
(``BatchOptions(in_process=True)``), started when Run is pressed and closed at the end. In a
GUI that beats worker processes: the network is already in this process and is not loaded
again per process, results come back without being copied between processes, a stop reaches
the running item at once, and one item at a time already uses every torch thread (or the one
GPU). The CLI's ``batch`` is the tool for many processes or a cluster.

Run reads nothing on the GUI thread (``prepare_batch`` looks at shapes only); the widget's
worker thread reads the styles and drives the batch, and each content is read by the Dask
worker that stylises it; a style row's region is rasterised in the worker thread, as in a single
run. Results arrive as they finish: one layer per layer, or the slices of one nD layer. Stop (or
Cancel in the activity dock) keeps what is done; a layer that cannot be read or stylised is one
notification and the others finish.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from magicgui.widgets import ComboBox
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error

from ..batch import BatchOptions, BatchResult, stylize_batch
from ..plugin.batch_request import BatchRequest, batch_layers, prepare_batch
from ..plugin.faults import release_memory, run_device, run_failure
from ..plugin.run_request import RunChoices
from .controls import RunControls
from .folder_batch import FOLDER_MODE, FolderView
from .results import ResultLayer, unwrap
from .worker import (
    ActivityBar,
    BatchRun,
    RunFailed,
    StyleWorker,
    avoid_triton_llvm_clash,
    batch_failure,
    connect_worker,
    show_refusal,
)

logger = logging.getLogger(__name__)


def batch_events(
    request: BatchRequest, stop: threading.Event, finished: threading.Event
) -> Iterator[BatchResult | RunFailed]:
    """Runs in the widget's worker thread: read the styles, then the batch's results as items finish."""
    try:
        styles = request.read_styles()
        options = BatchOptions(in_process=True, retries=0, contrast_limits=request.limits)
        yield from stylize_batch(
            request.contents(),
            styles,
            request.config,
            options=options,
            guidance=request.guidance(),
            stop=stop,
        )
    except Exception as exc:
        details = None
        if not isinstance(exc, (ValueError, RuntimeError, MemoryError)):  # a bug: keep the details
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        yield RunFailed(run_failure(exc, request.style_request), details)  # see RunFailed
    finally:
        release_memory(run_device(request.style_request))
        finished.set()


_make_worker = thread_worker(batch_events, worker_class=StyleWorker, ignore_errors=True, start_thread=False)


class LayerBatchRun(BatchRun):
    """Book-keeping of a batch of layers or slices: as any batch's, plus its result layers."""

    def __init__(self, request: BatchRequest, viewer: Any):
        super().__init__()
        self.request = request
        self.failures: list[str] = []
        self.stack_result = ResultLayer(viewer, request.runs[0]) if request.mode == "slices" else None
        self.results: list[Any] = []


class BatchView:
    """The "Batch" row of the widget and the batch runs it starts.

    It is handed the viewer (the layers to stylise, the result layers) and the
    :class:`~.controls.RunControls` that single runs use too; what to run comes in as the
    widget's :class:`~napari_style_transfer.plugin.run_request.RunChoices`.
    """

    def __init__(self, viewer: Any, controls: RunControls):
        self.viewer = viewer
        self.controls = controls
        self.choice = ComboBox(
            label="Batch",
            choices=[
                ("off", None),
                ("selected layers", "layers"),
                ("every slice", "slices"),
                ("a folder…", FOLDER_MODE),
            ],
            value=None,
            tooltip="Stylise every image layer selected in the layer list, every slice of the content "
            "stack (no coherence), or the images of a folder into another folder, through a Dask worker",
        )
        #: "a folder…": its rows (shown only while it is chosen) and its runs.
        self.folder = FolderView(viewer, controls)
        # Qt's signal: magicgui's `changed` stays silent when the value becomes None ("off")
        self.choice.native.currentIndexChanged.connect(lambda *_: self.folder.show_rows(self.choice.value))
        self.rows = self.folder.rows
        self.active: LayerBatchRun | None = None
        self.closed = False

    @property
    def selected(self) -> bool:
        return self.choice.value is not None

    @property
    def running(self) -> bool:
        return self.active is not None or self.folder.running

    def start(self, choices: RunChoices) -> bool:
        """Check the choices (shapes only) and start the batch in the worker thread. False if it did not start."""
        viewer, mode = self.viewer, self.choice.value
        if mode == FOLDER_MODE:
            return self.folder.start(choices)
        styles = list(choices.styles)
        if mode == "slices":
            layers = [choices.content]
        else:
            layers = batch_layers(
                [unwrap(x) for x in viewer.layers.selection], styles, [unwrap(x) for x in viewer.layers]
            )
        try:
            request = prepare_batch(
                mode,
                layers,
                styles,
                choices.params,
                point=choices.point,
                mask_layer=choices.mask_layer,
                style_regions=choices.style_regions,
            )
        except Exception as exc:  # a UserError, a ConfigError, anything unexpected: one sentence
            show_refusal(exc)
            return False
        avoid_triton_llvm_clash()
        self._launch(request)
        return True

    def _launch(self, request: BatchRequest) -> None:
        run = self.active = LayerBatchRun(request, self.viewer)
        worker = _make_worker(request, run.stop, run.finished)
        connect_worker(worker, run.stop, self._on_result, self._on_error, self._on_finished)
        run.worker = worker
        what = (
            f"{request.total} layers"
            if request.mode == "layers"
            else f"{request.total} slices of {request.names[0]}"
        )
        run.bar = ActivityBar(
            self.viewer,
            request.total,
            f"Style transfer batch: {what}",
            lambda: self.stop("cancelled in the activity dock"),
        )
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.controls.begin(run, request.total, f"Batch: starting a Dask worker for {what}…")
        worker.start()

    def stop(self, reason: str | None = None) -> None:
        """Stop the batch: the running item ends after its current step; finished results stay."""
        self.folder.stop(reason)
        run = self.active
        if run is None:
            return
        run.request_stop(reason)
        self.controls.stopping("Stopping the batch after the current step…")

    def close(self) -> None:
        """The viewer or the panel went away: stop and wait a moment for the worker thread."""
        self.closed = True
        self.folder.close()
        run = self.active
        if run is not None:
            run.abandon()

    # ------------------------------------------------------------------ worker signals (GUI thread)

    def _on_result(self, result: BatchResult) -> None:
        run = self.active
        if run is None or self.closed:
            return
        run.counts[result.status] = run.counts.get(result.status, 0) + 1
        request = run.request
        if result.status == "done" and result.result is not None:
            self._show(run, result)
        elif result.status == "failed":
            name = request.item_name(result.index)
            if request.mode == "layers":
                show_error(f"Layer '{name}' was not stylised — {result.message.rstrip('.')}.")
            run.failures.append(f"{name}: {result.message}")
        self.controls.step(run.ended)
        if not run.stop.is_set():
            self.controls.say(f"Batch: {run.counts_text()} of {request.total}…")
        # last: napari's bar processes Qt events (the batch may end in there)
        if run.bar is not None:
            run.bar.advance(run.ended)

    def _show(self, run: LayerBatchRun, result: BatchResult) -> None:
        request = run.request
        if run.stack_result is not None:
            if not run.stack_result.show(result.result, request.slice_index(result.index)):
                self.stop("the result layer was deleted")
            return
        layer = ResultLayer(self.viewer, request.run_for(result.index))
        if layer.show(result.result):
            layer.finish(request.metadata(result.index, result.seconds))
            run.results.append(layer.layer)

    def _on_error(self, exc: BaseException) -> None:
        message = batch_failure(self.active, exc, "batch")
        if not self.closed:
            show_error(message)
            self.controls.say(f"Batch failed: {message}")

    def _on_finished(self) -> None:
        run, self.active = self.active, None
        with suppress(Exception):  # the viewer may be gone already
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        if run is None:
            return
        self.controls.end(run, redraw=not self.closed)
        run.close_progress()
        if self.closed:
            return
        request = run.request
        stopped = run.stop.is_set() or run.counts.get("cancelled", 0) > 0
        if run.stack_result is not None and run.stack_result.exists and not run.stack_result.gone:
            meta = request.metadata(0)
            meta.update(
                done=not stopped and not run.failures, stopped=stopped, slices_done=run.counts.get("done", 0)
            )
            run.stack_result.finish(meta, stopped=stopped)
        if request.mode == "slices" and run.failures:
            more = f" (and {len(run.failures) - 1} more)" if len(run.failures) > 1 else ""
            show_error(
                f"{len(run.failures)} of {request.total} slices were not stylised — {run.failures[0]}{more}."
            )
        if run.error is not None:
            return
        seconds = time.perf_counter() - run.started
        reason = f" ({run.stop_reason})" if run.stop_reason else ""
        head = f"Batch stopped{reason}" if stopped else "Batch done"
        self.controls.say(f"{head}: {run.counts_text()} of {request.total} in {seconds:.1f} s.")

    def _on_layer_removed(self, event: Any) -> None:
        run = self.active
        result = None if run is None or run.stack_result is None else run.stack_result.layer
        if result is not None and event.value is result:
            self.stop("the result layer was deleted")
