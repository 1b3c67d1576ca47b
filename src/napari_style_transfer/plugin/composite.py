"""The canvas as a run's content: the visible Image layers as napari draws them, in one RGB image.

No Qt here. Planned on the GUI thread from the layers' attributes only (display settings, shapes
and transforms: :func:`plan_canvas_read`; no pixel is read), composited in the worker: the plan is
a :class:`~.layers.LayerRead` whose source is a virtual array (``canvas_draw.CanvasPlane``, or
:class:`CanvasStack` for every slice) that composites the rows it is indexed with, so a lazy (dask,
zarr) layer is read there, a strip at a time, and only where it lies over the canvas.

Each layer is drawn as napari's shaders draw it (``canvas_draw``): a single-channel layer's values
through its contrast limits, gamma and colormap (RGBA); an RGB(A) layer per channel through its
contrast limits and gamma (its alpha channel as it is); opacity multiplies alpha. Layers are blended
bottom to top over black — translucent: ``out = c·α + out·(1−α)``, additive: ``out += c·α``,
minimum: ``out = min(out, c)``, opaque: ``out = c`` — and clipped to [0, 1] after each (an 8-bit
canvas clips too). The canvas lies on the grid of its first (bottom-most) layer, at that layer's
(level-0) data resolution (reduced by block means, like any layer, when it is far larger than the
run needs); the other layers are resampled onto it through their data→world transforms (nearest or
linear, as their ``interpolation2d``): scaled and moved, but not rotated or sheared against it. A
multiscale (pyramid) layer is read from its coarsest level that still covers what the run needs
(``canvas_levels``), never from level 0 when a smaller level does. nD layers give the slice shown
(or, for all slices, the slice over each slice of the first layer, at full resolution).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import fit_long_side
from .canvas_draw import CanvasPlane, LayerLook, Part
from .canvas_levels import LayerSource, canvas_sources
from .faults import UserError
from .geometry import AxisMap, aligned_relative, world_matrix
from .layers import (
    REDUCE_AT,
    LayerRead,
    base_shape,
    check_2d_image,
    check_fits_in_memory,
    current_slice_index,
    full_data,
    is_image_layer,
    is_result_layer,
    lead_shape,
)

#: The content name of a canvas run (its result is "canvas stylised").
CANVAS_NAME = "canvas"
#: What the widget's Content list says for the canvas.
CANVAS_LABEL = "the canvas (visible image layers as shown)"
#: The canvas's value range: RGB floats in [0, 1].
CANVAS_LIMITS = (0.0, 1.0)


class CanvasChoice:
    """The Content list's "canvas" entry: which layers it takes is decided when Run is pressed."""

    name = CANVAS_NAME

    def __repr__(self) -> str:
        return "CANVAS"


#: The one "canvas" entry of the widget's Content list.
CANVAS = CanvasChoice()


# ----------------------------------------------------------------------------- the canvas's layers


@dataclass(frozen=True)
class Canvas:
    """The canvas as a run's content: its Image layers bottom to top, and how each is drawn
    (``looks``: as recorded by a result; None: as the layers are drawn now)."""

    layers: tuple[Any, ...]
    looks: tuple[LayerLook, ...] | None = None
    name: str = CANVAS_NAME
    rgb: bool = True

    @property
    def first(self) -> Any:
        """The bottom-most layer: the canvas lies on its grid (None without layers)."""
        return self.layers[0] if self.layers else None

    def look_list(self) -> list[LayerLook]:
        return list(self.looks) if self.looks is not None else [LayerLook.of(layer) for layer in self.layers]

    def record(self) -> dict[str, Any]:
        """What a result records of its canvas: each layer's name and display settings."""
        return {"layers": [look.record() for look in self.look_list()]}


def is_canvas(obj: Any) -> bool:
    """True for the canvas as a content (or the widget's "canvas" entry)."""
    return isinstance(obj, (Canvas, CanvasChoice))


def canvas_layers(layers: Iterable[Any], exclude: Iterable[Any] = ()) -> list[Any]:
    """The layers the canvas takes: the visible Image layers, bottom to top, except ``exclude``
    (the run's style layers) and this plugin's results (they lie over what they were made from)."""
    left_out = {id(layer) for layer in exclude}
    return [
        layer
        for layer in layers
        if is_image_layer(layer)
        and bool(layer.visible)
        and id(layer) not in left_out
        and not is_result_layer(layer)
    ]


