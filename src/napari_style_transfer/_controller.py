"""The logic behind the dock widget, without Qt: checks, run requests, geometry, status text.

The widget (``_widget.py``) only gathers values from its controls, calls into this module
and puts the answers on screen, so almost everything here is testable without a GUI.
Nothing in this module touches a layer's data in place: images are copied for the run.

Reading a layer (:func:`layer_array`) takes only what the run needs: the smallest pyramid
level that is big enough, and for an image at least twice the needed size per side,
block means read strip by strip (so a lazy dask or zarr array is never loaded whole).
What would not fit in memory is refused with a sentence naming a size that does.
"""

from __future__ import annotations

import gc
import math
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .engine import (
    ConfigError,
    ImageError,
    MemoryLimitError,
    ProgressEvent,
    StyleConfig,
    StyleTransferError,
    WeightsError,
    largest_fitting_size,
    scale_sizes,
    select_device,
)
from .engine.images import MIN_SIDE, cast_to_dtype, fit_long_side

#: Marker in a result layer's metadata (so a result is never picked as a default input).
PLUGIN_KEY = "napari-style-transfer"
#: At most this many preview images per second reach the result layer.
MAX_PREVIEWS_PER_SECOND = 10.0
#: A layer is reduced on reading (block means) when it is at least this many times the
#: size the run needs, per side; the engine then does the final, antialiased resize.
REDUCE_AT = 2
#: Strips read at a time when reducing hold about this many bytes (as float64).
STRIP_BYTES = 32 * 2**20
#: Host memory per pixel to turn an image into the engine's RGB float input (float64
#: temporaries, the float32 RGB copy and its tensor), on top of the copy of the data.
CONVERT_BYTES_PER_PIXEL = 128


class UserError(ValueError):
    """A problem with the user's choices; ``str(exc)`` is one sentence to show as a notification."""

    def __init__(self, message: str, severity: str = "warning"):
        super().__init__(message)
        self.severity = severity


# ----------------------------------------------------------------------------- layers → arrays


def _is_image_layer(layer: Any) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image)


def _kind(layer: Any) -> str:
    return type(layer).__name__


def _level_for(layer: Any, long_side: int | None) -> np.ndarray:
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


def _base_shape(layer: Any) -> tuple[int, int]:
    """(H, W) of the layer's full-resolution data (what its transforms refer to; the last two
    spatial axes of an nD layer)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    spatial = int(layer.ndim)
    return int(data.shape[spatial - 2]), int(data.shape[spatial - 1])


def is_nd(layer: Any) -> bool:
    """True for an Image layer with more than two spatial axes (a stack or time-lapse)."""
    return layer is not None and _is_image_layer(layer) and int(layer.ndim) > 2


def lead_shape(layer: Any) -> tuple[int, ...]:
    """The sizes of an nD layer's leading (slice) axes."""
    return tuple(_base_shape_nd(layer)[: int(layer.ndim) - 2])


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
    if not _is_image_layer(layer):
        raise UserError(
            f"Layer '{layer.name}' is a {_kind(layer)} layer; choose an Image layer as the {role}."
        )
    if layer.ndim != 2 and allow_nd:
        shape = tuple(_base_shape_nd(layer))
        spatial = int(layer.ndim)
        if min(shape[spatial - 2 : spatial]) < MIN_SIDE:
            raise UserError(
                f"Layer '{layer.name}' has {layer.ndim} dimensions {shape}; a stack is stylised slice by slice "
                f"over its last two axes, and {shape[spatial - 2]}×{shape[spatial - 1]} px slices are too small"
                f"{_channel_hint(shape)}."
            )
    elif layer.ndim != 2:
        shape = tuple(_base_shape_nd(layer))
        raise UserError(
            f"Layer '{layer.name}' has {layer.ndim} dimensions {shape}; only 2D images "
            "(grayscale, RGB or RGBA) are supported so far — nD stacks will come in a later version"
            f"{_channel_hint(shape)}."
        )


