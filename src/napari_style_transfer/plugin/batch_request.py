"""A batch as the widget starts it: every selected image layer, or every slice of a stack, through
the engine's :func:`~napari_style_transfer.napari_style_transfer.stylize_batch` (the CLI's batch path).

No Qt here. :func:`prepare_batch` runs on the GUI thread and, like ``prepare_run``, looks only
at shapes, dtypes and layer kinds: one :class:`~.run_request.RunRequest` per layer says how to
read it and where its result goes. The pixels are read later: the styles in the widget's
worker thread, each content by the Dask worker that stylises it (a lazy read per item), so a
slow or failing layer never blocks napari and fails only its own item. A style row's region (a
Shapes layer) is planned like a single run's (its outlines, on the GUI thread) and rasterised in
that worker thread too, into the engine's ``Guidance.style_masks``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import Guidance, StyleConfig
from .composite import is_canvas
from .faults import UserError
from .layers import LayerRead, format_bytes, free_host_memory, is_image_layer, is_nd
from .result_metadata import result_metadata
from .run_request import RunChoices, RunRequest, prepare
from .shapes import read_region_masks

#: What a batch stylises: the selected image layers, or every slice of the content stack.
BATCH_MODES = ("layers", "slices")


@dataclass
class BatchRequest:
    """A batch decided on the GUI thread; :meth:`contents` and :meth:`read_styles` read nothing until used.

    ``runs``: one request per layer ("layers"), or one whose result is the whole stack
    ("slices"); ``reads``: how to read each layer ("slices": how to read the first slice, the
    others alike); ``limits``: each layer's value range ("slices": the config's, shared).
    """

    mode: str
    runs: list[RunRequest]
    reads: list[LayerRead]
    config: StyleConfig
    names: list[str]
    limits: list[tuple[float, float] | None] | None = None
    lead: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        return int(np.prod(self.lead, dtype=np.int64)) if self.mode == "slices" else len(self.reads)

    def item_reads(self) -> list[LayerRead]:
        """How to read each item ("slices": one per slice, made here, not on the GUI thread)."""
        if self.mode == "layers":
            return list(self.reads)
        first = self.reads[0]
        return [
            LayerRead(first.source, tuple(int(i) for i in index), first.reduce)
            for index in np.ndindex(*self.lead)
        ]

    @property
    def style_request(self) -> RunRequest:
        """The request whose style reads and contrast limits every item shares."""
        return self.runs[0]

    def run_for(self, index: int) -> RunRequest:
        """The request that places item ``index``'s result."""
        return self.runs[index] if self.mode == "layers" else self.runs[0]

    def slice_index(self, index: int) -> tuple[int, ...]:
        """ "slices": the index over the leading axes of item ``index``."""
        return tuple(int(i) for i in np.unravel_index(index, self.lead))

    def item_name(self, index: int) -> str:
        """ "layers": the layer's name; "slices": 'slice 3' ('slice 1, 2' over several axes)."""
        if self.mode == "layers":
            return self.names[index]
        return f"slice {', '.join(str(i) for i in self.slice_index(index))}"

    def read_styles(self) -> list[np.ndarray]:
        """The style images (call it in a worker thread: layers may be lazy)."""
        return [plan.read() for plan in self.style_request.style_reads]

    def guidance(self) -> Guidance:
        """The styles' contrast limits and region masks, as a single run gives them (call it in the
        worker thread: the regions' shapes are rasterised here)."""
        run = self.style_request
        return run.guidance(style_masks=read_region_masks(run.region_reads))

    def contents(self) -> list[LayerRead]:
        """One reader per item: ``stylize_batch`` hands it to the Dask worker, which reads it."""
        return self.item_reads()

    def metadata(self, index: int, seconds: float = 0.0) -> dict[str, Any]:
        """What item ``index``'s result layer records ("layers": the item; "slices": the stack)."""
        meta = result_metadata(self.run_for(index))
        meta["batch"] = {"mode": self.mode, "items": self.total}
        if self.mode == "layers":
            meta.update({"done": True, "elapsed_s": round(float(seconds), 3)})
            meta["config"] = {**meta["config"], "contrast_limits": (self.limits or [None])[index]}
        return meta


