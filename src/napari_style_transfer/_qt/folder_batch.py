"""The widget's Batch choice "a folder…": the images of a folder (or a glob pattern) stylised into an
output folder, as the CLI's ``napari-style-transfer batch IN -o OUT`` does it (same inputs, same
outputs, same ``batch-report.json``, the same resume: a second Run skips what these settings made).

Rows: the input folder or pattern, the output folder, the output format with "redo finished",
and how many of the first results to open as layers (the folder may hold thousands: only those
are read back). Run checks the paths only (``plugin/folder_request.py``); the worker thread
lists the images and drives ``stylize_batch`` on one in-process Dask worker, like the other
batch modes. Progress goes to the status line, the bar and the activity dock; Stop keeps the
finished files (the engine removes partial ones); failed images are named in ONE notification
at the end, with the report's path.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, SpinBox
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error

from ..batch import BatchResult
from ..plugin.faults import release_memory, run_device
from ..plugin.folder_request import FolderRequest, FolderStart, folder_events, folder_failure, prepare_folder
from ..plugin.run_request import RunChoices
from .controls import RunControls
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

#: The Batch combo's value for this mode.
FOLDER_MODE = "folder"


def folder_worker_events(
    request: FolderRequest, stop: threading.Event, finished: threading.Event
) -> Iterator[FolderStart | BatchResult | RunFailed]:
    """Runs in the widget's worker thread: :func:`folder_events`, its errors wrapped in RunFailed."""
    try:
        yield from folder_events(request, stop)
    except Exception as exc:
        details = None
        if not isinstance(exc, (ValueError, RuntimeError, MemoryError)):  # a bug: keep the details
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        yield RunFailed(folder_failure(exc, request), details)  # see RunFailed
    finally:
        release_memory(run_device(request))
        finished.set()


make_folder_worker = thread_worker(
    folder_worker_events, worker_class=StyleWorker, ignore_errors=True, start_thread=False
)


class FolderRun(BatchRun):
    """Book-keeping of the folder batch in progress: as any batch's, plus failed names and layers."""

    def __init__(self, request: FolderRequest):
        super().__init__()
        self.request = request
        self.total = 0
        self.failed: list[str] = []
        self.layers: list[Any] = []