def _channel_hint(shape: tuple[int, ...]) -> str:
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


def _base_shape_nd(layer: Any) -> tuple[int, ...]:
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return tuple(int(s) for s in data.shape)


def _free_host_memory() -> int | None:
    """Bytes of RAM available now (None if unknown)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with napari
        return None
    return int(psutil.virtual_memory().available)


def layer_array(
    layer: Any, long_side: int | None = None, name: str | None = None, index: tuple[int, ...] | None = None
) -> np.ndarray:
    """A private copy of the layer's pixels (never a view of ``layer.data``), as large as needed.

    ``long_side`` is the long side the run works at (None: full size). A multiscale layer
    gives its smallest level that is big enough; an array at least :data:`REDUCE_AT` times
    that size per side is reduced with block means, reading a strip of rows at a time,
    so that lazy (dask, zarr) data is never loaded whole. Raises :class:`UserError` when
    what must be read would not fit in the free memory. ``index`` picks one 2D slice of an
    nD layer (its leading axes; the full-resolution data is read).
    """
    if index is not None and int(layer.ndim) > 2:
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        data = data[tuple(index)]
    else:
        data = _level_for(layer, long_side)
    shape = tuple(int(s) for s in data.shape)
    dtype = np.dtype(data.dtype)
    if long_side is not None and dtype.kind in "biuf" and len(shape) in (2, 3) and min(shape[:2]) > 0:
        target = fit_long_side(shape[:2], long_side)
        k = min(shape[0] // (REDUCE_AT * target[0]), shape[1] // (REDUCE_AT * target[1]))
        if k >= 2:
            return block_mean(data, k)
    _check_fits_in_memory(shape, dtype, name or getattr(layer, "name", "image"))
    return np.array(data, copy=True)


def _check_fits_in_memory(shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    if len(shape) < 2:
        return
    pixels = shape[0] * shape[1]
    per_pixel = CONVERT_BYTES_PER_PIXEL + int(np.prod(shape[2:], dtype=np.int64)) * dtype.itemsize
    need = pixels * per_pixel
    free = _free_host_memory()
    if free is None or need <= free:
        return
    ratio = min(shape[:2]) / max(shape[:2])
    fits = int(math.sqrt(free / per_pixel / ratio)) // 16 * 16
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


def block_mean(data: Any, k: int) -> np.ndarray:
    """Means over k×k blocks of an (H, W[, C]) array, in its dtype, reading ``STRIP_BYTES`` at a time.

    Edge blocks that are cut off average the pixels they have. ``data`` can be anything
    that slices into numpy (numpy, dask, zarr…); only one strip of rows is in memory at once.
    """
    shape = tuple(int(s) for s in data.shape)
    height, width, rest = shape[0], shape[1], shape[2:]
    row_bytes = width * int(np.prod(rest, dtype=np.int64)) * 8
    rows = max(k, STRIP_BYTES // max(row_bytes, 1) // k * k)
    col_starts = np.arange(0, width, k)
    col_counts = np.diff(np.append(col_starts, width))
    out = np.empty((-(-height // k), len(col_starts), *rest), np.float64)
    for r0 in range(0, height, rows):
        strip = np.asarray(data[r0 : r0 + rows], dtype=np.float64)
        row_starts = np.arange(0, strip.shape[0], k)
        row_counts = np.diff(np.append(row_starts, strip.shape[0]))
        sums = np.add.reduceat(np.add.reduceat(strip, row_starts, axis=0), col_starts, axis=1)
        counts = (row_counts[:, None] * col_counts[None, :]).reshape(sums.shape[:2] + (1,) * len(rest))
        out[r0 // k : r0 // k + len(row_starts)] = sums / counts
    return cast_to_dtype(out, np.dtype(data.dtype))


def layer_contrast_limits(layer: Any, array: np.ndarray) -> tuple[float, float] | None:
    """The layer's contrast limits, except for uint8 RGB(A) (shown 0-255 anyway)."""
    if getattr(layer, "rgb", False) and array.dtype == np.uint8:
        return None
    try:
        low, high = (float(v) for v in layer.contrast_limits)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        return None
    return low, high


