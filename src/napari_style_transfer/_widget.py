"""The Style Transfer dock widget: pick layers, set a few knobs, watch the result appear.

Layout (top to bottom): the inputs and main knobs (content layer, style layer rows with
blend weights, output size, iterations, style strength, colours), a collapsed "Advanced"
section, Run / Stop, a progress bar and a one-line status.

The run goes through napari's ``thread_worker`` over the engine's ``stylize_iter``
generator; every yielded :class:`~napari_style_transfer.engine.ProgressEvent` comes back to
the GUI thread, where previews (numpy already) go into one result layer, at most
``MAX_PREVIEWS_PER_SECOND`` times a second; the final image is always shown. The checks,
geometry and texts live in ``_controller.py`` (no Qt there).

Each run adds a new result layer ("<content> stylised", napari appends " [1]", " [2]" … to
repeated names), so earlier results are never overwritten and can be compared. Stop, the
panel's close button, closing the viewer and napari's "cancel" all set the engine's stop
event, so the run ends after the current iteration; a stopped result is renamed
"… (stopped)" and has ``metadata["stopped"] = True``.

nD content (stacks, time-lapses; "Stack" is shown only then): "current slice" runs the slice
shown by the viewer's dims and gives a one-slice layer placed over it; "all slices" runs
``stylize_stack_iter`` and fills ONE nD result layer (created, zeros, at the first finished
slice) slice by slice; Stop keeps the finished slices (the others stay zero). An nD style
layer gives its slice shown. "Mask (Labels)" takes a 2D Labels layer of the content's size,
with a label → style (or "keep content") table; "Tiling" in Advanced maps to the config, and
the engine's switch to tiling shows in the status line and an info notification.

Faults (see docs/reliability.md): an error in the run is one notification sentence (no
traceback); the previews so far stay in the result layer, renamed "… (failed)" with
``metadata["failed"] = True`` and the error. Running out of memory names a size that fits.
Either way the run's tensors are dropped and the CUDA cache emptied before the next run.
The run works on copies, so deleting its content or style layer does not disturb it.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    Slider,
    SpinBox,
)
from napari.qt.threading import GeneratorWorker, thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QLabel, QSizePolicy, QWidget
from superqt import QCollapsible

from ._controller import (
    ActiveRun,
    RateMeter,
    UserError,
    error_message,
    format_final,
    format_status,
    is_nd,
    is_result_layer,
    label_values,
    prepare_run,
    release_memory,
    result_metadata,
    run_device,
    run_failure,
)
from .engine import StackEvent, StyleConfig, stylize_iter, stylize_stack_iter
from .engine.config import POOLINGS, PRECISIONS, TILINGS, WEIGHT_CONVENTIONS

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

_DEFAULTS = StyleConfig()
#: On close, wait at most this long for the worker to finish its current step.
CLOSE_TIMEOUT_S = 10.0
#: The mask table lists at most this many label values (others keep the content).
MAX_MASK_LABELS = 10
#: The mask table's choice meaning "keep the content here".
KEEP_CONTENT = -1


class RunFailed(Exception):
    """Carries an exception out of the worker thread.

    superqt's worker swallows a ``RuntimeError`` raised by the generator (it warns instead
    and never emits ``errored`` or ``finished``); the engine's errors and CUDA's
    out-of-memory are RuntimeErrors, so they travel wrapped in this (plain) Exception.
    ``details`` is the formatted traceback of an unexpected error (logged in the GUI thread;
    the exception itself travels without its traceback, which holds the run's tensors).
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


def _stylize_events(request, stop: threading.Event, finished: threading.Event):
    """Runs in the worker thread: the engine's events, errors wrapped in RunFailed."""
    try:
        if request.stack == "all":
            yield from stylize_stack_iter(
                request.content,
                request.styles,
                request.config,
                rgb=request.rgb,
                coherence=request.coherence,
                stop=stop,
                style_contrast_limits=request.style_contrast_limits,
                **request.engine_kwargs(),
            )
        else:
            yield from stylize_iter(
                request.content,
                request.styles,
                request.config,
                stop=stop,
                style_contrast_limits=request.style_contrast_limits,
                **request.engine_kwargs(),
            )
    except Exception as exc:
        details = None
        if not isinstance(exc, (ValueError, RuntimeError, MemoryError)):  # a bug: keep the details
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        # Drops the failed run's tensors (held by the traceback), empties the CUDA cache and
        # turns running out of memory into a MemoryLimitError that names a size that fits.
        raise RunFailed(run_failure(exc, request), details) from None
    finally:
        release_memory(run_device(request))  # CUDA: give the cache back between runs
        finished.set()


_start_worker = thread_worker(
    _stylize_events, worker_class=StyleWorker, ignore_errors=True, start_thread=False
)


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


def _strength_position(value: float) -> int:
    """Slider position (0-300) of a style weight (0.1-100, log scale)."""
    return int(round(100 * (math.log10(min(max(value, 0.1), 100.0)) + 1)))


def _unwrap(obj: Any) -> Any:
    """The napari object behind a PublicOnlyProxy (plugins get proxies of the viewer)."""
    return getattr(obj, "__wrapped__", obj)


def _checkbox_row(checkbox: CheckBox, label: str) -> Container:
    """A checkbox with its text beside the box and ``label`` in the form's label column."""
    row = Container(widgets=[checkbox], labels=False, label=label)
    row.margins = (0, 0, 0, 0)
    return row


def _device_choices() -> list[tuple[str, str]]:
    import torch

    choices = [("auto (GPU if there is one)", "auto"), ("cpu", "cpu")]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        choices.append(("cuda", "cuda"))
        if count > 1:
            choices += [(f"cuda:{i} ({torch.cuda.get_device_name(i)})", f"cuda:{i}") for i in range(count)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        choices.append(("mps (Apple GPU)", "mps"))
    return choices


class _LabelAligner(QObject):
    """Gives the label column of magicgui forms one width, measured with the styled font.

    magicgui sizes each label on its own when a Container is built in one go, and napari's
    stylesheet changes the font afterwards; so measure when the form is shown or restyled.
    """

    def __init__(self, *forms: Container):
        super().__init__(forms[0].native)
        self._forms = [form.native for form in forms]
        for form in self._forms:
            form.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Show, QEvent.Type.StyleChange, QEvent.Type.FontChange):
            self.align(obj)
        return False

    @staticmethod
    def _labels(form: QWidget) -> list[QLabel]:
        labels = []
        layout = form.layout()
        for i in range(layout.count() if layout is not None else 0):
            row = layout.itemAt(i).widget()
            inner = row.layout() if row is not None else None
            if inner is not None and inner.count() and isinstance(inner.itemAt(0).widget(), QLabel):
                labels.append(inner.itemAt(0).widget())
        return labels

    def align(self, form: QWidget) -> None:
        labels = self._labels(form)
        if labels:
            width = max(label.sizeHint().width() for label in labels)
            for label in labels:
                label.setMinimumWidth(width)


class _StyleRow(Container):
    """One style image: layer, blend weight, remove button."""

    def __init__(self, choices, on_remove):
        self.layer = ComboBox(
            choices=choices, tooltip="An image layer whose look (texture, colours, strokes) to copy"
        )
        self.weight = FloatSpinBox(
            value=1.0, min=0.0, max=100.0, step=0.1,
            tooltip="Blend weight of this style (relative to the other styles)",
        )  # fmt: skip
        self.remove_button = PushButton(text="✕", tooltip="Remove this style")
        self.weight.native.setMaximumWidth(70)
        self.remove_button.native.setMaximumWidth(28)
        self.remove_button.changed.connect(lambda: on_remove(self))
        super().__init__(
            widgets=[self.layer, self.weight, self.remove_button], layout="horizontal", labels=False
        )
        self.margins = (0, 0, 0, 0)


class StyleTransferWidget(Container):
    """Dock widget: neural style transfer of one image layer in the look of others."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        # napari passes a PublicOnlyProxy; keep it (a weak reference to the proxy would die).
        self._viewer = napari_viewer
        self._active: ActiveRun | None = None
        self._closed = False

        # --- inputs and the main knobs
        self.content_layer = ComboBox(
            label="Content", choices=self._image_choices, tooltip="The image to repaint (its shapes are kept)"
        )
        self.content_layer.changed.connect(self._update_stack_widgets)
        self.stack_mode = ComboBox(
            label="Stack", choices=[("current slice", "slice"), ("all slices", "all")], value="slice",
            tooltip="An nD content (stack, time-lapse): stylise the slice shown, or every slice into one nD result",
        )  # fmt: skip
        self.coherent = CheckBox(
            text="coherent (start from previous slice)", value=True,
            tooltip="Start each slice from the previous slice's result: less flicker between slices",
        )  # fmt: skip
        self.stack_mode.changed.connect(self._update_stack_widgets)
        stack_row = Container(widgets=[self.stack_mode, self.coherent], labels=False, label="Stack")
        stack_row.margins = (0, 0, 0, 0)
        self._stack_row = stack_row
        self.mask_layer = ComboBox(
            label="Mask (Labels)", choices=self._labels_choices, nullable=True, value=None,
            tooltip="Optional Labels layer (same size as the content): which style goes where",
        )  # fmt: skip
        self.mask_layer.changed.connect(lambda *_: self._rebuild_label_table())
        self.label_table = Container(labels=True, label="Label → style")
        self.label_table.margins = (0, 0, 0, 0)
        self._label_choices_kept: dict[int, int] = {}
        self.style_rows = Container(labels=False, layout="vertical")
        self.style_rows.margins = (0, 0, 0, 0)
        self.add_style_button = PushButton(text="+ add style", tooltip="Blend in another style image")
        self.add_style_button.changed.connect(lambda: self.add_style())
        styles_box = Container(widgets=[self.style_rows, self.add_style_button], labels=False, label="Style")
        styles_box.margins = (0, 0, 0, 0)
        self.output_size = SpinBox(
            value=_DEFAULTS.size or 512, min=16, max=8192, step=64,
            tooltip="Long side of the result in pixels (bigger is slower)",
        )  # fmt: skip
        self.keep_size = CheckBox(
            text="original", value=_DEFAULTS.size is None, tooltip="Keep the content's own size"
        )
        self.keep_size.changed.connect(self._update_size_widgets)
        size_row = Container(
            widgets=[self.output_size, self.keep_size],
            layout="horizontal",
            labels=False,
            label="Output size (px)",
        )
        size_row.margins = (0, 0, 0, 0)
        self.iterations = SpinBox(
            label="Iterations", value=_DEFAULTS.iterations, min=1, max=10_000, step=50,
            tooltip="Optimiser steps (at each scale when multi-scale is on)",
        )  # fmt: skip
        # Style strength (the style weight; content weight stays 1) on a log scale:
        # slider position p in [0, 300] ↔ 10 ** (p / 100 - 1) in [0.1, 100].
        self.style_strength = Slider(
            value=_strength_position(_DEFAULTS.style_weight), min=0, max=300, readout=False,
            tooltip="Style against content: low keeps the photo, high paints over it",
        )  # fmt: skip
        self.style_strength_value = FloatSpinBox(
            value=_DEFAULTS.style_weight, min=0.1, max=100.0, step=0.5,
            tooltip="Style weight (the content weight is 1): low keeps the photo, high paints over it",
        )  # fmt: skip
        self.style_strength_value.native.setMaximumWidth(80)
        self.style_strength.changed.connect(self._strength_from_slider)
        self.style_strength_value.changed.connect(self._strength_from_box)
        strength_row = Container(
            widgets=[self.style_strength, self.style_strength_value], layout="horizontal", labels=False,
            label="Style strength",
        )  # fmt: skip
        strength_row.margins = (0, 0, 0, 0)
        self.preserve_colors = ComboBox(
            label="Keep colours",
            choices=[("no (use the style's)", "none"), ("luminance transfer", "luminance"), ("match histograms", "histogram")],
            value=_DEFAULTS.preserve_colors,
            tooltip="Keep the content's colours: 'luminance' restyles brightness only, "
            "'histogram' first recolours the style like the content",
        )  # fmt: skip
        form = Container(
            widgets=[
                self.content_layer, stack_row, styles_box, self.mask_layer, self.label_table, size_row,
                self.iterations, strength_row, self.preserve_colors,
            ],
            labels=True,
        )  # fmt: skip

        # --- advanced (collapsed)
        self.advanced = self._make_advanced()
        self.advanced_section = QCollapsible("Advanced", expandedIcon="▼", collapsedIcon="▶")
        self.advanced_section.addWidget(self.advanced.native)
        self.advanced_section.collapse(animate=False)

        # --- actions and feedback
        self.run_button = PushButton(
            text="Run", tooltip="Start stylising (the result appears as a new layer)"
        )
        self.stop_button = PushButton(
            text="Stop", enabled=False, tooltip="Stop after the current iteration, keeping the image"
        )
        self.run_button.changed.connect(lambda: self.run())
        self.stop_button.changed.connect(lambda: self.stop())
        actions = Container(widgets=[self.run_button, self.stop_button], layout="horizontal", labels=False)
        actions.margins = (0, 0, 0, 0)
        self.progress_bar = ProgressBar(value=0, min=0, max=1)
        self.status = Label(value="Ready.")
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        super().__init__(widgets=[form, actions, self.progress_bar, self.status], labels=False)
        self.native.layout().insertWidget(1, self.advanced_section)
        self.native.layout().addStretch(1)
        self.native.setMinimumWidth(300)
        self._label_aligner = _LabelAligner(form, self.advanced)

        self.add_style()
        self._update_size_widgets()
        self._update_stack_widgets()
        self._rebuild_label_table()
        self._pending_timer = QTimer()
        self._pending_timer.setSingleShot(True)
        self._pending_timer.timeout.connect(self._flush_pending)
        self.native.destroyed.connect(self._on_destroyed)
        self._was_docked = False
        self.native_parent_changed.connect(self._on_parent_changed)
        self.reset_choices()

    # ------------------------------------------------------------------ construction helpers

    def _make_advanced(self) -> Container:
        d = _DEFAULTS
        self.optimizer = ComboBox(
            label="Optimiser", choices=[("L-BFGS", "lbfgs"), ("Adam", "adam")], value=d.optimizer,
            tooltip="L-BFGS converges in fewer steps; Adam uses less memory",
        )  # fmt: skip
        self.style_layers = LineEdit(
            label="Style layers", value=", ".join(d.style_layers),
            tooltip="VGG-19 layers whose feature statistics define the style (e.g. relu1_1, relu2_1, …)",
        )  # fmt: skip
        self.content_layers = LineEdit(
            label="Content layers", value=", ".join(d.content_layers),
            tooltip="VGG-19 layers whose features must match the content (e.g. relu4_2)",
        )  # fmt: skip
        self.style_scale = FloatSpinBox(
            label="Style scale", value=d.style_scale, min=0.05, max=8.0, step=0.1,
            tooltip="Size of the style image relative to the output (bigger: larger brush strokes)",
        )  # fmt: skip
        self.tv_weight = FloatSpinBox(
            label="Smoothness (TV)", value=d.tv_weight, min=0.0, max=1000.0, step=0.1,
            tooltip="Total-variation weight: above 0 removes high-frequency noise",
        )  # fmt: skip
        self.init = ComboBox(
            label="Start from", choices=[("the content", "content"), ("noise", "noise")], value=d.init,
            tooltip="The image the optimisation starts from",
        )  # fmt: skip
        self.seed = SpinBox(
            label="Seed", value=d.seed or 0, min=0, max=2**31 - 1, tooltip="Random seed (for the noise start)"
        )
        self.pooling = ComboBox(
            label="Pooling", choices=list(POOLINGS), value=d.pooling,
            tooltip="VGG-19 pooling: 'avg' often gives smoother results",
        )  # fmt: skip
        self.multiscale = CheckBox(
            text="coarse to fine", value=d.multiscale,
            tooltip="Start at about 256 px and refine: faster, and larger structures",
        )  # fmt: skip
        multiscale_row = _checkbox_row(self.multiscale, "Multi-scale")
        self.weight_source = ComboBox(
            label="Weights",
            choices=[("embedded VGG-19 (offline)", "embedded"), ("torchvision (downloads)", "torchvision"), ("file…", "file")],
            value="embedded",
            tooltip="Where the VGG-19 network weights come from",
        )  # fmt: skip
        self.weights_file = FileEdit(label="Weight file", mode="r", filter="*.pth *.pt *.bin *.safetensors")
        self.weights_convention = ComboBox(
            label="Convention", choices=list(WEIGHT_CONVENTIONS), value=d.weights_convention,
            tooltip="Input convention of the weight file: 'caffe' (BGR, 0-255) or 'torchvision' (RGB, ImageNet)",
        )  # fmt: skip
        self.device = ComboBox(label="Device", choices=_device_choices(), value=d.device)
        self.preview_every = SpinBox(
            label="Preview every (it)", value=d.preview_every, min=0, max=10_000,
            tooltip="Update the result layer every N iterations (0: only at the end)",
        )  # fmt: skip
        self.precision = ComboBox(
            label="Precision", choices=list(PRECISIONS), value=d.precision,
            tooltip="Network arithmetic. auto: bf16 on CUDA GPUs and on CPUs with native bf16 (about 1.8x faster), "
            "else fp32. Gram matrices and losses are fp32 in every mode",
        )  # fmt: skip
        self.compile = CheckBox(
            text="torch.compile", value=d.compile,
            tooltip="Compile the network (fused kernels): faster long runs on a GPU; the first step of each scale waits for the compiler",
        )  # fmt: skip
        compile_row = _checkbox_row(self.compile, "Compile")
        self.tiling = ComboBox(
            label="Tiling", choices=list(TILINGS), value=d.tiling,
            tooltip="auto: optimise in overlapping tiles only when the size does not fit in memory; on: always; off: never",
        )  # fmt: skip
        self.tile_size = SpinBox(
            label="Tile size (px)", value=d.tile_size or 0, min=0, max=65_536, step=64,
            tooltip="Long side of a tile in output pixels (0: the largest that fits, at most 1024; at least 32)",
        )  # fmt: skip
        self.style_layers.native.setCursorPosition(0)  # show the start of the list
        self.weight_source.changed.connect(self._update_weight_widgets)
        advanced = Container(
            widgets=[
                self.optimizer, self.style_layers, self.content_layers, self.style_scale, self.tv_weight,
                self.init, self.seed, self.pooling, multiscale_row, self.weight_source, self.weights_file,
                self.weights_convention, self.device, self.preview_every, self.precision, compile_row,
                self.tiling, self.tile_size,
            ],
            labels=True,
        )  # fmt: skip
        self._update_weight_widgets()
        return advanced

    def _update_size_widgets(self, *_: Any) -> None:
        self.output_size.enabled = not self.keep_size.value

    def _update_weight_widgets(self, *_: Any) -> None:
        from_file = self.weight_source.value == "file"
        self.weights_file.visible = from_file
        self.weights_convention.visible = from_file

    def _update_stack_widgets(self, *_: Any) -> None:
        self._stack_row.visible = is_nd(_unwrap(self.content_layer.value))
        self.coherent.visible = self.stack_mode.value == "all"

    def _labels_choices(self, *_: Any) -> list[tuple[str, Any]]:
        from napari.layers import Labels

        viewer = self.viewer
        if viewer is None:
            return []
        return [(layer.name, _unwrap(layer)) for layer in viewer.layers if isinstance(layer, Labels)]

    def _style_choices_for_table(self) -> list[tuple[str, int]]:
        choices = [("keep content", KEEP_CONTENT)]
        for i, row in enumerate(self.style_rows):
            name = row.layer.value.name if row.layer.value is not None else "?"
            choices.append((f"style {i + 1}: {name}", i))
        return choices

    def _rebuild_label_table(self) -> None:
        """One row per label value of the mask (up to MAX_MASK_LABELS): label → style or keep content."""
        for widget in list(self.label_table):
            if isinstance(widget, ComboBox):
                self._label_choices_kept[int(widget.name.split("_")[1])] = widget.value
        self.label_table.clear()
        layer = self.mask_layer.value
        self.label_table.visible = layer is not None
        if layer is None:
            return
        choices = self._style_choices_for_table()
        valid = {value for _, value in choices}
        values = label_values(layer)
        for value in values[:MAX_MASK_LABELS]:
            default = KEEP_CONTENT if value == 0 else 0
            chosen = self._label_choices_kept.get(value, default)
            combo = ComboBox(
                name=f"label_{value}", label=f"label {value}", choices=choices,
                value=chosen if chosen in valid else default,
                tooltip=f"The style painted where the mask is {value} ('keep content': leave the content there)",
            )  # fmt: skip
            self.label_table.append(combo)
        if len(values) > MAX_MASK_LABELS:
            rest = len(values) - MAX_MASK_LABELS
            self.label_table.append(
                Label(name="label_more", value=f"{rest} more label value(s) (from {values[MAX_MASK_LABELS]}) keep the content")
            )

    def set_label_style(self, label: int, style: int | None) -> None:
        """Choose the style (0-based style row, None: keep content) for one label value."""
        self.label_table[f"label_{int(label)}"].value = KEEP_CONTENT if style is None else int(style)

    @property
    def label_styles(self) -> dict[int, int]:
        """label value → style index from the mask table (labels keeping the content left out)."""
        out = {}
        for widget in self.label_table:
            if isinstance(widget, ComboBox) and widget.value != KEEP_CONTENT:
                out[int(widget.name.split("_")[1])] = int(widget.value)
        return out

    def _strength_from_slider(self, position: int) -> None:
        value = 10 ** (position / 100 - 1)
        with self.style_strength_value.changed.blocked():
            self.style_strength_value.value = round(value, 2 if value < 10 else 1)

    def _strength_from_box(self, value: float) -> None:
        with self.style_strength.changed.blocked():
            self.style_strength.value = _strength_position(value)

    # ------------------------------------------------------------------ layers

    @property
    def viewer(self) -> napari.viewer.Viewer | None:
        return self._viewer

    def _image_choices(self, *_: Any) -> list[tuple[str, Any]]:
        from napari.layers import Image

        viewer = self.viewer
        if viewer is None:
            return []
        # unwrap napari's proxies so that a layer compares by identity
        return [(layer.name, _unwrap(layer)) for layer in viewer.layers if isinstance(layer, Image)]

    def add_style(self, layer: Any = None, weight: float = 1.0) -> _StyleRow:
        """Add a style row (the layer defaults to an image that is not used yet)."""
        row = _StyleRow(self._image_choices, self._remove_style_row)
        self.style_rows.append(row)
        row.reset_choices()
        if layer is None:
            layer = self._unused_image()
        if layer is None and len(self.style_rows) > 1:
            layer = self.style_rows[-2].layer.value  # every image is in use: repeat the last style
        if layer is not None:
            row.layer.value = layer
        row.weight.value = weight
        row.layer.changed.connect(lambda *_: self._rebuild_label_table())
        self._update_style_rows()
        if hasattr(self, "label_table"):
            self._rebuild_label_table()
        return row

    def _remove_style_row(self, row: _StyleRow) -> None:
        if len(self.style_rows) > 1:
            self.style_rows.remove(row)
            self._update_style_rows()
            self._rebuild_label_table()

    def _update_style_rows(self) -> None:
        several = len(self.style_rows) > 1
        for row in self.style_rows:
            row.weight.visible = several
            row.remove_button.visible = several

    @property
    def styles(self) -> list[tuple[Any, float]]:
        """The chosen (style layer, blend weight) pairs."""
        return [(row.layer.value, float(row.weight.value)) for row in self.style_rows]

    def _unused_image(self) -> Any:
        """An image layer that is neither the content nor a style yet (a plugin result last)."""
        used = {id(self.content_layer.value)} | {id(row.layer.value) for row in self.style_rows}
        candidates = [layer for _, layer in self._image_choices() if id(layer) not in used]
        candidates.sort(key=lambda layer: (is_result_layer(layer), "style" not in layer.name.lower()))
        return candidates[0] if candidates else None

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists (napari calls this when layers are added, removed, renamed)."""
        super().reset_choices()
        content = self.content_layer.value
        if content is not None and is_result_layer(content):
            # prefer a user image as the default content
            for _, layer in self._image_choices():
                if not is_result_layer(layer):
                    self.content_layer.value = layer
                    content = layer
                    break
        for row in self.style_rows:
            if row.layer.value is None or row.layer.value is content:
                replacement = self._unused_image()
                if replacement is not None:
                    row.layer.value = replacement
        self._update_stack_widgets()
        self._rebuild_label_table()

    # ------------------------------------------------------------------ settings

    def config_kwargs(self) -> dict[str, Any]:
        """The StyleConfig fields set by the controls (contrast limits and blend weights come later)."""
        source = self.weight_source.value
        weights = str(self.weights_file.value) if source == "file" else source
        return {
            "iterations": int(self.iterations.value),
            "size": None if self.keep_size.value else int(self.output_size.value),
            "style_weight": float(self.style_strength_value.value),
            "preserve_colors": self.preserve_colors.value,
            "optimizer": self.optimizer.value,
            "style_layers": self.style_layers.value,
            "content_layers": self.content_layers.value,
            "style_scale": float(self.style_scale.value),
            "tv_weight": float(self.tv_weight.value),
            "init": self.init.value,
            "seed": int(self.seed.value),
            "pooling": self.pooling.value,
            "multiscale": bool(self.multiscale.value),
            "weights": weights,
            "weights_convention": self.weights_convention.value,
            "device": self.device.value,
            "preview_every": int(self.preview_every.value),
            "precision": self.precision.value,
            "compile": bool(self.compile.value),
            "tiling": self.tiling.value,
            "tile_size": int(self.tile_size.value) or None,
        }

    def set_config(self, **values: Any) -> None:
        """Set controls from StyleConfig field names (handy for scripts and tests)."""
        for name, value in values.items():
            if name == "size":
                self.keep_size.value = value is None
                if value is not None:
                    self.output_size.value = value
            elif name == "style_weight":
                self.style_strength_value.value = value
            elif name in ("style_layers", "content_layers"):
                getattr(self, name).value = value if isinstance(value, str) else ", ".join(value)
            elif name == "tile_size":
                self.tile_size.value = value or 0
            elif name == "weights":
                if value in ("embedded", "torchvision"):
                    self.weight_source.value = value
                else:
                    self.weight_source.value = "file"
                    self.weights_file.value = value
            elif name in (
                "iterations", "preserve_colors", "optimizer", "style_scale", "tv_weight", "init", "seed",
                "pooling", "multiscale", "weights_convention", "device", "preview_every", "precision", "compile",
                "tiling",
            ):  # fmt: skip
                getattr(self, name).value = value
            else:
                raise TypeError(f"set_config: unknown or unsupported setting {name!r}")

    # ------------------------------------------------------------------ running

    @property
    def running(self) -> bool:
        return self._active is not None

    def run(self, content: Any = None, styles: list[tuple[Any, float]] | None = None) -> bool:
        """Start a run (the layers default to the widget's choices). False if it did not start."""
        if self._active is not None or self._closed:
            return False  # one run at a time (Run is disabled meanwhile, this guards scripts)
        viewer = self.viewer
        if viewer is None:
            return False
        if content is None:
            content = self.content_layer.value
        if styles is None:
            styles = self.styles
        content = _unwrap(content)
        styles = [(_unwrap(layer), weight) for layer, weight in styles]
        mask = _unwrap(self.mask_layer.value)
        try:
            request = prepare_run(
                content, styles, self.config_kwargs(),
                stack=self.stack_mode.value, point=tuple(viewer.dims.point), coherence=bool(self.coherent.value),
                mask_layer=mask, label_styles=self.label_styles if mask is not None else None,
            )  # fmt: skip
        except UserError as exc:
            self._notify(str(exc), exc.severity)
            return False
        except Exception as exc:  # ConfigError and anything unexpected: one sentence, no traceback
            self._notify(error_message(exc), "error")
            return False

        avoid_triton_llvm_clash()
        stop, finished = threading.Event(), threading.Event()
        run = ActiveRun(request=request, stop=stop, finished=finished)
        run.inputs = (content, *(layer for layer, _ in styles), *((mask,) if mask is not None else ()))
        run.meter = RateMeter(request.sizes, request.config.iterations)
        worker = _start_worker(request, stop, finished)
        worker.stop_event = stop
        run.worker = worker
        worker.yielded.connect(self._on_event)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        self._active = run
        self._set_running(True)
        self.progress_bar.max = request.total_steps
        self.progress_bar.value = 0
        h, w = request.sizes[-1]
        slices = f", {request.slice_count} slices" if request.stack == "all" else ""
        self._set_status(f"Starting: {w}×{h} px{slices}, {request.total_steps} steps (loading VGG-19)…")
        worker.start()
        return True

    def stop(self, reason: str | None = None) -> None:
        """Ask the run to stop; it ends after the current iteration and keeps its image."""
        run = self._active
        if run is None:
            return
        if run.stop_reason is None:
            run.stop_reason = reason
        run.stop.set()
        if run.worker is not None:
            run.worker.quit()  # StyleWorker.quit: the same stop request, no abandoned generator
        self.stop_button.enabled = False
        self._set_status("Stopping after the current iteration…")

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.stop_button.enabled = running

    def _set_status(self, text: str) -> None:
        self.status.value = text

    @staticmethod
    def _notify(message: str, severity: str = "warning") -> None:
        (show_error if severity == "error" else show_warning)(message)

    # ------------------------------------------------------------------ worker signals (GUI thread)

    def _on_event(self, event) -> None:
        run = self._active
        if run is None or self._closed or run.worker is None:
            return
        if isinstance(event, StackEvent):
            self._on_stack_event(run, event)
            return
        self._tiling_notice(run, event)
        self.progress_bar.value = min(event.step, self.progress_bar.max)
        run.last_event = event
        if event.done:
            self._finish(run, event)
            return
        run.meter.add(event)
        if not run.stop.is_set():
            self._set_status(format_status(event, run.meter) + self._tile_text(run, event))
        if event.preview is None:
            return
        image = run.throttle.offer(event.preview)
        if image is not None:
            self._show(run, image)
        elif not self._pending_timer.isActive():
            self._pending_timer.start(max(1, int(run.throttle.wait_time() * 1000) + 1))

    def _tiling_notice(self, run: ActiveRun, event) -> None:
        """The engine switched to tiling: say so once (status line and an info notification)."""
        message = getattr(event, "message", None)
        if message and not run.tiling_message:
            run.tiling_message = message
            show_info(f"Style transfer: {message}.")
            self._set_status(f"Switched to tiling — {message}.")

    @staticmethod
    def _tile_text(run: ActiveRun, event) -> str:
        if not run.tiling_message:
            return ""
        n_tiles = getattr(event, "n_tiles", 0)
        tile = getattr(event, "tile", 0)
        return f" · tiled: tile {tile}/{n_tiles}" if n_tiles and tile else " · tiled"

    def _on_stack_event(self, run: ActiveRun, stack_event: StackEvent) -> None:
        """All-slices runs: fill the nD result slice by slice as slices finish."""
        event = stack_event.event
        self._tiling_notice(run, event)
        self.progress_bar.value = min(stack_event.step, self.progress_bar.max)
        run.last_event = event
        if stack_event.done:
            self._finish_stack(run, stack_event)
            return
        if run.slice_number != stack_event.number:
            run.slice_number = stack_event.number
            run.meter = type(run.meter)(run.request.sizes, run.request.config.iterations)
        run.meter.add(event)
        if not run.stop.is_set():
            status = format_status(event, run.meter)
            tiled = self._tile_text(run, event)
            self._set_status(f"Slice {stack_event.number}/{stack_event.count} · {status}{tiled}")
        if stack_event.slice_result is not None:
            self._show_slice(run, stack_event.index, stack_event.slice_result)
            run.slices_done.append(list(stack_event.index))

    def _show_slice(self, run: ActiveRun, index: tuple[int, ...], image) -> None:
        viewer = self.viewer
        if viewer is None:
            return
        request = run.request
        if run.layer is None:
            data = np.zeros(tuple(request.lead) + tuple(image.shape), dtype=image.dtype)
            data[tuple(index)] = image
            upsampled = any(r < c for r, c in zip(image.shape[:2], request.content_shape))
            run.layer = _unwrap(
                viewer.add_image(
                    data, name=request.result_name, metadata=result_metadata(request),
                    interpolation2d="linear" if upsampled else "nearest",
                    **request.placement(image.shape[:2]), **request.display,
                )
            )  # fmt: skip
        elif run.layer in viewer.layers:
            data = run.layer.data
            data[tuple(index)] = image
            run.layer.data = data  # the same array: napari refreshes and emits a data event
        else:
            return
        run.previews_shown += 1

    def _finish_stack(self, run: ActiveRun, stack_event: StackEvent) -> None:
        event = stack_event.event
        run.final = event
        layer_gone = run.layer is not None and self.viewer is not None and run.layer not in self.viewer.layers
        if layer_gone:
            self._set_status("Stopped: the result layer was deleted.")
            return
        if run.layer is None:
            self._set_status("Stopped before the first slice was finished; there is no result.")
            return
        layer = run.layer
        if not stack_event.stopped:
            layer.data = np.asarray(stack_event.result, dtype=layer.data.dtype)
        layer.metadata.update(result_metadata(run.request, event))
        done = len(stack_event.info.get("slices", run.slices_done))
        layer.metadata.update(
            {
                "stopped": bool(stack_event.stopped), "done": not stack_event.stopped,
                "steps": int(stack_event.step), "total_steps": int(stack_event.total_steps),
                "stack": dict(stack_event.info), "slices_done": done, "slice_count": stack_event.count,
            }
        )  # fmt: skip
        if stack_event.stopped:
            layer.name = f"{layer.name} (stopped)"
            why = f" ({run.stop_reason})" if run.stop_reason else ""
            self._set_status(
                f"Stopped{why} after {done}/{stack_event.count} slices; the finished slices are kept "
                "(the others are zero)."
            )
        else:
            tiled = f" Tiled: {run.tiling_message}." if run.tiling_message else ""
            self._set_status(f"Done: {stack_event.count} slices; last slice {format_final(event)[len('Done: '):]}{tiled}")

    def _flush_pending(self) -> None:
        run = self._active
        if run is None or self._closed or run.final is not None:
            return
        image = run.throttle.take_pending()
        if image is not None:
            self._show(run, image)
        elif run.throttle.pending is not None:
            self._pending_timer.start(max(1, int(run.throttle.wait_time() * 1000) + 1))

    def _show(self, run: ActiveRun, image) -> None:
        """Put an image into the result layer (created at the first image)."""
        viewer = self.viewer
        if viewer is None:
            return
        request = run.request
        hw = image.shape[:2]
        if request.stack == "slice":  # one slice of a stack: a one-slice layer placed over it
            image = image.reshape((1,) * len(request.lead) + image.shape)
        if run.layer is None:
            geometry = request.placement(hw)
            upsampled = any(r < c for r, c in zip(hw, request.content_shape))
            run.layer = _unwrap(
                viewer.add_image(
                    image,
                    name=request.result_name,
                    metadata=result_metadata(request),
                    # a result smaller than the content is drawn smoothly, not in blocks
                    interpolation2d="linear" if upsampled else "nearest",
                    **geometry,
                    **request.display,
                )
            )
        elif run.layer in viewer.layers:
            layer = run.layer
            reshape = tuple(layer.data.shape) != tuple(image.shape)
            layer.data = image
            if reshape:  # a finer scale of a multi-scale run
                geometry = request.placement(hw)
                layer.scale = geometry["scale"]
                layer.translate = geometry["translate"]
        else:
            return
        run.previews_shown += 1

    def _finish(self, run: ActiveRun, event) -> None:
        run.final = event
        run.throttle.clear()
        self._pending_timer.stop()
        layer_gone = run.layer is not None and self.viewer is not None and run.layer not in self.viewer.layers
        if layer_gone:
            self._set_status("Stopped: the result layer was deleted.")
            return
        if event.stopped and event.step == 0 and run.layer is None:
            self._set_status("Stopped before the first iteration; there is no result.")
            return
        self._show(run, event.preview)
        layer = run.layer
        if layer is None:
            return
        layer.metadata.update(result_metadata(run.request, event))
        if event.stopped:
            layer.name = f"{layer.name} (stopped)"
        tiled = f" Tiled: {run.tiling_message}." if run.tiling_message else ""
        self._set_status(format_final(event, run.stop_reason) + tiled)

    def _on_error(self, exc: BaseException) -> None:
        run = self._active
        error = getattr(exc, "error", exc)
        if run is not None:
            run.error = error
        details = getattr(exc, "details", None)
        if details:
            logger.error("style transfer failed:\n%s", details)
        if self._closed:
            return
        message = error_message(error)
        show_error(message)
        self._set_status(f"Failed: {message}")
        if run is None or run.layer is None or self.viewer is None or run.layer not in self.viewer.layers:
            return
        # keep what was computed: the newest preview, marked as a failed, partial result
        self._pending_timer.stop()
        pending = run.throttle.pending
        run.throttle.pending = None
        if pending is not None:
            self._show(run, pending)
        layer = run.layer
        layer.metadata.update(result_metadata(run.request, run.last_event))
        layer.metadata.update({"failed": True, "partial": True, "error": message})
        layer.name = f"{layer.name} (failed)"

    def _on_finished(self) -> None:
        run = self._active
        self._active = None
        viewer = self.viewer
        if viewer is not None:
            viewer.layers.events.removed.disconnect(self._on_layer_removed)
        if self._closed:
            return
        self._pending_timer.stop()
        self._set_running(False)
        if run is not None and run.final is None and run.error is None:
            self._set_status("Stopped.")

    def _on_layer_removed(self, event) -> None:
        run = self._active
        if run is None:
            return
        if run.layer is not None and event.value is run.layer:
            self.stop("the result layer was deleted")
        elif any(event.value is layer for layer in run.inputs) and not run.stop.is_set():
            show_info(
                f"Layer '{event.value.name}' was deleted during the run; the run goes on with the copy "
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
        run = self._active
        if run is None:
            return
        run.stop.set()
        if run.worker is not None:
            run.worker.quit()
        if not run.finished.wait(CLOSE_TIMEOUT_S):  # pragma: no cover - a very slow step
            logger.warning("style transfer still running %.0f s after its viewer closed", CLOSE_TIMEOUT_S)