class FolderView:
    """The rows of the "a folder…" batch (hidden unless it is chosen) and the runs it starts."""

    def __init__(self, viewer: Any, controls: RunControls):
        self.viewer = viewer
        self.controls = controls
        self.input = FileEdit(
            mode="d",
            label="Input folder",
            tooltip="A folder of images (PNG, JPEG, TIFF…), or type a pattern such as /data/**/*.tif",
        )
        self.output = FileEdit(
            mode="d",
            label="Output folder",
            tooltip="Where <name>.<ext> and batch-report.json are written (made when missing); "
            "a second Run skips the images these settings already made",
        )
        self.ext = ComboBox(
            choices=[("same as input", None), ("png", "png"), ("jpg", "jpg"), ("tif", "tif")],
            value=None,
            tooltip="The results' file format (the CLI's --ext)",
        )
        self.overwrite = CheckBox(
            text="redo finished", value=False, tooltip="Stylise again the images already made (--overwrite)"
        )
        format_row = Container(widgets=[self.ext, self.overwrite], layout="horizontal", labels=False)
        format_row.label, format_row.margins = "Output format", (0, 0, 0, 0)
        self.open_first = SpinBox(
            value=4,
            min=0,
            max=10_000,
            tooltip="Open the first N results of this run as layers (0: none; all are written to the folder)",
        )
        self.open_first.native.setMaximumWidth(70)
        open_row = Container(
            widgets=[self.open_first, Label(value="results as layers (0: none)")],
            layout="horizontal",
            labels=False,
        )
        open_row.label, open_row.margins = "Open first", (0, 0, 0, 0)
        open_row.native.layout().addStretch(1)  # the words next to the number
        self.rows = [self.input, self.output, format_row, open_row]
        self.active: FolderRun | None = None
        self.closed = False
        self.show_rows(None)

    def show_rows(self, mode: Any) -> None:
        """The folder rows are shown only while the Batch choice is "a folder…"."""
        for row in self.rows:
            row.visible = mode == FOLDER_MODE

    @property
    def running(self) -> bool:
        return self.active is not None

    def start(self, choices: RunChoices) -> bool:
        """Check the paths and settings (no listing, no pixels) and start the batch. False if it did not."""
        try:
            request = prepare_folder(
                self.input.line_edit.value,
                self.output.line_edit.value,
                choices,
                ext=self.ext.value,
                open_first=int(self.open_first.value),
                overwrite=bool(self.overwrite.value),
            )
        except Exception as exc:  # a UserError, a ConfigError, anything unexpected: one sentence
            show_refusal(exc)
            return False
        avoid_triton_llvm_clash()
        self._launch(request)
        return True

    def _launch(self, request: FolderRequest) -> None:
        run = self.active = FolderRun(request)
        worker = make_folder_worker(request, run.stop, run.finished)
        connect_worker(worker, run.stop, self._on_event, self._on_error, self._on_finished)
        run.worker = worker
        self.controls.begin(run, 1, f"Batch: looking for images in {request.source}…")
        worker.start()

    def stop(self, reason: str | None = None) -> None:
        """Stop the batch: the running image ends after its current step; finished files stay."""
        run = self.active
        if run is None:
            return
        run.request_stop(reason)
        self.controls.stopping("Stopping the batch after the current step…")

    def close(self) -> None:
        """The viewer or the panel went away: stop and wait a moment for the worker thread."""
        self.closed = True
        run = self.active
        if run is not None:
            run.abandon()

    # ------------------------------------------------------------------ worker signals (GUI thread)

    def _on_event(self, event: FolderStart | BatchResult) -> None:
        run = self.active
        if run is None or self.closed:
            return
        if isinstance(event, FolderStart):
            self._started(run, event)
            return
        run.counts[event.status] = run.counts.get(event.status, 0) + 1
        if event.status == "failed":
            run.failed.append(Path(event.input).name)
        elif event.result is not None:
            name = f"{Path(event.output or event.input).stem} stylised"
            rgb = event.result.ndim == 3 and event.result.shape[-1] in (3, 4)
            layer = self.viewer.add_image(
                event.result, name=name, rgb=rgb, metadata=run.request.metadata(event)
            )
            run.layers.append(layer)
            event.result = None  # the layer holds the pixels now
        self.controls.step(run.ended)
        if not run.stop.is_set():
            self.controls.say(f"Batch: {run.counts_text()} of {run.total}…")
        if run.bar is not None:  # last: napari's bar processes Qt events (the batch may end in there)
            run.bar.advance(run.ended)

    def _started(self, run: FolderRun, start: FolderStart) -> None:
        run.total = start.total
        self.controls.progress_bar.max = max(1, start.total)
        what = f"{start.total} images from {Path(run.request.source).name or run.request.source}"
        self.controls.say(f"Batch: starting a Dask worker for {what}…")
        run.bar = ActivityBar(
            self.viewer,
            start.total,
            f"Style transfer batch: {what}",
            lambda: self.stop("cancelled in the activity dock"),
        )
        if run.stop.is_set():
            run.bar.close()

    def _on_error(self, exc: BaseException) -> None:
        message = batch_failure(self.active, exc, "folder batch")
        if not self.closed:
            show_error(message)
            self.controls.say(f"Batch failed: {message}")

    def _on_finished(self) -> None:
        run, self.active = self.active, None
        if run is None:
            return
        self.controls.end(run, redraw=not self.closed)
        run.close_progress()
        if self.closed or run.error is not None:
            return
        request = run.request
        if run.failed:
            show_error(request.failure_text(run.failed, run.total))
        stopped = run.stop.is_set() or run.counts.get("cancelled", 0) > 0
        seconds = time.perf_counter() - run.started
        reason = f" ({run.stop_reason})" if run.stop_reason else ""
        head = f"Batch stopped{reason}" if stopped else "Batch done"
        self.controls.say(
            f"{head}: {run.counts_text()} of {run.total} in {seconds:.1f} s; report: {request.report_path}."
        )


__all__ = ["FOLDER_MODE", "FolderRun", "FolderView", "folder_worker_events"]