def batch_layers(
    selected: Sequence[Any], styles: Sequence[tuple[Any, float]], all_layers: Sequence[Any]
) -> list[Any]:
    """The selected image layers that are not styles, in the layer list's order."""
    style_ids = {id(layer) for layer, _ in styles if layer is not None}
    chosen = {id(layer) for layer in selected}
    return [
        layer
        for layer in all_layers
        if id(layer) in chosen and is_image_layer(layer) and id(layer) not in style_ids
    ]


def prepare_batch(
    mode: str,
    layers: Sequence[Any],
    styles: Sequence[tuple[Any, float]],
    params: dict[str, Any],
    *,
    point: Sequence[float] | None = None,
    mask_layer: Any = None,
    style_regions: Sequence[Any] | None = None,
) -> BatchRequest:
    """Check a batch and decide what each item reads, reading no pixels (cheap on the GUI thread).

    ``layers``: "layers" mode, the layers to stylise (from :func:`batch_layers`); "slices"
    mode, the one nD content layer. ``style_regions``: per style row, the Shapes layer of its
    region or None (see :class:`~.run_request.RunChoices`). Raises :class:`UserError` (or
    ConfigError) in one sentence.
    """
    if mode not in BATCH_MODES:
        raise UserError(f"Unknown batch mode {mode!r}; choose 'selected layers' or 'every slice'.")
    if mask_layer is not None:
        raise UserError("A batch does not use a mask; clear 'Mask' or turn Batch off.")
    if mode == "slices":
        return _prepare_slices(
            RunChoices(
                layers[0] if layers else None, styles, params, point=point, style_regions=style_regions
            )
        )
    if not layers:
        raise UserError(
            "Batch: select the image layers to stylise in the layer list (the style layers are left out)."
        )
    runs = [
        prepare(RunChoices(layer, styles, params, point=point, style_regions=style_regions))
        for layer in layers
    ]
    limits = [run.config.contrast_limits for run in runs]
    return BatchRequest(
        mode="layers",
        runs=runs,
        reads=[run.content_read for run in runs],
        config=runs[0].config.replace(contrast_limits=None),
        names=[layer.name for layer in layers],
        limits=limits,
    )


def _prepare_slices(choices: RunChoices) -> BatchRequest:
    """Every slice of an nD layer, read at the size the run needs (one slice at a time), into one
    nD result that must fit in memory."""
    layer = choices.content
    if is_canvas(layer):
        raise UserError(canvas_refusal(layer))
    if layer is not None and not is_nd(layer):
        raise UserError(
            f"Batch 'every slice' needs a stack, and layer '{layer.name}' is 2D; "
            "choose 'selected layers' to stylise several 2D layers."
        )
    run = prepare(choices)  # the checks (stack "slice"), and one slice's read
    lead = tuple(run.lead)
    first = run.content_read
    _check_result_fits(run, first)
    stack_run = dataclasses.replace(run, stack="all", slice_index=())
    return BatchRequest("slices", [stack_run], [first], run.config, [layer.name], lead=lead)


def canvas_refusal(canvas: Any) -> str:
    """Why 'every slice' does not take the canvas, and the run that stylises every slice of it."""
    first = getattr(canvas, "first", None)
    if first is not None and is_nd(first):
        return (
            "Batch 'every slice' takes one image layer as the content, not the canvas; to stylise every "
            "slice of the canvas, set Stack to 'all slices' and turn Batch off."
        )
    return (
        "Batch 'every slice' takes one image layer with slices as the content, not the canvas; "
        "turn Batch off to stylise the canvas."
    )


def _check_result_fits(run: RunRequest, read: LayerRead) -> None:
    """The nD result layer holds every slice's result: refuse a stack whose results would not fit."""
    h, w = run.sizes[-1]
    channels = int(read.shape[-1]) if run.rgb else 1
    n_slices = int(np.prod(run.lead, dtype=np.int64))
    need = n_slices * h * w * channels * read.dtype.itemsize
    free = free_host_memory()
    if free is not None and need > free:
        raise UserError(
            f"Layer '{run.content_name}' has {n_slices} slices; their results at {w}×{h} px need about "
            f"{format_bytes(need)} of memory but only {format_bytes(free)} are free — lower the output "
            "size, or stylise the current slice (Batch off)."
        )
