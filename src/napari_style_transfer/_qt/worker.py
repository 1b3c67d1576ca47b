"""The run's thread: napari's ``thread_worker`` over the engine's ``run_iter``, and its wiring.

The worker reads the layers' pixels (``RunRequest.read``: slow for lazy layers, so never on
the GUI thread) and then yields the engine's events; errors travel wrapped in
:class:`RunFailed`. :class:`ActiveRun` is the book-keeping of the run in progress, with its
progress bar in napari's activity dock.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari.qt.threading import GeneratorWorker, thread_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtGui import QMovie

from ..engine import ProgressEvent, StackEvent, run_iter
from ..engine.full_size import full_size_event
from ..plugin.faults import UserError, error_message, release_memory, run_device, run_failure
from ..plugin.progress import (
    PREVIEW_TIME_SHARE_GPU,
    REFRESH_TIME_SHARE_GPU,
    PreviewThrottle,
    RateMeter,
    RefreshGate,
)
from ..plugin.run_request import RunRequest
from .results import ResultLayer, unwrap

logger = logging.getLogger(__name__)


class RunFailed(Exception):
    """Carries an exception out of the worker thread.

    superqt's worker swallows a ``RuntimeError`` raised by the generator (it warns instead
    and never emits ``errored`` or ``finished``); the engine's errors and CUDA's
    out-of-memory are RuntimeErrors, so they travel wrapped in this (plain) Exception.
    ``details`` is the formatted traceback of an unexpected error (logged in the GUI thread;
    the exception itself travels without its traceback, which holds the run's tensors).

    It travels as the generator's last *yielded* value, never through ``errored``: napari
    0.9's ``create_worker`` connects ``errored`` to a two-argument slot that PySide6 (unlike
    PyQt) calls with the error too, so every failure would also raise a TypeError in Qt's event
    loop there. :func:`route_failures` hands it to the error handler.
    """

    def __init__(self, error: BaseException, details: str | None = None):
        super().__init__(str(error))
        self.error = error
        self.details = details


class StyleWorker(GeneratorWorker):
    """A generator worker whose ``quit()`` asks the engine to stop (within one iteration).

    A plain ``quit()`` abandons the generator at its next yield, so the engine's final event,
    which carries the last image at full quality, would be lost. Here ``quit()`` (also called
    by napari's activity dock "cancel", by window close and at application exit) sets the
    engine's stop event, and the engine ends cleanly after the current step.
    """

    stop_event: threading.Event | None = None

    def quit(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()
        else:  # pragma: no cover - every StyleWorker gets a stop event
            super().quit()

    def _relay_error(self, exc: Exception) -> None:
        # napari would show the exception with a traceback; the widget shows one sentence.
        pass


def run_events(
    request: RunRequest, stop: threading.Event, finished: threading.Event
) -> Iterator[ProgressEvent | StackEvent | RunFailed]:
    """Runs in the worker thread: read the inputs, then the engine's events (every Nth preview saved
    when asked); errors wrapped in RunFailed."""
    try:
        inputs = request.read()
        events = run_iter(
            inputs.content,
            inputs.styles,
            inputs.config or request.config,
            stack=request.stack_options(),
            guidance=inputs.guidance,
            stop=stop,
        )
        if request.full_size:  # the final image upsampled here, not on the GUI thread
            rgb = request.result_channels > 1  # the result's colour axis, not the content's (a grey one: RGB)
            events = (full_size_event(event, request.content_shape, rgb) for event in events)
        for event in events:
            if request.previews is not None:
                request.previews.offer(event)  # written here, in the worker thread (atomic files)
            yield event
    except Exception as exc:
        details = None
        if not isinstance(exc, (ValueError, RuntimeError, MemoryError)):  # a bug: keep the details
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        # Drops the failed run's tensors (held by the traceback), empties the CUDA cache and
        # turns running out of memory into a MemoryLimitError that names a size that fits.
        yield RunFailed(run_failure(exc, request), details)  # an event, not `errored`: see RunFailed
    finally:
        release_memory(run_device(request))  # CUDA: give the cache back between runs
        finished.set()


_make_worker = thread_worker(run_events, worker_class=StyleWorker, ignore_errors=True, start_thread=False)


class RunProgress(cancelable_progress):
    """The run's bar in napari's activity dock; its Cancel button stops the run like Stop does."""

    def cancel(self) -> None:
        super().cancel()
        if self.cancel_callback is not None:
            self.cancel_callback()


@dataclass
class ActiveRun:
    """Book-keeping for the run in progress (owned by the widget)."""

    request: RunRequest
    stop: threading.Event
    #: Set when the worker's generator has ended.
    finished: threading.Event
    worker: Any = None
    result: ResultLayer | None = None
    #: The run's bar in napari's activity dock (closed at the end, on Stop and on errors).
    bar: ActivityBar | None = None
    throttle: PreviewThrottle = field(default_factory=PreviewThrottle)
    meter: RateMeter | None = None
    stop_reason: str | None = None
    final: ProgressEvent | None = None
    error: BaseException | None = None
    #: The last progress event seen (for the metadata of a partial, failed result).
    last_event: ProgressEvent | None = None
    #: The user's layers the run was started from (content first), to notice their removal.
    inputs: tuple = ()
    #: The engine's notice that it switched to tiling (None: not tiled).
    tiling_message: str | None = None
    #: All-slices runs: the slice in progress (1-based) and the finished slices' indices.
    slice_number: int = 0
    slices_done: list = field(default_factory=list)
    #: When the status line and the bars may be redrawn (a few times a second).
    refresh: RefreshGate = field(default_factory=RefreshGate)
    #: Called by the activity-dock bar's Cancel button (the bar comes in :meth:`open_progress`).
    on_cancel: Callable[[], None] | None = None
    #: The worker thread was started (:meth:`start`).
    started: bool = False

    def __post_init__(self) -> None:
        device = run_device(self.request)
        if device is not None and device.type != "cpu":
            # the GUI competes less with the engine
            self.throttle.time_share = PREVIEW_TIME_SHARE_GPU
            self.refresh.time_share = REFRESH_TIME_SHARE_GPU

    @property
    def layer(self) -> Any:
        """The result layer (None until it is inserted, hidden, before the worker starts)."""
        return None if self.result is None else self.result.layer

    def open_progress(self, viewer: Any) -> None:
        """Open the run's bar in napari's activity dock (80-120 ms: its own turn of the event loop)."""
        if self.bar is None:
            desc = f"Style transfer: {self.request.result_name}"
            self.bar = ActivityBar(viewer, self.request.total_steps, desc, self.on_cancel or (lambda: None))

    def start(self) -> None:
        """Start the worker thread (once)."""
        if not self.started:
            self.started = True
            self.worker.start()

    def request_stop(self, reason: str | None = None) -> None:
        """Ask the engine to stop after the current step (the first reason given is kept)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()
        if self.worker is not None:
            self.worker.quit()  # StyleWorker.quit: the same stop request, no abandoned generator

    def show_preview(self, image: Any) -> None:
        """Show a preview in the result layer and tell the throttle what that cost."""
        if self.result is None:
            return
        made = self.result.exists  # making the layer is a one-off: not what a preview costs
        start = time.perf_counter()
        if self.result.show(image) and made:
            self.throttle.shown(time.perf_counter() - start)

    def advance(self, step: int) -> None:
        """Move the activity dock's bar to ``step`` (and napari's indicator one frame), in a later
        turn of the event loop (:meth:`ActivityBar.advance`)."""
        if self.bar is not None:
            self.bar.advance(step)

    def close_progress(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def abandon(self, timeout: float = 30.0) -> None:
        """The viewer or the panel went away: stop, close the bar and wait a moment for the thread."""
        self.request_stop()
        self.close_progress()
        self.finished.wait(timeout)


class BatchRun:
    """What a batch in progress keeps, for every kind of batch (layers, slices, a folder): its
    stop and finished events, start time, counts by status, activity-dock bar and worker."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.finished = threading.Event()
        self.started = time.perf_counter()
        self.counts: dict[str, int] = {}
        self.stop_reason: str | None = None
        self.error: BaseException | None = None
        self.bar: ActivityBar | None = None
        self.worker: Any = None

    @property
    def ended(self) -> int:
        """Items that ended, however they did."""
        return sum(self.counts.values())

    def request_stop(self, reason: str | None = None) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()
        if self.worker is not None:
            self.worker.quit()

    def close_progress(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def abandon(self, timeout: float = 30.0) -> None:
        """The viewer or the panel went away: stop, close the bar and wait a moment for the thread."""
        self.request_stop()
        self.close_progress()
        self.finished.wait(timeout)

    def counts_text(self) -> str:
        """'3 done', '0 done, 3 skipped, 1 failed', '2 done, 3 cancelled'."""
        parts = [f"{self.counts.get('done', 0)} done"]
        parts += [f"{self.counts[s]} {s}" for s in ("skipped", "failed", "cancelled") if self.counts.get(s)]
        return ", ".join(parts)


def show_refusal(exc: BaseException) -> None:
    """A run or batch that cannot start: one notification, never a traceback (a UserError at its
    own severity; anything else, a ConfigError included, as an error sentence)."""
    if isinstance(exc, UserError):
        (show_error if exc.severity == "error" else show_warning)(str(exc))
    else:
        show_error(error_message(exc))


def batch_failure(run: BatchRun | None, exc: BaseException, what: str) -> str:
    """A batch's failure: recorded on ``run`` (if any), an unexpected error's details logged
    (``what``: "batch", "folder batch"), and its one sentence returned for the user."""
    error = getattr(exc, "error", exc)
    if run is not None:
        run.error = error
    details = getattr(exc, "details", None)
    if details:
        logger.error("style transfer %s failed:\n%s", what, details)
    return error_message(error)


#: The activity dock's bar moves at most this often (seconds); see :meth:`ActivityBar.advance`.
BAR_INTERVAL_S = 0.25


class ActivityBar:
    """A run's bar in napari's activity dock (its Cancel calls ``on_cancel``), with napari's
    animated "in progress" indicator held still (:func:`hold_spinner`) and moved one frame per
    update. Shared by single runs and batches."""

    def __init__(self, viewer: Any, total: int, desc: str, on_cancel: Callable[[], None]) -> None:
        self.progress = RunProgress(total=total, desc=desc, cancel_callback=on_cancel)
        #: napari's indicator (a QMovie), or None where this napari has none.
        self.spinner = hold_spinner(viewer)
        self.closed = False
        self._wanted = 0  # the newest step asked for
        self._moved_at = 0.0  # time.monotonic() of the bar's last move
        self._pending = False  # a move is scheduled

    def advance(self, step: int) -> None:
        """Ask the bar to show ``step`` (never back, never past its total) and the indicator one frame.

        The bar moves in a later turn of the event loop, at most every :data:`BAR_INTERVAL_S`:
        napari's bar processes Qt events and repaints the activity dock when it moves (30–60 ms
        under software OpenGL), which would otherwise add to the slot that called this, e.g.
        the first preview's new layer (benchmarks/event_loop_gaps.py).
        """
        if self.closed:
            return
        self._wanted = max(self._wanted, min(step, self.progress.total))
        if self._pending or self._wanted <= self.progress.n:
            return
        self._pending = True
        wait = max(0.0, BAR_INTERVAL_S - (time.monotonic() - self._moved_at))
        QTimer.singleShot(round(wait * 1000), self._move)

    def _move(self) -> None:
        self._pending = False
        bar = self.progress
        if self.closed or self._wanted <= bar.n:
            return
        if self.spinner is not None:
            self.spinner.jumpToNextFrame()
        bar.update(self._wanted - bar.n)
        self._moved_at = time.monotonic()

    def close(self) -> None:
        """Close the bar and let napari animate its indicator again (other bars may still run)."""
        if self.closed:
            return
        if self._wanted > self.progress.n:  # a move still waiting: the bar ends where the run did
            self.progress.update(self._wanted - self.progress.n)
        self.closed = True
        self.progress.close()
        if self.spinner is not None and self.spinner.state() == QMovie.MovieState.Paused:
            self.spinner.setPaused(False)  # napari stops it once no bar is left


def hold_spinner(viewer: Any) -> Any:
    """Pause napari's animated "in progress" indicator of the activity dock; return its QMovie.

    Its every frame redraws the window, which under software OpenGL (Xvfb, VNC) costs about
    half a CPU core, taken from the run; the run moves it one frame per bar update instead.

    napari has no public API for this indicator. The one private step is the viewer's main
    window (``window._qt_window``, behind the plugin proxy); the indicator is then found with
    Qt's public API by what it plays, napari's public ``LOADING_GIF_PATH``, not through
    napari's private attribute names. Anything unexpected (another napari, a closed window,
    another layout, a failure of any kind) gives None, silently: the run goes on and napari
    animates its indicator as usual (tests/test_publishing.py changes these attributes).
    """
    try:
        from napari.resources import LOADING_GIF_PATH
        from qtpy.QtWidgets import QLabel

        window = unwrap(viewer).window._qt_window
        wanted = Path(LOADING_GIF_PATH).resolve()
        for label in window.findChildren(QLabel):
            movie = label.movie()
            if isinstance(movie, QMovie) and movie.fileName() and Path(movie.fileName()).resolve() == wanted:
                movie.setPaused(True)
                return movie
    except Exception:  # noqa: BLE001 - a nicety: never let it stop a run
        logger.debug("napari's activity indicator was not found; it keeps its own animation", exc_info=True)
    return None


def route_failures(
    on_event: Callable[[Any], None], on_error: Callable[[BaseException], None]
) -> Callable[[Any], None]:
    """A ``yielded`` slot: a :class:`RunFailed` goes to ``on_error``, anything else to ``on_event``."""

    def route(value: Any) -> None:
        (on_error if isinstance(value, RunFailed) else on_event)(value)

    return route


def connect_worker(
    worker: StyleWorker,
    stop: threading.Event,
    on_event: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
    on_finished: Callable[[], None],
) -> None:
    """Wire a run's or a batch's worker: Stop reaches the engine, a failure (the last event, see
    :class:`RunFailed`) goes to ``on_error`` like a bug outside the generator's own handling."""
    worker.stop_event = stop
    worker.yielded.connect(route_failures(on_event, on_error))
    worker.errored.connect(on_error)
    worker.finished.connect(on_finished)


