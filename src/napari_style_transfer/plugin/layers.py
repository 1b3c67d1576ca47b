"""napari layers as the engine's inputs: checks, read plans, and the arrays they read.

No Qt here; napari layer objects are used as duck-typed inputs (``data``, ``ndim``,
``multiscale``, ``rgb``, ``contrast_limits``). Everything a run needs is decided on the GUI
thread from shapes and dtypes alone (:func:`plan_layer_read`; a Labels mask:
``label_masks.plan_mask_read``), and read later, in the worker thread (:meth:`LayerRead.read`),
so that a lazy (dask, zarr) layer whose chunks are slow never freezes napari.

A read takes only what the run needs: the smallest pyramid level that is big enough, and
for an image at least :data:`REDUCE_AT` times the needed size per side, block means read
strip by strip (so a lazy array is never loaded whole). What would not fit in memory is
refused with a sentence naming a size that does. Nothing here touches a layer's data in
place: every read is a private copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import MIN_SIDE, block_mean, fit_long_side
from ..engine.memory import available_memory, largest_side_for
from ..messages import first_line
from .faults import UserError

#: Marker in a result layer's metadata (so a result is never picked as a default input).
PLUGIN_KEY = "napari-style-transfer"
#: A layer is reduced on reading (block means) when it is at least this many times the
#: size the run needs, per side; the engine then does the final, antialiased resize.
REDUCE_AT = 2
#: Host memory per pixel to turn an image into the engine's RGB float input (float64
#: temporaries, the float32 RGB copy and its tensor), on top of the copy of the data.
CONVERT_BYTES_PER_PIXEL = 128


def is_image_layer(layer: Any) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image)


def layer_kind(layer: Any) -> str:
    """'Labels', 'Points', … (for messages)."""
    return type(layer).__name__


def full_data(layer: Any) -> Any:
    """The layer's full-resolution array (level 0 of a pyramid); never read here."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def full_shape(layer: Any) -> tuple[int, ...]:
    """The shape of the layer's full-resolution data."""
    return tuple(int(s) for s in full_data(layer).shape)


def base_shape(layer: Any) -> tuple[int, int]:
    """(H, W) of the layer's full-resolution data (what its transforms refer to; the last two
    spatial axes of an nD layer)."""
    shape = full_shape(layer)
    spatial = int(layer.ndim)
    return shape[spatial - 2], shape[spatial - 1]


def level_for(layer: Any, long_side: int | None) -> Any:
    """The layer's data; for a multiscale (pyramid) layer the smallest level that is big enough."""
    if not getattr(layer, "multiscale", False):
        return layer.data
    levels = list(layer.data)
    if long_side is None:
        return levels[0]
    chosen = levels[0]
    for level in levels:  # largest first
        if max(level.shape[:2]) >= long_side:
            chosen = level
    return chosen