# ----------------------------------------------------------------------------- run requests


@dataclass
class RunRequest:
    """Everything a run needs, taken from the layers at the moment Run was pressed."""

    content: np.ndarray
    styles: list[np.ndarray]
    config: StyleConfig
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
    #: Label image (H, W) of the content at the size of ``content``'s slices (None: no mask).
    content_mask: np.ndarray | None = None
    #: label value → style index (labels left out keep the content).
    label_styles: dict[int, int] | None = None
    mask_name: str | None = None

    @property
    def result_name(self) -> str:
        if self.stack == "slice":
            return f"{self.content_name} stylised (slice {', '.join(map(str, self.slice_index))})"
        return f"{self.content_name} stylised"

    @property
    def slice_count(self) -> int:
        return int(np.prod(self.lead)) if self.stack == "all" and self.lead else 1

    @property
    def total_steps(self) -> int:
        return len(self.sizes) * self.config.iterations * self.slice_count

    def engine_kwargs(self) -> dict[str, Any]:
        """The mask options for ``stylize_iter`` / ``stylize_stack_iter``."""
        if self.content_mask is None:
            return {}
        return {"content_mask": self.content_mask, "label_styles": dict(self.label_styles or {})}

    def placement(self, result_hw: Sequence[int]) -> dict[str, Any]:
        """Transform kwargs for a result with slices of ``result_hw`` (nD: all axes)."""
        if self.stack is None:
            return result_geometry(self.geometry, self.content_shape, result_hw)
        geo = self.geometry
        n = len(self.lead)
        flat = {
            "scale": geo["scale"][-2:], "translate": geo["translate"][-2:],
            "rotate": np.eye(2), "shear": np.zeros(1), "affine": np.eye(3),
        }  # fmt: skip
        inner = result_geometry(flat, self.content_shape, result_hw)
        lead_scale = np.asarray(geo["scale"][:n], dtype=float)
        lead_translate = np.asarray(geo["translate"][:n], dtype=float)
        if self.stack == "slice":
            lead_translate = lead_translate + np.asarray(self.slice_index, dtype=float) * lead_scale
        out: dict[str, Any] = {
            "scale": np.concatenate([lead_scale, inner["scale"]]),
            "translate": np.concatenate([lead_translate, inner["translate"]]),
        }
        for name in ("units", "axis_labels"):
            if name in geo:
                out[name] = geo[name]
        return out


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
    """Check the choices and build a :class:`RunRequest`.

    ``styles`` holds (layer, blend weight) pairs. Raises :class:`UserError` for a bad layer
    choice and :class:`~napari_style_transfer.engine.ConfigError` for a bad setting.
    An nD content is run slice by slice: ``stack`` "slice" (the slice shown at the viewer's
    world ``point``) or "all"; an nD style uses its slice at ``point``. ``mask_layer`` is a
    2D Labels layer of the content's (H, W); ``label_styles`` maps label → style index
    (labels left out keep the content).
    """
    check_2d_image(content_layer, "content", allow_nd=True)
    styles = [(layer, weight) for layer, weight in styles if layer is not None]
    if not styles:
        check_2d_image(None, "style")
    for layer, _ in styles:
        check_2d_image(layer, "style", allow_nd=True)
        if layer is content_layer:
            raise UserError(
                f"Layer '{layer.name}' is chosen as both the content and a style; choose a different style layer."
            )
    weights = [float(w) for _, w in styles]
    if sum(weights) <= 0:
        raise UserError("The style weights are all zero; give at least one style a weight above 0.")

    params = dict(params)
    weights_source = str(params.get("weights", "embedded"))
    if weights_source not in ("embedded", "torchvision") and not Path(weights_source).expanduser().is_file():
        raise UserError(
            f"The weight file '{weights_source}' does not exist; choose a VGG-19 state dict file."
        )
    long_side = params.get("size")
    nd = is_nd(content_layer)
    if stack not in ("slice", "all"):
        raise UserError(f"Unknown stack mode {stack!r}; choose 'current slice' or 'all slices'.")
    mode = stack if nd else None
    slice_index = current_slice_index(content_layer, point) if mode == "slice" else ()
    if mode == "all":
        data = content_layer.data[0] if getattr(content_layer, "multiscale", False) else content_layer.data
        shape = tuple(int(v) for v in data.shape)
        spatial = int(content_layer.ndim)
        n_slices = int(np.prod(shape[: spatial - 2]))
        _check_fits_in_memory((n_slices * shape[spatial - 2], *shape[spatial - 1 :]), np.dtype(data.dtype), content_layer.name)
        content = np.array(data, copy=True)
    else:
        content = layer_array(content_layer, long_side, index=slice_index if nd else None)
    content_limits = layer_contrast_limits(content_layer, content)
    params["contrast_limits"] = content_limits
    params["style_blend_weights"] = tuple(weights) if len(weights) > 1 else None
    config = StyleConfig(**params)  # ConfigError says which field is wrong
    select_device(config.device)  # an unavailable device fails here, before the thread starts

    style_arrays, style_limits = [], []
    style_long = None if long_side is None else max(1, round(long_side * config.style_scale))
    for layer, _ in styles:
        index = current_slice_index(layer, point) if is_nd(layer) else None
        array = layer_array(layer, style_long, index=index)
        style_arrays.append(array)
        style_limits.append(layer_contrast_limits(layer, array))

    content_shape = _base_shape(content_layer)
    rgb = bool(content_layer.rgb)
    slice_hw = tuple(int(v) for v in content.shape[-3:-1]) if rgb else tuple(int(v) for v in content.shape[-2:])
    mask = None
    if mask_layer is not None:
        mask = mask_array(mask_layer, content_shape, slice_hw, content_layer.name)
        if label_styles is not None:
            bad = {k: v for k, v in label_styles.items() if not 0 <= int(v) < len(style_arrays)}
            if bad:
                raise UserError(f"The mask table names a style that is not chosen ({bad}); pick one of the style rows.")
    return RunRequest(
        content=content,
        styles=style_arrays,
        config=config,
        style_contrast_limits=style_limits,
        content_name=content_layer.name,
        style_names=[layer.name for layer, _ in styles],
        content_shape=content_shape,
        geometry=layer_geometry(content_layer),
        display=layer_display(content_layer, content_limits),
        sizes=scale_sizes(slice_hw, config),
        stack=mode,
        lead=lead_shape(content_layer) if nd else (),
        slice_index=slice_index,
        coherence=bool(coherence),
        rgb=rgb,
        content_mask=mask,
        label_styles=None if mask is None else {int(k): int(v) for k, v in (label_styles or {}).items()},
        mask_name=None if mask_layer is None else mask_layer.name,
    )


