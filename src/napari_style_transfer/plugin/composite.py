"""The canvas as a run's content: the visible Image layers as napari draws them, in one RGB image.

No Qt here. Planned on the GUI thread from the layers' attributes only (display settings, shapes
and transforms: :func:`plan_canvas_read`; no pixel is read), composited in the worker: the plan is
a :class:`~.layers.LayerRead` whose source is a virtual array (:class:`CanvasPlane`, or
:class:`CanvasStack` for every slice) that composites the rows it is indexed with, so a lazy (dask,
zarr) layer is read there, a strip at a time, and only where it lies over the canvas.

Each layer is drawn as napari's shaders draw it: a single-channel layer's values through its
contrast limits, gamma and colormap (RGBA); an RGB(A) layer per channel through its contrast
limits and gamma (its alpha channel as it is); opacity multiplies alpha. Layers are blended bottom
to top over black — translucent: ``out = c·α + out·(1−α)``, additive: ``out += c·α``, minimum:
``out = min(out, c)``, opaque: ``out = c`` — and clipped to [0, 1] after each (an 8-bit canvas
clips too). The canvas lies on the grid of its first (bottom-most) layer, at that layer's data
resolution (reduced by block means, like any layer, when it is far larger than the run needs);
the other layers are resampled onto it through their data→world transforms (nearest or linear,
as their ``interpolation2d``): scaled and moved, but not rotated or sheared against it. nD layers
give the slice shown (or, for all slices, the slice over each slice of the first layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import STRIP_BYTES, fit_long_side
from .faults import UserError
from .geometry import GRID_TOLERANCE, AxisMap, aligned_relative, world_matrix
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
TRANSLUCENT = ("translucent", "translucent_no_depth")
#: The blendings drawn as napari draws them (any other one is drawn as translucent).
BLENDINGS = (*TRANSLUCENT, "additive", "minimum", "opaque")
#: The canvas's value range: RGB floats in [0, 1].
CANVAS_LIMITS = (0.0, 1.0)


class CanvasChoice:
    """The Content list's "canvas" entry: which layers it takes is decided when Run is pressed."""

    name = CANVAS_NAME

    def __repr__(self) -> str:
        return "CANVAS"


#: The one "canvas" entry of the widget's Content list.
CANVAS = CanvasChoice()


# ----------------------------------------------------------------------------- how a layer is drawn


def colormap_record(colormap: Any) -> dict[str, Any]:
    """A napari colormap as plain JSON values (a result's metadata is saved with it)."""
    record: dict[str, Any] = {}
    for key, value in colormap.model_dump().items():
        value = getattr(value, "value", value)  # the interpolation mode
        record[key] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
    return record