def launch(
    request: RunRequest,
    viewer: Any,
    *,
    on_event: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
    on_finished: Callable[[], None],
    on_cancel: Callable[[], None],
) -> ActiveRun:
    """Make the worker for ``request`` and wire its signals; not started yet, and no activity-dock
    bar yet (:meth:`ActiveRun.open_progress`, :meth:`ActiveRun.start`: later turns of the event loop).

    ``on_cancel`` is called when the bar's Cancel button in the activity dock is pressed.
    """
    stop, finished = threading.Event(), threading.Event()
    run = ActiveRun(request=request, stop=stop, finished=finished, on_cancel=on_cancel)
    run.meter = RateMeter(request.sizes, request.config.iterations)
    run.result = ResultLayer(viewer, request)
    worker = _make_worker(request, stop, finished)
    connect_worker(worker, stop, on_event, on_error, on_finished)
    run.worker = worker
    return run


def avoid_triton_llvm_clash() -> bool:
    """Keep torch from importing triton into a process that has Mesa's LLVM loaded.

    Software OpenGL (Mesa llvmpipe, e.g. under Xvfb or VNC) and radeonsi load libLLVM;
    triton's extension bundles another LLVM, and importing it afterwards crashes the
    process (a segfault, not an exception). torch imports triton lazily, the first time an
    optimiser is created. Style transfer does not need triton (no ``torch.compile``), so
    when libLLVM is already mapped and triton was not imported yet, make ``import triton``
    an ImportError, which torch handles as "triton not installed". Returns True if it did.
    """
    if "triton" in sys.modules or not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            llvm_loaded = any("libLLVM" in line for line in maps)
    except OSError:  # pragma: no cover - no procfs
        return False
    if llvm_loaded:
        sys.modules["triton"] = None  # type: ignore[assignment]
        logger.info("libLLVM is loaded (software OpenGL); triton is disabled in this process")
    return llvm_loaded
