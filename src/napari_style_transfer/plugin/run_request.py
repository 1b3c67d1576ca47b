"""A run as the widget starts it: the checked choices (:class:`RunRequest`), the inputs the
worker reads for it (:class:`RunInputs`); what its result layer records is in
``result_metadata.py``.

No Qt here. :func:`prepare_run` runs on the GUI thread and looks only at shapes, dtypes and
layer kinds; :meth:`RunRequest.read` reads and converts the pixels, in the worker thread.
A style is an Image layer or a source (an image file, a gallery picture: ``sources.py``);
the start image ("Start from: an image") is any Image layer, read like the content.
The content may also be the canvas (``composite.Canvas``: the visible image layers composited
as napari draws them, read like a layer); a mask may be a Labels or a Shapes layer, and each
style may take a region from a Shapes layer (``shapes.py``).
The engine's extra inputs travel in its own typed objects: a
:class:`~napari_style_transfer.engine.Guidance` (mask, label styles, style masks, style contrast
limits) and, for all slices of a stack, :class:`~napari_style_transfer.engine.StackOptions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import (
    Guidance,
    StackOptions,
    StyleConfig,
    expected_steps,
    scale_sizes,
    select_device,
)
from ..engine.full_size import result_channels
from ..settings import split_values
from .composite import CANVAS_LIMITS, Canvas, check_canvas, plan_canvas_read
from .faults import UserError
from .full_size import check_full_size_fits
from .identity import layer_identity
from .label_masks import MaskRead
from .layers import (
    LayerRead,
    base_shape,
    check_2d_image,
    current_slice_index,
    is_nd,
    layer_contrast_limits,
    layer_display,
    layer_geometry,
    lead_shape,
    plan_layer_read,
    plan_stack_read,
    read_layer,
    result_geometry,
)
from .previews import PreviewSaver, make_saver
from .run_masks import plan_run_mask
from .shapes import RegionRead, ShapesMaskRead, plan_regions, read_region_masks
from .sources import SourceRead, describe_style, is_source

#: The stack modes of an nD content: the slice shown, or every slice.
STACK_MODES = ("slice", "all")


@dataclass
class RunInputs:
    """The pixels of a run, read in the worker: content, styles and the engine's guidance."""

    content: np.ndarray
    styles: list[np.ndarray]
    guidance: Guidance
    #: The config the engine runs with (the start image set, when there is one).
    config: StyleConfig | None = None

    @property
    def content_mask(self) -> np.ndarray | None:
        return self.guidance.content_mask


