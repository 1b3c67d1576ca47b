"""The Style Transfer dock widget: pick layers, set a few knobs, watch the result appear.

Layout (top to bottom): the inputs (content layer or the canvas, style rows — layers, files or
gallery styles — with blend weights and optional regions, an optional Labels or Shapes mask with
its label → style table) and the main settings, a collapsed "Advanced" section (with the start
image and saved previews), Run / Stop, Continue, a progress bar and a one-line status. The parts
live in their own modules: ``form`` (settings ↔ StyleConfig, built from the option specs),
``inputs`` (with ``style_rows`` and ``label_table``), ``worker`` (the thread) and ``results``
(the result layer).

Run checks the choices on the GUI thread from shapes and dtypes only (``prepare_run``); the
worker reads the pixels and runs the engine's ``run_iter``. Run's slow GUI steps take turns of
the event loop, so the viewer never stalls for long (benchmarks/event_loop_gaps.py): the checks,
then the activity dock's bar, then the result layer, inserted hidden before the worker starts
(it would compete with the worker for the GIL), shown with the first image. Every event comes
back to the GUI thread as one :class:`~napari_style_transfer.plugin.progress.RunUpdate`, for
2D and stack runs alike: previews go into one result layer at most ``MAX_PREVIEWS_PER_SECOND``
times a second, less often when showing one is slow (the final image is always shown; the status
line and the bars are redrawn a few times a second), finished slices of a stack fill one nD layer, and
the run's bar in napari's activity dock follows the steps.

Each run adds a new result layer ("<content> stylised", napari appends " [1]", " [2]" … to
repeated names), so earlier results are never overwritten. Stop, the panel's close button,
closing the viewer and napari's "cancel" all set the engine's stop event, so the run ends
after the current iteration; a stopped result is renamed "… (stopped)". An error in the run
is one notification sentence (no traceback); the previews so far stay, renamed
"… (failed)". See docs/reliability.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from superqt import QCollapsible

from ..plugin.faults import error_message
from ..plugin.progress import (
    RateMeter,
    RunUpdate,
    as_update,
    final_text,
    no_result_text,
    running_text,
    starting_text,
)
from ..plugin.result_metadata import final_metadata, result_metadata
from ..plugin.run_request import RunChoices, prepare
from .batch import BatchView
from .colour_hint import ColourHint
from .controls import RunControls
from .device_label import DeviceRow
from .folder_batch import FOLDER_MODE
from .form import LabelAligner, SettingsForm
from .inputs import InputsView
from .results import unwrap
from .run_extras import add_run_extras
from .settings_view import SettingsView
from .style_rows import StyleRow
from .worker import ActiveRun, avoid_triton_llvm_clash, launch, show_refusal

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

#: On close, wait at most this long for the worker to finish its current step.
CLOSE_TIMEOUT_S = 10.0
#: Run's turns of the event loop are this far apart (ms), so what is due gets in between.
TURN_MS = 1
#: The input rows the widget offers as its own attributes (``widget.content_layer``, …).
INPUT_ROWS = (
    "content_layer",
    "stack_mode",
    "coherent",
    "mask_layer",
    "label_table",
    "style_rows",
    "add_style_button",
)


class StyleTransferWidget(Container):
    """Dock widget: neural style transfer of one image layer in the look of others."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        # napari passes a PublicOnlyProxy; keep it (a weak reference to the proxy would die).
        self._viewer = napari_viewer
        self._active: ActiveRun | None = None
        self._closed = False
        self._was_docked = False
        # Run / Stop, Continue, the bar and the status line, shared with batches (controls.py)
        self.controls = RunControls(self.run, self.stop, self.continue_run, napari_viewer)
        for name in ("run_button", "stop_button", "continue_row", "progress_bar", "status"):
            setattr(self, name, getattr(self.controls, name))  # widget.run_button, … (scripts and tests)
        inputs = self._make_inputs()
        self.form = SettingsForm()
        for name, control in self.form.controls.items():
            setattr(self, name, control.widget)  # widget.iterations, widget.init, … (scripts and tests)
        self.style_strength_value = self.form.controls["style_weight"].widget
        self.settings_view = SettingsView(self.form)  # presets, reset; restores the last-used settings
        self.device_row = DeviceRow(self.form)  # "Runs on": the device and precision, before Run
        self.colour_hint = ColourHint(self.form)  # a grey content after a colour style: offer colour
        self.inputs.on_change = lambda: self.colour_hint.update(
            self.content_layer.value, [layer for layer, _ in self.styles]
        )
        main_rows = [*inputs, self.settings_view.row, *self.form.rows("main"), self.colour_hint.row]
        main_rows.append(self.device_row.widget)
        form = Container(widgets=main_rows, labels=True)
        self.advanced = self.form.advanced
        self.advanced_section = QCollapsible("Advanced", expandedIcon="▼", collapsedIcon="▶")
        self.advanced_section.addWidget(self.advanced.native)
        self.advanced_section.collapse(animate=False)
        self.start_image, self.save_previews = add_run_extras(self.form, self._image_choices)
        super().__init__(widgets=[form, *self.controls.widgets()], labels=False)
        self.native.layout().insertWidget(1, self.advanced_section)
        self.native.layout().addStretch(1)
        self.native.setMinimumWidth(300)
        self._label_aligner = LabelAligner(form, self.advanced)

        self.add_style()
        self._update_stack_widgets()
        self._rebuild_label_table()
        self._removed_inputs: list[str] = []  # input layers deleted mid-run, not yet said
        self._pending_timer = QTimer()
        self._pending_timer.setSingleShot(True)
        self._pending_timer.timeout.connect(self._flush_pending)
        self.native.destroyed.connect(self._on_destroyed)
        self.native_parent_changed.connect(self._on_parent_changed)
        self.reset_choices()

    # ------------------------------------------------------------------ construction

    def _make_inputs(self) -> list[Any]:
        """The rows that pick layers (``inputs.py``: content, stack mode, styles, mask and its table),
        then the Batch choice and its rows."""
        self.inputs = InputsView(self._viewer, self._folder_mode)
        for name in INPUT_ROWS:
            setattr(self, name, getattr(self.inputs, name))  # widget.content_layer, … (scripts and tests)
        self._stack_row = self.inputs.stack_row
        self.batch = BatchView(self._viewer, self.controls)  # the "Batch" choice and its runs
        self.batch.choice.native.currentIndexChanged.connect(self._update_stack_widgets)
        return [*self.inputs.rows(), self.batch.choice, *self.batch.rows]

    def _folder_mode(self) -> bool:
        batch = getattr(self, "batch", None)  # None while the rows are being built
        return batch is not None and batch.choice.value == FOLDER_MODE  # its images are the contents

    def _update_stack_widgets(self, *_: Any) -> None:
        self.inputs.update_stack_widgets()

    # ------------------------------------------------------------------ layers

    @property
    def viewer(self) -> napari.viewer.Viewer | None:
        return self._viewer

    def _image_choices(self, *_: Any) -> list[tuple[str, Any]]:
        return self.inputs.image_choices()

    def add_style(self, layer: Any = None, weight: float = 1.0) -> StyleRow:
        """Add a style row (the layer defaults to an image that is not used yet)."""
        return self.inputs.add_style(layer, weight)

    @property
    def styles(self) -> list[tuple[Any, float]]:
        """The chosen (style layer, blend weight) pairs."""
        return self.style_rows.styles

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists (napari calls this when layers are added, removed, renamed); a
        renamed layer stays chosen."""
        chosen = self.inputs.chosen_layers() if hasattr(self, "inputs") else []
        super().reset_choices()
        self.advanced.reset_choices()  # the start image (the Advanced part sits outside this container)
        self.inputs.keep_chosen(chosen)
        self.inputs.reset()

    def _rebuild_label_table(self) -> None:
        self.inputs.rebuild_label_table()

    def set_label_style(self, label: int, style: int | None) -> None:
        """Choose the style (0-based style row, None: keep content) for one label value (a Shapes
        mask: shape i is label i + 1)."""
        self.label_table.set_style(label, style)

    @property
    def label_styles(self) -> dict[int, int]:
        """label value → style index from the mask table (labels keeping the content left out)."""
        return self.label_table.label_styles

    # ------------------------------------------------------------------ settings

    def config_kwargs(self) -> dict[str, Any]:
        """The StyleConfig fields set by the controls (contrast limits and blend weights come later)."""
        return self.form.config_kwargs()

    def set_config(self, **values: Any) -> None:
        """Set controls from StyleConfig field names (handy for scripts and tests)."""
        self.form.set_config(**values)

    # ------------------------------------------------------------------ running

    @property
    def running(self) -> bool:
        """A single run or a batch holds the Run / Stop controls."""
        return self.controls.busy

    def run(self, content: Any = None, styles: list[tuple[Any, float]] | None = None) -> bool:
        """Start a run (the layers default to the widget's choices). False if it did not start.

        Only shapes, dtypes and layer kinds are looked at here; the pixels are read in the worker.
        """
        if self.running or self._closed or self.viewer is None:
            return False  # one run at a time (Run is disabled meanwhile, this guards scripts)
        if self.batch.selected and content is None and styles is None:
            return self.batch.start(self.choices())
        return self._start(lambda: self.choices(content, styles))

    def choices(self, content: Any = None, styles: list[tuple[Any, float]] | None = None) -> RunChoices:
        """What Run starts: the controls' choices (``content`` and ``styles`` default to the rows)."""
        mask = unwrap(self.mask_layer.value)
        regions = self.style_rows.regions if styles is None else None
        styles = self.styles if styles is None else styles
        return RunChoices(
            self.inputs.content(content, styles),
            [(unwrap(layer), weight) for layer, weight in styles],
            {**self.config_kwargs(), **self.form.output_values()},
            stack=self.stack_mode.value,
            point=tuple(self.viewer.dims.point),
            coherence=bool(self.coherent.value),
            mask_layer=mask,
            label_styles=self.label_styles if mask is not None else None,
            init_layer=self.start_image.layer,
            previews=self.save_previews.choice,
            style_regions=regions,
        )

    def continue_run(self, result: Any = None, iterations: int | None = None) -> bool:
        """Run ``iterations`` more steps (default: the Continue box) from a result layer (default:
        the selected one), with the settings it recorded. False if it did not start."""
        return self._start(lambda: self.continue_row.choices(result, iterations, self.save_previews.choice))

    def _start(self, make_choices: Callable[[], RunChoices]) -> bool:
        """Check the choices (a sentence for a bad one), then start the run in its thread."""
        if self.running or self._closed or self.viewer is None:
            return False  # one run at a time (Run is disabled meanwhile, this guards scripts)
        try:
            choices = make_choices()
            request = prepare(choices)
        except Exception as exc:  # a UserError, a ConfigError, anything unexpected: one sentence
            show_refusal(exc)
            return False

        avoid_triton_llvm_clash()
        run = launch(
            request,
            self.viewer,
            on_event=self._on_event,
            on_error=self._on_error,
            on_finished=self._on_finished,
            on_cancel=lambda: self.stop("cancelled in the activity dock"),
        )
        run.inputs = choices.layers()
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self._active = run
        self.controls.begin(run, request.total_steps, "")
        self._set_status(starting_text(request))
        self._next_turn(run, self._open_progress)
        return True

    def _next_turn(self, run: ActiveRun, step: Callable[[ActiveRun], None]) -> None:
        """``step(run)`` in a later turn of the event loop, if ``run`` is still starting then.

        A 1 ms timer, not 0: Qt runs a 0 ms single shot as a posted event, before the timers
        already due, so the turns would follow each other as one long stall; the events a turn
        posts (napari's layout and paints) come before the next turn.
        """
        QTimer.singleShot(TURN_MS, lambda: None if self._closed or self._active is not run else step(run))

    def _open_progress(self, run: ActiveRun) -> None:
        """Run's second turn: the activity dock's bar (none once stopped)."""
        if not run.stop.is_set():
            run.open_progress(self.viewer)
        self._next_turn(run, self._insert_result)

    def _insert_result(self, run: ActiveRun) -> None:
        """Run's third turn: the result layer, hidden (none once stopped); the worker starts in the
        next turn, once napari has laid out and painted its new layer's rows (uncontended)."""
        if not run.stop.is_set() and self.viewer is not None:
            run.result.insert_placeholder()
        self._next_turn(run, ActiveRun.start)  # stopped meanwhile: the engine ends at once, as usual

    def stop(self, reason: str | None = None) -> None:
        """Ask the run to stop; it ends after the current iteration and keeps its image."""
        self.batch.stop(reason)
        run = self._active
        if run is None:
            return
        run.request_stop(reason)
        self.controls.stopping("")
        self._set_status("Stopping after the current iteration…")

    def _set_status(self, text: str) -> None:
        self.controls.say(text)

    # ------------------------------------------------------------------ worker signals (GUI thread)

    def _on_event(self, event: Any) -> None:
        run = self._active
        if run is None or self._closed or run.worker is None:
            return
        update = as_update(event)
        self._tiling_notice(run, update)
        run.last_event = update.event
        redraw = update.done or run.refresh.due()  # the line and the bars: a few times a second
        if redraw:
            self.controls.step(update.step)
        if update.done:
            self._finish(run, update)
        else:
            self._show_progress(run, update, redraw)
        if redraw:
            started = time.perf_counter()
            run.advance(update.step)  # the bar moves in a later turn of the event loop
            run.refresh.spent(time.perf_counter() - started)

    def _show_progress(self, run: ActiveRun, update: RunUpdate, redraw: bool = True) -> None:
        """A step of the run: the status line (when ``redraw``), and the preview or the finished slice."""
        if run.slice_number != update.slice_number:  # a new slice of a stack: a new speed
            run.slice_number = update.slice_number
            run.meter = RateMeter(run.request.sizes, run.request.config.iterations)
        run.meter.add(update.event)
        if redraw and not run.stop.is_set():
            self._set_status(running_text(update, run.meter, run.tiling_message))
        if update.image is None:
            return
        if not update.throttled:  # a finished slice: always shown
            run.result.show(update.image, update.index)
            run.slices_done.append(list(update.index))
            return
        image = run.throttle.offer(update.image)
        if image is not None:
            run.show_preview(image)
        elif not self._pending_timer.isActive():
            self._pending_timer.start(max(1, int(run.throttle.wait_time() * 1000) + 1))

    def _tiling_notice(self, run: ActiveRun, update: RunUpdate) -> None:
        """The engine switched to tiling: say so once (status line and an info notification)."""
        message = getattr(update.event, "message", None)
        if message and not run.tiling_message:
            run.tiling_message = message
            show_info(f"Style transfer: {message}.")
            self._set_status(f"Switched to tiling — {message}.")

    def _flush_pending(self) -> None:
        run = self._active
        if run is None or self._closed or run.final is not None:
            return
        image = run.throttle.take_pending()
        if image is not None:
            run.show_preview(image)
        elif run.throttle.pending is not None:
            self._pending_timer.start(max(1, int(run.throttle.wait_time() * 1000) + 1))

    def _finish(self, run: ActiveRun, update: RunUpdate) -> None:
        """The last event, 2D or stack: the final image, the metadata, the name and the status."""
        run.final = update.event
        run.throttle.clear()
        self._pending_timer.stop()
        result = run.result
        if result.gone:
            self._set_status("Stopped: the result layer was deleted.")
            return
        image = None if update.stopped and update.step == 0 else update.final
        if image is not None:
            result.show(image)
        if not result.exists:
            self._set_status(no_result_text(update))
            return
        done = len(update.info.get("slices", run.slices_done))
        result.finish(final_metadata(run.request, update, done), stopped=update.stopped)
        self._set_status(final_text(update, run.stop_reason, run.tiling_message, done))

    def _on_error(self, exc: BaseException) -> None:
        run = self._active
        error = getattr(exc, "error", exc)
        if run is not None:
            run.error = error
            run.close_progress()
        details = getattr(exc, "details", None)
        if details:
            logger.error("style transfer failed:\n%s", details)
        if self._closed:
            return
        message = error_message(error)
        show_error(message)
        self._set_status(f"Failed: {message}")
        if run is None or not run.result.exists or run.result.gone:
            return
        # keep what was computed: the newest preview, marked as a failed, partial result
        self._pending_timer.stop()
        pending, run.throttle.pending = run.throttle.pending, None
        if pending is not None:
            run.result.show(pending)
        metadata = {
            **result_metadata(run.request, run.last_event),
            "failed": True,
            "partial": True,
            "error": message,
        }
        run.result.finish(metadata, failed=True)

    def _on_finished(self) -> None:
        run = self._active
        self._active = None
        self.controls.end(run, redraw=not self._closed)
        if run is not None:
            run.close_progress()
            run.result.discard_placeholder()  # no image came: no layer is left
        viewer = self.viewer
        if viewer is not None:
            viewer.layers.events.removed.disconnect(self._on_layer_removed)
        if self._closed:
            return
        self._pending_timer.stop()
        if run is not None and run.final is None and run.error is None:
            self._set_status("Stopped.")

    def _on_layer_removed(self, event: Any) -> None:
        run = self._active
        if run is None:
            return
        if run.layer is not None and event.value is run.layer:
            self.stop("the result layer was deleted")
        elif any(event.value is layer for layer in run.inputs) and not run.stop.is_set():
            # Said on the next turn of the event loop: closing the viewer removes every layer
            # first, and closing is silent.
            if not self._removed_inputs:
                QTimer.singleShot(0, self._say_inputs_removed)
            self._removed_inputs.append(event.value.name)

    def _say_inputs_removed(self) -> None:
        names, self._removed_inputs = self._removed_inputs, []
        viewer = self.viewer
        if self._closed or self._active is None or viewer is None or len(viewer.layers) == 0:
            return
        for name in names:
            show_info(
                f"Layer '{name}' was deleted during the run; the run goes on with the copy "
                "taken when Run was pressed."
            )

    def _on_parent_changed(self, parent: Any) -> None:
        """The panel's close button takes the widget out of its dock: stop the run then."""
        if parent is not None:
            self._was_docked = True
        elif self._was_docked:
            self.stop("the Style Transfer panel was closed")

    def _on_destroyed(self, *_: Any) -> None:
        """The dock or the whole viewer went away: stop the run and wait for the thread."""
        self._closed = True
        self.batch.close()
        self.inputs.close()
        run = self._active
        if run is None:
            return
        run.request_stop()
        run.close_progress()
        if not run.started:  # closed before Run's last turn: no worker, nothing to wait for
            run.finished.set()
            self._on_finished()
        elif not run.finished.wait(CLOSE_TIMEOUT_S):  # pragma: no cover - a very slow step
            logger.warning("style transfer still running %.0f s after its viewer closed", CLOSE_TIMEOUT_S)