def slice_level_for(layer: Any, long_side: int | None, index: tuple[int, ...]) -> tuple[Any, tuple[int, ...]]:
    """The array to read slice ``index`` (full-resolution numbers) of an nD layer from, and the
    index in it: a pyramid's smallest level whose slices are big enough (its leading axes may be
    shorter), so a virtual stack far larger than memory is read one small slice at a time."""
    full = full_data(layer)
    if not getattr(layer, "multiscale", False) or long_side is None:
        return full, index
    n, chosen = len(index), full
    for level in layer.data:  # largest first
        if max(int(s) for s in level.shape[n : n + 2]) >= long_side:
            chosen = level
    mapped = tuple(
        min(i * int(lv) // int(fl), int(lv) - 1) for i, lv, fl in zip(index, chosen.shape[:n], full.shape[:n])
    )
    return chosen, mapped


def read_layer(plan: Any, name: str) -> np.ndarray:
    """``plan.read()``, with a failure of the layer's storage (a dask chunk, a zarr store, a file
    that went away) said as one sentence that names the layer (:class:`UserError`)."""
    try:
        return plan.read()
    except (MemoryError, UserError):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the layer's array raises while it is read
        raise UserError(
            f"Could not read layer '{name}' — {type(exc).__name__}: {first_line(exc).rstrip('.')}.", "error"
        ) from exc


def is_nd(layer: Any) -> bool:
    """True for an Image layer with more than two spatial axes (a stack or time-lapse)."""
    return layer is not None and is_image_layer(layer) and int(layer.ndim) > 2


def lead_shape(layer: Any) -> tuple[int, ...]:
    """The sizes of an nD layer's leading (slice) axes."""
    return full_shape(layer)[: int(layer.ndim) - 2]


def current_slice_index(layer: Any, point: Sequence[float] | None) -> tuple[int, ...]:
    """The slice of an nD layer shown at the viewer's world ``point`` (its leading axes).

    ``point`` is ``viewer.dims.point`` (world coordinates); None or a failed transform
    gives the first slice.
    """
    lead = lead_shape(layer)
    if not lead:
        return ()
    index = [0] * len(lead)
    if point is not None:
        try:
            data_point = layer.world_to_data(tuple(point)[-int(layer.ndim) :])
            index = [int(round(float(v))) for v in tuple(data_point)[: len(lead)]]
        except Exception:  # noqa: BLE001 - a missing or odd transform: first slice
            pass
    return tuple(min(max(v, 0), n - 1) for v, n in zip(index, lead))


def check_2d_image(layer: Any, role: str, allow_nd: bool = False) -> None:
    """Raise UserError unless ``layer`` is a 2D grayscale, RGB or RGBA Image layer (or nD, if allowed)."""
    if layer is None:
        if role == "content":
            raise UserError(
                "There is no image layer to stylise: open an image first "
                "(or File ▸ Open Sample ▸ Style Transfer ▸ Cat and swirls)."
            )
        raise UserError("Choose at least one image layer as the style.")
    if not is_image_layer(layer):
        raise UserError(
            f"Layer '{layer.name}' is a {layer_kind(layer)} layer; choose an Image layer as the {role}."
        )
    if layer.ndim == 2:
        return
    shape = full_shape(layer)
    spatial = int(layer.ndim)
    if not allow_nd:
        raise UserError(
            f"Layer '{layer.name}' has {layer.ndim} dimensions {shape}; only 2D images "
            "(grayscale, RGB or RGBA) are supported so far — nD stacks will come in a later version"
            f"{channel_hint(shape)}."
        )
    if min(shape[spatial - 2 : spatial]) < MIN_SIDE:
        raise UserError(
            f"Layer '{layer.name}' has {layer.ndim} dimensions {shape}; a stack is stylised slice by slice "
            f"over its last two axes, and {shape[spatial - 2]}×{shape[spatial - 1]} px slices are too small"
            f"{channel_hint(shape)}."
        )


def channel_hint(shape: tuple[int, ...]) -> str:
    """' (if axis i holds channels, …)' when one small axis of a 3D layer looks like channels."""
    if len(shape) != 3:
        return ""
    axis = int(np.argmin(shape))
    n = shape[axis]
    others = [s for i, s in enumerate(shape) if i != axis]
    if n > 8 or n * 4 > min(others):
        return ""
    return (
        f" (if axis {axis} holds {n} channels, open the image with channel_axis={axis} to get one "
        "layer per channel, and pick one of them)"
    )


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class LayerRead:
    """What to read from a layer, decided on the GUI thread from its shape; read in the worker.

    ``source`` is the layer's array or pyramid level (possibly lazy: nothing is read until
    :meth:`read`); ``index`` picks a slice over its leading axes; ``reduce`` is the
    block-mean factor (1: a plain copy).
    """

    source: Any
    index: tuple[int, ...] = ()
    reduce: int = 1

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.source.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape :meth:`read` returns."""
        shape = tuple(int(s) for s in self.source.shape[len(self.index) :])
        if self.reduce > 1:
            k = self.reduce
            shape = (-(-shape[0] // k), -(-shape[1] // k), *shape[2:])
        return shape

    def read(self) -> np.ndarray:
        """A private copy of the pixels (never a view of the layer's data)."""
        data = self.source[self.index] if self.index else self.source
        if self.reduce > 1:
            return block_mean(data, self.reduce)
        return np.array(data, copy=True)


def plan_layer_read(
    layer: Any, long_side: int | None = None, name: str | None = None, index: tuple[int, ...] | None = None
) -> LayerRead:
    """How to read the layer's pixels at the size a run needs, without reading them.

    ``long_side`` is the long side the run works at (None: full size). A multiscale layer
    gives its smallest level that is big enough; an array at least :data:`REDUCE_AT` times
    that size per side is reduced with block means. Raises :class:`UserError` when what
    must be read would not fit in the free memory. ``index`` picks one 2D slice of an nD
    layer (its leading axes; the full-resolution data is read).
    """
    if index is not None and int(layer.ndim) > 2:
        plan = LayerRead(*slice_level_for(layer, long_side, tuple(int(i) for i in index)))
    else:
        plan = LayerRead(level_for(layer, long_side))
    shape, dtype = plan.shape, plan.dtype
    if long_side is not None and dtype.kind in "biuf" and len(shape) in (2, 3) and min(shape[:2]) > 0:
        target = fit_long_side(shape[:2], long_side)
        k = min(shape[0] // (REDUCE_AT * target[0]), shape[1] // (REDUCE_AT * target[1]))
        if k >= 2:
            return LayerRead(plan.source, plan.index, k)
    check_fits_in_memory(shape, dtype, name or getattr(layer, "name", "image"))
    return plan


def plan_stack_read(layer: Any) -> LayerRead:
    """How to read every slice of an nD layer at full size (refused if it would not fit)."""
    plan = LayerRead(full_data(layer))
    shape = plan.shape
    spatial = int(layer.ndim)
    n_slices = int(np.prod(shape[: spatial - 2]))
    check_fits_in_memory((n_slices * shape[spatial - 2], *shape[spatial - 1 :]), plan.dtype, layer.name)
    return plan


def layer_array(
    layer: Any, long_side: int | None = None, name: str | None = None, index: tuple[int, ...] | None = None
) -> np.ndarray:
    """:func:`plan_layer_read` and read it at once (a private copy, as large as needed)."""
    return plan_layer_read(layer, long_side, name, index).read()


def free_host_memory() -> int | None:
    """Bytes of RAM available now (None if unknown), as the engine's memory model sees it."""
    import torch

    return available_memory(torch.device("cpu"))


def check_fits_in_memory(shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    """Raise UserError when reading and converting an image of ``shape`` would not fit in RAM."""
    if len(shape) < 2:
        return
    pixels = shape[0] * shape[1]
    per_pixel = CONVERT_BYTES_PER_PIXEL + int(np.prod(shape[2:], dtype=np.int64)) * dtype.itemsize
    need = pixels * per_pixel
    free = free_host_memory()
    if free is None or need <= free:
        return
    fits = largest_side_for(shape[:2], free, per_pixel)  # the engine's rule for a per-pixel cost
    advice = (
        f"choose an output size of at most about {fits} px instead of the original size"
        if fits >= MIN_SIDE
        else "free some memory (close other programs or layers) and try again"
    )
    raise UserError(
        f"Layer '{name}' is {shape[1]}×{shape[0]} px; reading it at this size needs about "
        f"{format_bytes(need)} of memory but only {format_bytes(free)} are free — {advice}."
    )


def format_bytes(count: float) -> str:
    """'1.5 GiB', '320 MiB'."""
    if count >= 2**30:
        return f"{count / 2**30:.1f} GiB"
    return f"{max(count, 0) / 2**20:.0f} MiB"


def layer_contrast_limits(layer: Any, array: Any) -> tuple[float, float] | None:
    """The layer's contrast limits, except for uint8 RGB(A) (shown 0-255 anyway).

    ``array`` is what the run reads (an array or a :class:`LayerRead`: only its dtype is used).
    """
    if getattr(layer, "rgb", False) and np.dtype(array.dtype) == np.uint8:
        return None
    try:
        low, high = (float(v) for v in layer.contrast_limits)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        return None
    return low, high


# ----------------------------------------------------------------------------- placement and display


def layer_geometry(layer: Any) -> dict[str, Any]:
    """The parts of a layer's data→world transform a result should share."""
    geometry: dict[str, Any] = {
        "scale": np.asarray(layer.scale, dtype=float),
        "translate": np.asarray(layer.translate, dtype=float),
        "rotate": np.asarray(layer.rotate, dtype=float),
        "shear": np.asarray(layer.shear, dtype=float),
        "affine": np.asarray(layer.affine.affine_matrix, dtype=float),
    }
    for name in ("units", "axis_labels"):
        value = getattr(layer, name, None)
        if value is not None:
            geometry[name] = tuple(str(v) for v in value)
    return geometry


def layer_display(layer: Any, contrast_limits: tuple[float, float] | None) -> dict[str, Any]:
    """Display settings that make the result look like the content (channels, colours)."""
    display: dict[str, Any] = {"rgb": bool(layer.rgb)}
    if contrast_limits is not None:
        display["contrast_limits"] = contrast_limits
    if not layer.rgb:
        display["colormap"] = layer.colormap
        display["gamma"] = float(layer.gamma)
    return display


def result_display(display: dict[str, Any], colour_result: bool, content_dtype: Any = None) -> dict[str, Any]:
    """The result layer's display: the content's, or RGB when a grey content gives a colour result
    (``result_colour='style'``; the values keep the content's range, so its contrast limits, except
    a boolean content's: its colour result is uint8, 0–255, shown as is)."""
    if not colour_result or display.get("rgb"):
        return display
    shown: dict[str, Any] = {"rgb": True}
    from_bool = content_dtype is not None and np.dtype(content_dtype) == np.bool_
    if "contrast_limits" in display and not from_bool:
        shown["contrast_limits"] = display["contrast_limits"]
    return shown


def result_geometry(
    geometry: dict[str, Any],
    content_shape: Sequence[int],
    result_shape: Sequence[int],
    lead_offset: Sequence[int] = (),
) -> dict[str, Any]:
    """Transform kwargs that lay a result of ``result_shape`` exactly over the content.

    ``geometry`` is the content's (:func:`layer_geometry`, 2D or nD); ``content_shape`` and
    ``result_shape`` are the (H, W) of its slices (the last two axes). A result pixel ``j``
    covers content pixel coordinate ``c = f·(j + ½) − ½`` with ``f = content_shape /
    result_shape`` (pixel centres at integer coordinates, so the outer edges line up); on
    the leading axes of an nD content ``c = j + lead_offset`` (a one-slice result of slice
    ``lead_offset``; none: every slice). The content's whole data→world transform (scale,
    shear, rotation, affine) acts on ``c``; so the result gets scale ``scale·f`` and a
    translate that adds the content's linear map of the offset of ``c``.
    """
    from napari.utils.transforms import CompositeAffine

    scale = np.asarray(geometry["scale"], dtype=float)
    n = scale.size
    factor = np.ones(n)
    factor[-2:] = np.asarray(content_shape[:2], dtype=float) / np.asarray(result_shape[:2], dtype=float)
    offset = np.zeros(n)
    offset[-2:] = 0.5 * factor[-2:] - 0.5
    offset[: len(lead_offset)] = np.asarray(lead_offset, dtype=float)
    linear = CompositeAffine(
        scale=scale, translate=np.zeros(n), rotate=geometry["rotate"], shear=geometry["shear"], ndim=n
    )
    out = {
        "scale": scale * factor,
        "translate": np.asarray(geometry["translate"], dtype=float) + linear(offset),
        "rotate": geometry["rotate"],
        "shear": geometry["shear"],
        "affine": geometry["affine"],
    }
    for name in ("units", "axis_labels"):
        if name in geometry:
            out[name] = geometry[name]
    return out


def is_result_layer(layer: Any) -> bool:
    """True for a layer this plugin made (its metadata carries :data:`PLUGIN_KEY`)."""
    return PLUGIN_KEY in (getattr(layer, "metadata", None) or {})