@dataclass
class RunRequest:
    """Everything a run needs, decided from the layers at the moment Run was pressed.

    The pixels are not read yet: ``content_read``, ``style_reads`` and ``mask_read`` say
    what to read; :meth:`read` reads it (in the worker thread).
    """

    #: The checked settings; a start image is read later, so ``init`` is 'content' here when
    #: ``init_read`` is set (the engine gets ``init='image'``, see :meth:`read`).
    config: StyleConfig
    content_read: LayerRead
    style_reads: list[LayerRead | SourceRead]
    style_contrast_limits: list[tuple[float, float] | None]
    content_name: str
    style_names: list[str]
    #: (H, W) of the content layer's full-resolution data, which its transforms refer to.
    content_shape: tuple[int, int]
    #: The content layer's data→world transform: scale, translate, rotate, shear, affine, units.
    geometry: dict[str, Any]
    #: How to display the result like the content: rgb, colormap, contrast limits, gamma.
    display: dict[str, Any]
    #: (H, W) of each scale, coarse to fine (the last one is the output size).
    sizes: list[tuple[int, int]]
    #: nD content: None (a 2D layer), "slice" (the slice shown) or "all" (every slice).
    stack: str | None = None
    #: The leading (slice) axes' sizes of an nD content layer.
    lead: tuple[int, ...] = ()
    #: "slice" runs: the index of the slice over the leading axes.
    slice_index: tuple[int, ...] = ()
    #: "all" runs: start each slice from its neighbour's result.
    coherence: bool = True
    #: Whether the content's last axis is colour.
    rgb: bool = False
    #: The Labels (or Shapes) layer to read as the content's label image (None: no mask).
    mask_read: MaskRead | ShapesMaskRead | None = None
    #: label value → style index (labels left out keep the content).
    label_styles: dict[int, int] | None = None
    mask_name: str | None = None
    #: Each style as a result records it: {'layer': name}, {'file': path} or {'gallery': key}.
    style_sources: list[dict[str, str]] | None = None
    #: The start image's layer (None: the config's own start, content or noise).
    init_read: LayerRead | None = None
    init_name: str | None = None
    init_contrast_limits: tuple[float, float] | None = None
    #: Saves every Nth preview to a folder (None: nothing saved).
    previews: PreviewSaver | None = None
    #: Continue: the name of the result this run goes on from.
    continued_from: str | None = None
    #: What identifies each input layer beyond its name (``identity.layer_identity``):
    #: {'content': …, 'styles': [… or None for a file or gallery style], 'mask': … or None}.
    identities: dict[str, Any] | None = None
    #: The output option: the final image upsampled to ``content_shape`` (in the worker).
    full_size: bool = False
    #: The canvas as content: each layer's name and display settings (``Canvas.record``); None: a layer.
    canvas: dict[str, Any] | None = None
    #: Per style, the region its statistics come from (a Shapes layer's), or None; None: no regions.
    region_reads: list[RegionRead | None] | None = None
    region_names: list[str | None] | None = None
    #: The viewer's world point the run took its slices and nD shapes at (None: not given).
    point: tuple[float, ...] | None = None

    @property
    def result_name(self) -> str:
        if self.continued_from is not None:
            base = self.continued_from.removesuffix(" (stopped)").removesuffix(" (failed)")
            return f"{base} +{self.config.iterations}"
        if self.stack == "slice":
            return f"{self.content_name} stylised (slice {', '.join(map(str, self.slice_index))})"
        return f"{self.content_name} stylised"

    @property
    def slice_count(self) -> int:
        return int(np.prod(self.lead)) if self.stack == "all" and self.lead else 1

    @property
    def result_channels(self) -> int:
        """The result's colour channels (1: grey; RGB for a grey content given the style's colours)."""
        return result_channels(int(self.content_read.shape[-1]) if self.rgb else 1, self.config.result_colour)

    @property
    def total_steps(self) -> int:
        return sum(expected_steps(self.config.iterations, len(self.sizes))) * self.slice_count

    def read(self) -> RunInputs:
        """Read and convert the pixels (slow for lazy layers: call it in the worker thread)."""
        mask = None if self.mask_read is None else read_layer(self.mask_read, str(self.mask_name))
        config = self.config
        if self.init_read is not None:
            config = config.replace(init="image", init_image=read_layer(self.init_read, str(self.init_name)))
        return RunInputs(
            content=read_layer(self.content_read, self.content_name),
            styles=[
                plan.read() if isinstance(plan, SourceRead) else read_layer(plan, name)
                for plan, name in zip(self.style_reads, self.style_names)
            ],
            guidance=self.guidance(mask, read_region_masks(self.region_reads)),
            config=config,
        )

    def guidance(
        self, content_mask: np.ndarray | None = None, style_masks: list[np.ndarray | None] | None = None
    ) -> Guidance:
        """The engine's guidance: contrast limits of the styles and the start image, the styles'
        regions, and, with a mask, the label → style table (a Shapes mask: its shapes that cover
        the content)."""
        limits: dict[str, Any] = dict(
            style_contrast_limits=self.style_contrast_limits, init_contrast_limits=self.init_contrast_limits
        )
        if style_masks is not None:
            limits["style_masks"] = style_masks
        if content_mask is None:
            return Guidance(**limits)
        label_styles = dict(self.label_styles or {})
        if isinstance(self.mask_read, ShapesMaskRead):
            label_styles = self.mask_read.label_styles(content_mask, label_styles)
        return Guidance(content_mask=content_mask, label_styles=label_styles, **limits)

    def stack_options(self) -> StackOptions | None:
        """How the engine cuts an all-slices run into slices (None: one 2D run)."""
        if self.stack != "all":
            return None
        return StackOptions(rgb=self.rgb, coherence=self.coherence)

    def placement(self, result_hw: Sequence[int]) -> dict[str, Any]:
        """Transform kwargs for a result with slices of ``result_hw``: the content's whole data→world
        transform (nD too: rotate, shear, affine), the scale adjusted for the result's pixel size,
        and for one slice of a stack, placed at that slice."""
        lead_offset = self.slice_index if self.stack == "slice" else ()
        return result_geometry(self.geometry, self.content_shape, result_hw, lead_offset)