def label_values(layer: Any, limit: int | None = None) -> list[int]:
    """The label values present in a Labels layer (sorted; at most ``limit``)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    values = [int(v) for v in np.unique(np.asarray(data))]
    return values if limit is None else values[:limit]


def mask_array(layer: Any, content_shape: Sequence[int], slice_hw: Sequence[int], content_name: str) -> np.ndarray:
    """A copy of a 2D Labels layer as an int64 label image of ``slice_hw`` (nearest neighbour).

    Raises :class:`UserError` unless the layer is a 2D Labels layer of the content's (H, W).
    """
    from napari.layers import Labels

    if not isinstance(layer, Labels):
        raise UserError(f"Layer '{layer.name}' is a {_kind(layer)} layer; choose a Labels layer as the mask.")
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    shape = tuple(int(v) for v in data.shape)
    if len(shape) != 2 or shape != tuple(int(v) for v in content_shape):
        h, w = content_shape
        raise UserError(
            f"The mask '{layer.name}' has shape {shape}; it must be a 2D Labels layer of the same size as "
            f"'{content_name}' ({h}×{w} px, height × width)."
        )
    labels = np.array(data, copy=True).astype(np.int64)
    if tuple(slice_hw) != shape:
        rows = np.minimum((np.arange(slice_hw[0]) + 0.5) * shape[0] / slice_hw[0], shape[0] - 1).astype(int)
        cols = np.minimum((np.arange(slice_hw[1]) + 0.5) * shape[1] / slice_hw[1], shape[1] - 1).astype(int)
        labels = labels[np.ix_(rows, cols)]
    return labels


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


def result_geometry(
    geometry: dict[str, Any], content_shape: Sequence[int], result_shape: Sequence[int]
) -> dict[str, Any]:
    """Transform kwargs that lay a result of ``result_shape`` exactly over the content.

    A result pixel ``j`` covers content pixel coordinate ``c = f·(j + ½) − ½`` with
    ``f = content_shape / result_shape`` (pixel centres at integer coordinates, so the outer
    edges line up). The content's scale, shear and rotation act on ``c``; so the result gets
    scale ``scale·f`` and a translate that adds the content's linear map of ``f/2 − ½``.
    """
    from napari.utils.transforms import CompositeAffine

    factor = np.asarray(content_shape[:2], dtype=float) / np.asarray(result_shape[:2], dtype=float)
    offset = 0.5 * factor - 0.5
    linear = CompositeAffine(
        scale=geometry["scale"],
        translate=np.zeros(2),
        rotate=geometry["rotate"],
        shear=geometry["shear"],
        ndim=2,
    )
    out = {
        "scale": geometry["scale"] * factor,
        "translate": geometry["translate"] + linear(offset),
        "rotate": geometry["rotate"],
        "shear": geometry["shear"],
        "affine": geometry["affine"],
    }
    for name in ("units", "axis_labels"):
        if name in geometry:
            out[name] = geometry[name]
    return out


def result_metadata(request: RunRequest, event: ProgressEvent | None = None) -> dict[str, Any]:
    """What a result layer records: every setting, the inputs, where and how fast it ran."""
    meta: dict[str, Any] = {
        PLUGIN_KEY: __version__,
        "content_layer": request.content_name,
        "style_layers": list(request.style_names),
        "config": request.config.as_dict(),
        "weights": request.config.weights,
        "stopped": False,
        "done": False,
    }
    if request.stack is not None:
        meta["stack"] = request.stack
        if request.stack == "slice":
            meta["slice_index"] = list(request.slice_index)
        else:
            meta["coherence"] = request.coherence
    if request.mask_name is not None:
        meta["mask_layer"] = request.mask_name
        meta["label_styles"] = {str(k): v for k, v in (request.label_styles or {}).items()}
    if event is not None:
        meta.update(
            {
                "done": bool(event.done),
                "stopped": bool(event.stopped),
                "steps": int(event.step),
                "total_steps": int(event.total_steps),
                "losses": dict(event.losses),
                "elapsed_s": round(float(event.elapsed), 3),
            }
        )
        if event.info:
            meta["info"] = dict(event.info)
            meta["device"] = event.info.get("device")
            meta["weights"] = event.info.get("weights", meta["weights"])
    return meta


def is_result_layer(layer: Any) -> bool:
    return PLUGIN_KEY in (getattr(layer, "metadata", None) or {})


# ----------------------------------------------------------------------------- previews and status


class PreviewThrottle:
    """Latest-wins rate limiter for preview images.

    ``offer`` returns the image to show now, or keeps it as *pending* when the last one was
    shown less than ``1 / max_per_second`` ago (a newer offer replaces an older pending one,
    so previews arriving faster are dropped); ``take_pending`` hands it over once the
    interval has passed. The final image bypasses this class (it is always shown).
    """

    def __init__(
        self, max_per_second: float = MAX_PREVIEWS_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ):
        self.min_interval = 1.0 / max_per_second if max_per_second > 0 else 0.0
        self._clock = clock
        self._last: float | None = None
        self.pending: Any = None
        self.dropped = 0

    def wait_time(self) -> float:
        """Seconds until the next image may be shown (0 when it may be shown now)."""
        if self._last is None:
            return 0.0
        return max(0.0, self.min_interval - (self._clock() - self._last))

    def offer(self, item: Any) -> Any:
        if self.wait_time() <= 0:
            self.pending = None
            self._last = self._clock()
            return item
        if self.pending is not None:
            self.dropped += 1
        self.pending = item
        return None

    def take_pending(self) -> Any:
        if self.pending is None or self.wait_time() > 0:
            return None
        item, self.pending = self.pending, None
        self._last = self._clock()
        return item

    def clear(self) -> None:
        if self.pending is not None:
            self.dropped += 1
        self.pending = None


class RateMeter:
    """Iterations per second over the recent steps, and the time left (bigger scales cost more)."""

    def __init__(self, sizes: Sequence[tuple[int, int]], iterations: int, window: int = 20):
        self.sizes = [tuple(s) for s in sizes]
        self.iterations = iterations
        self._samples: deque[tuple[int, float]] = deque(maxlen=window)

    def add(self, event: ProgressEvent) -> None:
        self._samples.append((event.step, event.elapsed))

    @property
    def rate(self) -> float | None:
        """Steps per second at the current scale (None until two steps were seen)."""
        samples = [s for s in self._samples]
        if len(samples) < 2:
            return None
        (s0, t0), (s1, t1) = samples[0], samples[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        return (s1 - s0) / (t1 - t0)

    def seconds_left(self, event: ProgressEvent) -> float | None:
        rate = self.rate
        if rate is None or not self.sizes:
            return None
        scale = min(event.scale, len(self.sizes) - 1)
        here = max(1, self.sizes[scale][0] * self.sizes[scale][1])
        remaining = (event.iterations - event.iteration) * 1.0
        for h, w in self.sizes[scale + 1 :]:
            remaining += self.iterations * (h * w) / here
        return remaining / rate


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def format_status(event: ProgressEvent, meter: RateMeter | None = None) -> str:
    """One line: where the run is, the loss, the speed and the time left."""
    parts = [f"Iteration {event.iteration}/{event.iterations}"]
    if event.n_scales > 1:
        h, w = event.shape
        parts[0] += f" · scale {event.scale + 1}/{event.n_scales} ({w}×{h})"
    loss = event.losses.get("total")
    if loss is not None:
        parts.append(f"loss {loss:.3g}")
    if meter is not None:
        rate = meter.rate
        if rate is not None:
            parts.append(f"{rate:.1f} it/s")
            left = meter.seconds_left(event)
            if left is not None:
                parts.append(f"{format_duration(left)} left")
    return " · ".join(parts)


def format_final(event: ProgressEvent, reason: str | None = None) -> str:
    """The status line after a run: finished or stopped, how long, where."""
    device = event.info.get("device", "?") if event.info else "?"
    rate = event.step / event.elapsed if event.elapsed > 0 else 0.0
    if event.stopped:
        why = f" ({reason})" if reason else ""
        return (
            f"Stopped{why} at step {event.step}/{event.total_steps} after "
            f"{format_duration(event.elapsed)} on {device}; the last image is kept."
        )
    return f"Done: {event.step} steps in {format_duration(event.elapsed)} on {device} ({rate:.1f} it/s)."


def error_message(exc: BaseException) -> str:
    """One sentence, on one line, for a notification (never a traceback)."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip().rstrip(".") if lines else type(exc).__name__
    if isinstance(exc, MemoryLimitError):
        if exc.largest_size < MIN_SIDE:
            text = text.split("; the largest size that fits", 1)[0]
            return f"Not enough memory — {text}; not even the smallest size fits: free some memory or use another device."
        what = "use tiles of" if "largest tile" in text else "set the output size to"
        return f"Not enough memory — {text}: {what} {exc.largest_size} px or less."
    if isinstance(exc, MemoryError) or _is_out_of_memory(exc):
        return "Out of memory: lower the output size, the style scale or the number of style images, or use another device."
    if isinstance(exc, ConfigError):
        return f"Invalid setting — {text}."
    if isinstance(exc, ImageError):
        return f"Cannot use this image — {text}."
    if isinstance(exc, WeightsError):
        return f"Could not load the VGG-19 weights — {text}."
    if isinstance(exc, StyleTransferError):
        return f"Style transfer failed — {text}."
    return f"Style transfer failed unexpectedly ({type(exc).__name__}: {text})."


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    return False