def make_canvas(layers: Iterable[Any], exclude: Iterable[Any] = ()) -> Canvas:
    """The canvas of the viewer's ``layers`` now (see :func:`canvas_layers`)."""
    return Canvas(tuple(canvas_layers(layers, exclude)))


def check_canvas(canvas: Canvas) -> None:
    """Raise UserError unless the canvas has a usable first layer and only numeric image layers."""
    if canvas.first is None:
        raise UserError(
            "The canvas shows no image layer to stylise: make an image layer visible "
            "(style layers and earlier results are left out of the canvas)."
        )
    if canvas.looks is not None and len(canvas.looks) != len(canvas.layers):
        raise UserError("The canvas's layers and their display settings do not match; run it again.")
    check_2d_image(canvas.first, "content", allow_nd=True)
    for layer in canvas.layers:
        dtype = np.dtype(full_data(layer).dtype)
        if dtype.kind not in "biuf":
            raise UserError(
                f"Layer '{layer.name}' holds {dtype} values, which the canvas cannot draw; hide it "
                "(or choose a single layer as the content)."
            )


def relative_map(layer: Any, first: Any) -> tuple[AxisMap, AxisMap]:
    """Per axis, first layer's pixel coordinate → ``layer``'s pixel coordinate (scale and move only).

    UserError (naming the layer) when the layer is rotated or sheared against the first one.
    """
    if layer is first:
        return (1.0, 0.0), (1.0, 0.0)
    relative = aligned_relative(layer, first)
    if relative is None:
        raise UserError(
            f"Layer '{layer.name}' is rotated or sheared against '{first.name}' in the viewer, so the canvas "
            "cannot lay it on that layer's pixels; give it the same rotation and shear, or hide it."
        )
    return (float(relative[0, 0]), float(relative[0, 2])), (float(relative[1, 1]), float(relative[1, 2]))


@dataclass(frozen=True)
class SliceFinder:
    """Where an nD layer's slice lies for each slice of the canvas's first layer (plain matrices,
    taken on the GUI thread: the worker never asks a layer)."""

    first_matrix: np.ndarray
    point: tuple[float, ...]
    matrices: tuple[np.ndarray | None, ...]
    leads: tuple[tuple[int, ...], ...]

    def index(self, i: int, first_index: Sequence[int]) -> tuple[int, ...]:
        """Layer ``i``'s slice (its leading axes) under slice ``first_index`` of the first layer."""
        inverse, lead = self.matrices[i], self.leads[i]
        if inverse is None or not lead:
            return ()
        n_first = self.first_matrix.shape[0] - 1
        data = np.zeros(n_first + 1)
        data[: len(first_index)] = first_index
        data[-1] = 1.0
        point = np.array(self.point, dtype=float)
        point[len(point) - n_first :] = (self.first_matrix @ data)[:n_first]
        n = inverse.shape[0] - 1
        mine = np.r_[point[len(point) - n :], 1.0]
        found = (inverse @ mine)[: len(lead)]
        return tuple(int(min(max(round(float(v)), 0), s - 1)) for v, s in zip(found, lead))


def slice_finder(layers: Sequence[Any], point: Sequence[float] | None) -> SliceFinder:
    """A :class:`SliceFinder` for the canvas's layers at the viewer's world ``point``."""
    ndim = max(int(layer.ndim) for layer in layers)
    given = tuple(float(v) for v in point) if point is not None else ()
    full = (0.0,) * max(0, ndim - len(given)) + given
    return SliceFinder(
        first_matrix=world_matrix(layers[0]),
        point=full,
        matrices=tuple(
            np.linalg.inv(world_matrix(layer)) if int(layer.ndim) > 2 else None for layer in layers
        ),
        leads=tuple(lead_shape(layer) for layer in layers),
    )