def check_inputs(content_layer: Any, styles: Sequence[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """Raise UserError unless the content is a usable Image layer and the styles usable layers or
    sources (files, gallery pictures) with some weight.

    Returns the (style, weight) pairs that name a style. The content may be the canvas.
    """
    if isinstance(content_layer, Canvas):
        check_canvas(content_layer)
    else:
        check_2d_image(content_layer, "content", allow_nd=True)
    styles = [(style, weight) for style, weight in styles if style is not None]
    if not styles:
        check_2d_image(None, "style")
    for style, _ in styles:
        if is_source(style):
            style.check()
            continue
        check_2d_image(style, "style", allow_nd=True)
        if style is content_layer:
            raise UserError(
                f"Layer '{style.name}' is chosen as both the content and a style; choose a different style layer."
            )
    if sum(float(w) for _, w in styles) <= 0:
        raise UserError("The style weights are all zero; give at least one style a weight above 0.")
    return styles


def check_weights_source(params: dict[str, Any]) -> None:
    """Raise UserError when the weights setting names a file that does not exist."""
    source = str(params.get("weights", "embedded"))
    if source not in ("embedded", "torchvision") and not Path(source).expanduser().is_file():
        raise UserError(f"The weight file '{source}' does not exist; choose a VGG-19 state dict file.")


def plan_init_read(
    init_layer: Any, params: dict[str, Any], index: tuple[int, ...] | None
) -> tuple[dict[str, Any], LayerRead | None]:
    """The settings without a start image to validate, and how to read the start image (if any).

    "Start from: an image" needs ``init_layer``, an Image layer read like the content (an nD
    one: the slice at ``index``, or its first slice).
    """
    if params.get("init") != "image":
        return params, None
    if init_layer is None:
        raise UserError("Start from: choose the image layer to start from (or start from the content).")
    check_2d_image(init_layer, "start image", allow_nd=True)
    if is_nd(init_layer):
        index = (
            index
            if index and len(index) == len(lead_shape(init_layer))
            else (0,) * len(lead_shape(init_layer))
        )
    plan = plan_layer_read(init_layer, params.get("size"), index=index if is_nd(init_layer) else None)
    return {**params, "init": "content"}, plan


@dataclass
class RunChoices:
    """What the user chose for a run, unchecked: the layers (or style sources), the settings and extras.

    ``styles``: (layer or source, blend weight) pairs. An nD content runs slice by slice:
    ``stack`` "slice" (the slice shown at the world ``point``) or "all"; an nD style uses its
    slice at ``point``. ``mask_layer``: a 2D Labels layer over the content (its (H, W) on the
    content's grid, or resampled from another scale and translation, see ``label_masks``);
    ``label_styles``: label → style index (labels left out keep the content). ``init_layer``:
    the start image when ``params['init']`` is 'image'. ``previews``: (folder, N) saves every
    Nth preview. ``continued_from``: the name of the result a Continue run goes on from.
    ``content`` may be a :class:`~.composite.Canvas` (the visible image layers as shown), and
    ``mask_layer`` a Shapes layer (shape i is label i + 1). ``style_regions``: per style, a Shapes
    layer whose shapes select the part of that style image its statistics come from (or None).
    """

    content: Any
    styles: Sequence[tuple[Any, float]]
    params: dict[str, Any]
    stack: str = "slice"
    point: Sequence[float] | None = None
    coherence: bool = True
    mask_layer: Any = None
    label_styles: dict[int, int] | None = None
    init_layer: Any = None
    previews: tuple[Any, int] | None = None
    continued_from: str | None = None
    style_regions: Sequence[Any] | None = None

    def layers(self) -> tuple[Any, ...]:
        """The layers the run reads (content or the canvas's layers, style layers and their regions,
        mask, start image), to notice their removal."""
        content = self.content.layers if isinstance(self.content, Canvas) else (self.content,)
        styles = (style for style, _ in self.styles)
        found = (*content, *styles, *(self.style_regions or ()), self.mask_layer, self.init_layer)
        return tuple(x for x in found if x is not None and not is_source(x))


def prepare_run(
    content_layer: Any,
    styles: Sequence[tuple[Any, float]],
    params: dict[str, Any],
    *,
    stack: str = "slice",
    point: Sequence[float] | None = None,
    coherence: bool = True,
    mask_layer: Any = None,
    label_styles: dict[int, int] | None = None,
) -> RunRequest:
    """:func:`prepare` of these choices (see :class:`RunChoices`)."""
    return prepare(
        RunChoices(content_layer, styles, params, stack, point, coherence, mask_layer, label_styles)
    )


def prepare(choices: RunChoices) -> RunRequest:
    """Check the choices and build a :class:`RunRequest`, reading no pixels (cheap on the GUI thread).

    Raises :class:`UserError` for a bad choice and
    :class:`~napari_style_transfer.engine.ConfigError` for a bad setting. ``choices.params`` may
    also hold the output options (``settings.OUTPUT_SPECS``: ``full_size``, the result at the
    content's full size).
    """
    mask_layer, label_styles, init_layer = choices.mask_layer, choices.label_styles, choices.init_layer
    params, output = split_values(choices.params)
    styles = check_inputs(choices.content, choices.styles)
    check_weights_source(params)
    long_side = params.get("size")
    content = plan_content(choices.content, choices.stack, choices.point, long_side)
    grid = content.grid  # the layer whose pixels the run covers (the canvas: its first layer)
    params, init_read = plan_init_read(init_layer, params, content.slice_index)
    weights = [float(w) for _, w in styles]
    config = StyleConfig(  # ConfigError says which field is wrong
        **{
            **params,
            "contrast_limits": content.limits,
            "style_blend_weights": tuple(weights) if len(weights) > 1 else None,
        }
    )
    select_device(config.device)  # an unavailable device fails here, before the thread starts
    picked = [style for style, _ in styles]
    style_reads = plan_style_reads(picked, long_side, config.style_scale, choices.point)
    shape = content.read.shape
    slice_hw = tuple(shape[-3:-1]) if content.rgb else tuple(shape[-2:])
    mask_read = None
    if mask_layer is not None:
        mask_read = plan_run_mask(mask_layer, grid, slice_hw, choices.point, content.mode == "all")
        check_label_styles(label_styles, len(style_reads))
    region_reads, region_names = plan_regions(
        choices.styles, choices.style_regions, picked, style_reads, choices.point
    )
    request = RunRequest(
        config=config,
        content_read=content.read,
        style_reads=style_reads,
        style_contrast_limits=[
            layer_contrast_limits(style, plan) if isinstance(plan, LayerRead) else None
            for style, plan in zip(picked, style_reads)
        ],
        content_name=choices.content.name,
        style_names=[style.name for style in picked],
        content_shape=base_shape(grid),
        geometry=layer_geometry(grid),
        display=content.display,
        sizes=scale_sizes(slice_hw, config),
        stack=content.mode,
        lead=lead_shape(grid) if content.mode is not None else (),
        slice_index=content.slice_index,
        coherence=bool(choices.coherence),
        rgb=content.rgb,
        mask_read=mask_read,
        label_styles=None if mask_read is None else {int(k): int(v) for k, v in (label_styles or {}).items()},
        mask_name=None if mask_layer is None else mask_layer.name,
        style_sources=[describe_style(style) for style in picked],
        init_read=init_read,
        init_name=None if init_read is None else init_layer.name,
        init_contrast_limits=None if init_read is None else layer_contrast_limits(init_layer, init_read),
        continued_from=choices.continued_from,
        full_size=bool(output.get("full_size", False)),
        identities=input_identities(choices.content, picked, mask_layer),
        canvas=content.canvas.record() if content.canvas is not None else None,
        region_reads=region_reads,
        region_names=region_names,
        point=None if choices.point is None else tuple(float(v) for v in choices.point),
    )
    if choices.previews is not None:
        request.previews = plan_previews(request, *choices.previews)
    if request.full_size:  # the result's channels (a grey content's may be RGB), every slice of 'all'
        read = request.content_read
        check_full_size_fits(request.content_shape, request.result_channels, request.slice_count, read.dtype)
    return request


@dataclass(frozen=True)
class ContentPlan:
    """A run's content, planned: how to read it, on whose grid, and how its result is shown."""

    #: None (2D), "slice" or "all" (see :data:`STACK_MODES`).
    mode: str | None
    slice_index: tuple[int, ...]
    read: LayerRead
    #: The layer whose pixels the run covers: the content layer, or the canvas's first layer.
    grid: Any
    limits: tuple[float, float] | None
    rgb: bool
    display: dict[str, Any]
    canvas: Canvas | None = None


def plan_content(
    content: Any, stack: str, point: Sequence[float] | None, long_side: int | None
) -> ContentPlan:
    """How to read the content (a layer, or the canvas composited in the worker), reading nothing."""
    if not isinstance(content, Canvas):
        mode, slice_index, read = plan_content_read(content, stack, point, long_side)
        limits = layer_contrast_limits(content, read)
        display = layer_display(content, limits)
        return ContentPlan(mode, slice_index, read, content, limits, bool(content.rgb), display)
    if stack not in STACK_MODES:
        raise UserError(f"Unknown stack mode {stack!r}; choose 'current slice' or 'all slices'.")
    mode = stack if is_nd(content.first) else None
    slice_index, read = plan_canvas_read(content, mode, point, long_side)
    display = {"rgb": True, "contrast_limits": CANVAS_LIMITS}
    return ContentPlan(mode, slice_index, read, content.first, CANVAS_LIMITS, True, display, content)


def plan_content_read(
    content_layer: Any, stack: str, point: Sequence[float] | None, long_side: int | None
) -> tuple[str | None, tuple[int, ...], LayerRead]:
    """(stack mode: None for a 2D layer, the slice index of a "slice" run, how to read the content)."""
    if stack not in STACK_MODES:
        raise UserError(f"Unknown stack mode {stack!r}; choose 'current slice' or 'all slices'.")
    nd = is_nd(content_layer)
    mode = stack if nd else None
    slice_index = current_slice_index(content_layer, point) if mode == "slice" else ()
    if mode == "all":
        return mode, slice_index, plan_stack_read(content_layer)
    return mode, slice_index, plan_layer_read(content_layer, long_side, index=slice_index if nd else None)


def plan_previews(request: RunRequest, folder: Any, every: int) -> PreviewSaver | None:
    """The preview saver of a run (None without a folder); refused for all-slices runs."""
    saver = make_saver(folder, every, request.result_name)
    if saver is not None and request.stack == "all":
        raise UserError("Saving previews works for 2D runs and single slices; choose 'current slice'.")
    return saver


def plan_style_reads(
    styles: Sequence[Any], long_side: int | None, style_scale: float, point: Sequence[float] | None
) -> list[LayerRead | SourceRead]:
    """How to read each style: at ``style_scale`` × the output's long side; nD layers: the slice shown."""
    style_long = None if long_side is None else max(1, round(long_side * style_scale))
    return [
        SourceRead(style, style_long)
        if is_source(style)
        else plan_layer_read(
            style, style_long, index=current_slice_index(style, point) if is_nd(style) else None
        )
        for style in styles
    ]


def input_identities(content: Any, styles: Sequence[Any], mask: Any) -> dict[str, Any]:
    """What a result records to know its input layers again (Continue): cheap, reads no lazy data.

    The canvas: each of its layers under 'canvas' (the content itself is no layer)."""
    canvas = isinstance(content, Canvas)
    return {
        "content": None if canvas else layer_identity(content),
        **({"canvas": [layer_identity(layer) for layer in content.layers]} if canvas else {}),
        "styles": [None if is_source(style) else layer_identity(style) for style in styles],
        "mask": None if mask is None else layer_identity(mask),
    }


def check_label_styles(label_styles: dict[int, int] | None, n_styles: int) -> None:
    """Raise UserError when the label → style table names a style row that is not there."""
    bad = {k: v for k, v in (label_styles or {}).items() if not 0 <= int(v) < n_styles}
    if bad:
        raise UserError(
            f"The mask table names a style that is not chosen ({bad}); pick one of the style rows."
        )