# ----------------------------------------------------------------------------- faults in a run


def run_device(request: RunRequest) -> Any:
    """The torch device a request runs on (None if it cannot be resolved)."""
    try:
        return select_device(request.config.device)
    except Exception:  # noqa: BLE001 - callers only use it for clean-up and advice
        return None


def release_memory(device: Any = None, *, collect: bool | None = None) -> None:
    """Free what a finished or failed run held: cyclic garbage, and the CUDA allocator's cache.

    ``collect`` runs the garbage collector (a third of a second with napari loaded); by
    default only for CUDA, where the cache can only give back what was collected. On the
    CPU reference counting frees a run's tensors as soon as it ends.
    """
    import torch

    cuda = torch.cuda.is_available() and (device is None or getattr(device, "type", str(device)).startswith("cuda"))
    if collect or (collect is None and cuda):
        gc.collect()
    if cuda:
        torch.cuda.empty_cache()


def _forget_frames(exc: BaseException) -> None:
    """Drop an exception's tracebacks, and the tensors their frames hold.

    Clearing the frames' locals is not enough: a frame also keeps its function alive, and
    the optimiser's closure holds the image being optimised. Log a traceback before this.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
            exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


def run_failure(exc: BaseException, request: RunRequest) -> BaseException:
    """What a run's exception becomes for the user, with the memory it held released.

    The exception loses its traceback (which holds the run's tensors); log it first.

    Running out of memory (CUDA's OutOfMemoryError, or MemoryError) becomes a
    :class:`MemoryLimitError` naming the output size and a size that should fit, estimated
    from the memory free after the failed run's tensors are gone. Other exceptions are
    returned as they are (their frames' tensors dropped).
    """
    _forget_frames(exc)
    device = run_device(request)
    release_memory(device, collect=True)
    if not _is_out_of_memory(exc):
        return exc
    h, w = request.sizes[-1] if request.sizes else (0, 0)
    where = str(device) if device is not None else "the device"
    largest = _largest_size_now(request, device)
    return MemoryLimitError(
        f"the run at {w}×{h} px ran out of memory on {where}; the largest size that fits is about {largest} px",
        largest,
    )


def _largest_size_now(request: RunRequest, device: Any) -> int:
    """A size that should fit now: the estimate for the free memory, and below the size that failed."""
    long_side = max(request.sizes[-1]) if request.sizes else 0
    below = int(long_side * 0.75) // 16 * 16  # the estimate said the failed size fits; ask for less
    if device is None:
        return below
    try:
        from .engine.memory import available_memory
        from .engine.runtime import select_runtime

        budget = available_memory(device)
        if budget is None:
            return below
        config = request.config
        precision = select_runtime(config.precision, device).precision
        fits = largest_fitting_size(request.sizes[-1], budget, config.deepest_layer, precision, config.optimizer)
    except Exception:  # noqa: BLE001 - advice only
        return below
    return max(0, min(fits, below))


@dataclass
class ActiveRun:
    """Book-keeping for the run in progress (owned by the widget)."""

    request: RunRequest
    stop: Any  # threading.Event
    finished: Any  # threading.Event, set when the worker's generator has ended
    worker: Any = None
    layer: Any = None
    throttle: PreviewThrottle = field(default_factory=PreviewThrottle)
    meter: RateMeter | None = None
    stop_reason: str | None = None
    previews_shown: int = 0
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