class CanvasStack:
    """Every slice of an nD canvas as a virtual (*lead, H, W, 3) float32 array."""

    def __init__(self, plane_at: Any, lead: tuple[int, ...], hw: tuple[int, int]):
        self.plane_at = plane_at
        self.lead = tuple(int(n) for n in lead)
        self.shape = (*self.lead, int(hw[0]), int(hw[1]), 3)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        key, n = (key if isinstance(key, tuple) else (key,)), len(self.lead)
        if len(key) >= n and all(isinstance(k, (int, np.integer)) for k in key[:n]):
            plane = self.plane_at(tuple(int(k) for k in key[:n]))  # one slice: composited when indexed
            return plane[key[n:]] if key[n:] else plane
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, np.float32)
        for index in np.ndindex(*self.lead):
            out[index] = np.asarray(self.plane_at(index))
        return out if dtype is None else out.astype(dtype)


@dataclass(frozen=True)
class CanvasPlan:
    """What a canvas run reads, decided on the GUI thread: the parts of each slice, built on demand.

    ``hw``: the (H, W) of the grid the layers are composited on (the first layer's, reduced by the
    grid factor of ``canvas_levels``); ``reduce``: the block-mean factor applied after compositing.
    """

    looks: tuple[LayerLook, ...]
    sources: tuple[LayerSource, ...]
    finder: SliceFinder
    hw: tuple[int, int]
    reduce: int = 1

    def plane(self, first_index: tuple[int, ...] = ()) -> CanvasPlane:
        """The canvas over slice ``first_index`` of the first layer (every layer at its slice there)."""
        parts = [
            Part(
                look,
                read.source,
                read.index(first_index if i == 0 else self.finder.index(i, first_index)),
                read.size,
                read.rows,
                read.cols,
            )
            for i, (look, read) in enumerate(zip(self.looks, self.sources))
        ]
        return CanvasPlane(parts, self.hw)


def plan_canvas(
    canvas: Canvas, point: Sequence[float] | None = None, long_side: int | None = None
) -> CanvasPlan:
    """Check the canvas and take what compositing needs from its layers (no pixel is read).

    ``long_side``: what the run needs (None: every layer at full resolution); a pyramid layer
    then gives its coarsest level that still covers it (``canvas_levels``).
    """
    check_canvas(canvas)
    layers, first = list(canvas.layers), canvas.first
    hw = base_shape(first)
    k = reduction(hw, long_side)
    step = None if long_side is None else tuple(h / t for h, t in zip(hw, fit_long_side(hw, long_side)))
    sources, g = canvas_sources(layers, [relative_map(layer, first) for layer in layers], step, k)
    return CanvasPlan(
        looks=tuple(canvas.look_list()),
        sources=sources,
        finder=slice_finder(layers, point),
        hw=(-(-hw[0] // g), -(-hw[1] // g)),
        reduce=k // g,
    )


def reduction(hw: tuple[int, int], long_side: int | None) -> int:
    """The block-mean factor for a canvas far larger than the run needs (1: none), as for a layer."""
    if long_side is None:
        return 1
    target = fit_long_side(hw, long_side)
    k = min(hw[0] // (REDUCE_AT * target[0]), hw[1] // (REDUCE_AT * target[1]))
    return k if k >= 2 else 1


def plan_canvas_read(
    canvas: Canvas, mode: str | None, point: Sequence[float] | None, long_side: int | None
) -> tuple[tuple[int, ...], LayerRead]:
    """(the first layer's slice index for a "slice" run, how to read the canvas) — reading nothing.

    ``mode``: None (a 2D first layer), "slice" (the slice shown at the world ``point``) or "all"
    (every slice of the first layer, at full resolution: every layer's level 0).
    """
    first = canvas.first
    if mode == "all":
        plan = plan_canvas(canvas, point)
        lead = lead_shape(first)
        stack = CanvasStack(plan.plane, lead, plan.hw)
        check_fits_in_memory((int(np.prod(lead)) * plan.hw[0], plan.hw[1], 3), stack.dtype, canvas.name)
        return (), LayerRead(stack)
    plan = plan_canvas(canvas, point, long_side)
    index = current_slice_index(first, point) if mode == "slice" else ()
    read = LayerRead(plan.plane(index), (), plan.reduce)
    check_fits_in_memory(read.shape, read.dtype, canvas.name)
    return index, read