@dataclass(frozen=True)
class LayerLook:
    """How a layer is drawn: what the compositor needs of it, and what a result records."""

    name: str
    rgb: bool
    contrast_limits: tuple[float, float]
    gamma: float = 1.0
    opacity: float = 1.0
    blending: str = "translucent"
    interpolation: str = "nearest"
    #: A napari ``Colormap`` (single-channel layers; None for RGB).
    colormap: Any = None

    @classmethod
    def of(cls, layer: Any) -> LayerLook:
        """The layer's display settings now (attributes only, no pixels)."""
        rgb = bool(layer.rgb)
        low, high = (float(v) for v in layer.contrast_limits)
        return cls(
            name=str(layer.name),
            rgb=rgb,
            contrast_limits=(low, high),
            gamma=float(layer.gamma),
            opacity=float(layer.opacity),
            blending=str(getattr(layer.blending, "value", layer.blending)),
            interpolation=str(getattr(layer.interpolation2d, "value", layer.interpolation2d)),
            colormap=None if rgb else layer.colormap,
        )

    def record(self) -> dict[str, Any]:
        """Plain JSON values: the layer's name and display settings (its fields)."""
        record = dataclasses.asdict(self)
        record.update(contrast_limits=list(self.contrast_limits), colormap=None)
        if self.colormap is not None:
            record["colormap"] = colormap_record(self.colormap)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LayerLook:
        """The look a result recorded (:meth:`record`); UserError when the record is damaged."""
        from napari.utils.colormaps import Colormap

        try:
            values = dict(record)
            cmap = values.pop("colormap", None)
            values["contrast_limits"] = tuple(float(v) for v in values["contrast_limits"])
            colormap = None if cmap is None else Colormap(**{k: v for k, v in cmap.items() if v is not None})
            return cls(**values, colormap=colormap)
        except Exception as exc:  # noqa: BLE001 - a hand-edited or damaged record
            raise UserError(f"This result's record of the canvas is damaged ({exc}); run it again.") from exc

    def colours(self, values: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """(RGB in [0, 1], alpha) of raw ``values`` ((h, w) or (h, w, C) floats of ``dtype``)."""
        low, high = self.contrast_limits
        span = high - low if high != low else 1.0
        with np.errstate(invalid="ignore"):
            if not self.rgb:
                level = np.clip((values - low) / span, 0.0, 1.0) ** self.gamma
                rgba = np.asarray(self.colormap.map(level), dtype=np.float64)
                return rgba[..., :3], rgba[..., 3] * self.opacity
            colour = np.clip((values[..., :3] - low) / span, 0.0, 1.0) ** self.gamma
        alpha = np.ones(values.shape[:2])
        if values.shape[-1] > 3:
            scale = float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0
            alpha = np.clip(values[..., 3] / scale, 0.0, 1.0)
        missing = np.isnan(colour).any(axis=-1)
        alpha = np.where(missing | np.isnan(alpha), 0.0, alpha)
        return np.nan_to_num(colour), alpha * self.opacity


def blend(out: np.ndarray, colour: np.ndarray, alpha: np.ndarray, blending: str) -> None:
    """Draw ``colour`` with ``alpha`` over ``out`` (in place) as napari's ``blending`` does."""
    if blending == "additive":
        out += colour * alpha[..., None]
    elif blending == "minimum":
        np.minimum(out, colour, out=out)
    elif blending == "opaque":
        out[...] = colour
    else:  # translucent, translucent_no_depth
        a = alpha[..., None]
        out[...] = colour * a + out * (1.0 - a)
    np.clip(out, 0.0, 1.0, out=out)


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


# ----------------------------------------------------------------------------- compositing


def axis_samples(
    coords: np.ndarray, n: int, linear: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per coordinate: the two pixels to read along one axis and the weight of the second
    (None: nearest neighbour, the two are the same); clamped to the edge like a texture."""
    if not linear:
        index = np.clip(np.floor(coords + 0.5), 0, n - 1).astype(np.int64)
        return index, index, None
    low = np.floor(coords)
    first, second = (np.clip(low + k, 0, n - 1).astype(np.int64) for k in (0, 1))
    return first, second, coords - low


def resample(block: np.ndarray, axis: int, first: np.ndarray, second: np.ndarray, weight: Any) -> np.ndarray:
    """``block`` sampled along ``axis`` (0 or 1) at the pixels of :func:`axis_samples`."""
    near = np.take(block, first, axis=axis)
    if weight is None:
        return near
    shape = [1] * block.ndim
    shape[axis] = -1
    w = np.asarray(weight).reshape(shape)
    return near * (1.0 - w) + np.take(block, second, axis=axis) * w


@dataclass(frozen=True)
class Part:
    """One layer's share in a canvas slice: its array and slice, where its pixels lie, how it is drawn."""

    look: LayerLook
    source: Any
    index: tuple[int, ...]
    size: tuple[int, int]
    rows: AxisMap
    cols: AxisMap

    def draw(self, out: np.ndarray, row0: int) -> None:
        """Blend this layer into ``out``: the canvas's rows ``row0 …`` (all its columns), in place."""
        found = [
            self._coordinates(out.shape[0], row0, self.rows, self.size[0]),
            self._coordinates(out.shape[1], 0, self.cols, self.size[1]),
        ]
        if any(coords.size == 0 for _, coords in found):
            return  # the layer lies beside these rows
        (rows_at, ys), (cols_at, xs) = found
        linear = self.look.interpolation != "nearest"
        y0, y1, ty = axis_samples(ys, self.size[0], linear)
        x0, x1, tx = axis_samples(xs, self.size[1], linear)
        r_lo, r_hi, c_lo, c_hi = int(y0.min()), int(y1.max()) + 1, int(x0.min()), int(x1.max()) + 1
        dtype = np.dtype(self.source.dtype)
        block = np.asarray(self.source[(*self.index, slice(r_lo, r_hi), slice(c_lo, c_hi))], dtype=np.float64)
        values = resample(block, 0, y0 - r_lo, y1 - r_lo, ty)
        values = resample(values, 1, x0 - c_lo, x1 - c_lo, tx)
        colour, alpha = self.look.colours(values, dtype)
        region = out[rows_at[0] : rows_at[-1] + 1, cols_at[0] : cols_at[-1] + 1]
        blend(region, colour, alpha, self.look.blending)

    @staticmethod
    def _coordinates(count: int, offset: int, axis_map: AxisMap, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(the ``count`` pixels from canvas pixel ``offset`` whose centres lie on the layer, counted
        from ``offset``; their coordinates in the layer's pixels)."""
        a, b = axis_map
        local = np.arange(count)
        coords = a * (local + offset) + b
        inside = (coords >= -0.5 - GRID_TOLERANCE) & (coords < n - 0.5 - GRID_TOLERANCE)
        return local[inside], coords[inside]


class CanvasPlane:
    """One slice of the canvas as a virtual (H, W, 3) float32 array: indexing rows composites them."""

    def __init__(self, parts: Sequence[Part], hw: tuple[int, int]):
        self.parts = tuple(parts)
        self.shape = (int(hw[0]), int(hw[1]), 3)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The canvas's rows ``start:stop`` (float32 RGB in [0, 1]): every layer read and blended."""
        out = np.zeros((max(0, stop - start), self.shape[1], 3))
        if out.shape[0]:
            for part in self.parts:
                part.draw(out, start)
        return out.astype(np.float32)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(self.shape[0])
            return self.rows(start, stop)
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, np.float32)
        step = max(1, STRIP_BYTES // max(1, self.shape[1] * 3 * 8 * (1 + len(self.parts))))
        for start in range(0, self.shape[0], step):
            out[start : start + step] = self.rows(start, min(self.shape[0], start + step))
        return out if dtype is None else out.astype(dtype)


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
    """What a canvas run reads, decided on the GUI thread: the parts of each slice, built on demand."""

    looks: tuple[LayerLook, ...]
    sources: tuple[Any, ...]
    sizes: tuple[tuple[int, int], ...]
    maps: tuple[tuple[AxisMap, AxisMap], ...]
    finder: SliceFinder
    hw: tuple[int, int]

    def plane(self, first_index: tuple[int, ...] = ()) -> CanvasPlane:
        """The canvas over slice ``first_index`` of the first layer (every layer at its slice there)."""
        parts = [
            Part(look, source, first_index if i == 0 else self.finder.index(i, first_index), size, *axis_maps)
            for i, (look, source, size, axis_maps) in enumerate(
                zip(self.looks, self.sources, self.sizes, self.maps)
            )
        ]
        return CanvasPlane(parts, self.hw)


def plan_canvas(canvas: Canvas, point: Sequence[float] | None = None) -> CanvasPlan:
    """Check the canvas and take what compositing needs from its layers (no pixel is read)."""
    check_canvas(canvas)
    layers, first = list(canvas.layers), canvas.first
    return CanvasPlan(
        looks=tuple(canvas.look_list()),
        sources=tuple(full_data(layer) for layer in layers),
        sizes=tuple(base_shape(layer) for layer in layers),
        maps=tuple(relative_map(layer, first) for layer in layers),
        finder=slice_finder(layers, point),
        hw=base_shape(first),
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
    (every slice of the first layer, at full resolution).
    """
    plan = plan_canvas(canvas, point)
    first = canvas.first
    if mode == "all":
        lead = lead_shape(first)
        stack = CanvasStack(plan.plane, lead, plan.hw)
        check_fits_in_memory((int(np.prod(lead)) * plan.hw[0], plan.hw[1], 3), stack.dtype, canvas.name)
        return (), LayerRead(stack)
    index = current_slice_index(first, point) if mode == "slice" else ()
    k = reduction(plan.hw, long_side)
    read = LayerRead(plan.plane(index), (), k)
    check_fits_in_memory(read.shape, read.dtype, canvas.name)
    return index, read
