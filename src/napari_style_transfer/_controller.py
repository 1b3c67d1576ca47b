"""The logic behind the dock widget, without Qt: checks, run requests, geometry, status text.

The widget (``_widget.py``) only gathers values from its controls, calls into this module
and puts the answers on screen, so almost everything here is testable without a GUI.
Nothing in this module touches a layer's data in place: images are copied for the run.
"""

from __future__ import annotations

import math
import time
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
    ProgressEvent,
    StyleConfig,
    StyleTransferError,
    WeightsError,
    scale_sizes,
    select_device,
)

#: Marker in a result layer's metadata (so a result is never picked as a default input).
PLUGIN_KEY = "napari-style-transfer"
#: At most this many preview images per second reach the result layer.
MAX_PREVIEWS_PER_SECOND = 10.0


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
    """(H, W) of the layer's full-resolution data (what its transforms refer to)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return int(data.shape[0]), int(data.shape[1])


def check_2d_image(layer: Any, role: str) -> None:
    """Raise UserError unless ``layer`` is a 2D grayscale, RGB or RGBA Image layer."""
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
    if layer.ndim != 2:
        shape = tuple(_base_shape_nd(layer))
        raise UserError(
            f"Layer '{layer.name}' has {layer.ndim} dimensions {shape}; only 2D images "
            "(grayscale, RGB or RGBA) are supported so far — nD stacks will come in a later version."
        )


def _base_shape_nd(layer: Any) -> tuple[int, ...]:
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return tuple(int(s) for s in data.shape)


def layer_array(layer: Any, long_side: int | None = None) -> np.ndarray:
    """A private copy of the layer's pixels (never a view of ``layer.data``)."""
    return np.array(_level_for(layer, long_side), copy=True)


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

    @property
    def result_name(self) -> str:
        return f"{self.content_name} stylised"

    @property
    def total_steps(self) -> int:
        return len(self.sizes) * self.config.iterations


def prepare_run(
    content_layer: Any,
    styles: Sequence[tuple[Any, float]],
    params: dict[str, Any],
) -> RunRequest:
    """Check the choices and build a :class:`RunRequest`.

    ``styles`` holds (layer, blend weight) pairs. Raises :class:`UserError` for a bad layer
    choice and :class:`~napari_style_transfer.engine.ConfigError` for a bad setting.
    """
    check_2d_image(content_layer, "content")
    styles = [(layer, weight) for layer, weight in styles if layer is not None]
    if not styles:
        check_2d_image(None, "style")
    for layer, _ in styles:
        check_2d_image(layer, "style")
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
    content = layer_array(content_layer, long_side)
    content_limits = layer_contrast_limits(content_layer, content)
    params["contrast_limits"] = content_limits
    params["style_blend_weights"] = tuple(weights) if len(weights) > 1 else None
    config = StyleConfig(**params)  # ConfigError says which field is wrong
    select_device(config.device)  # an unavailable device fails here, before the thread starts

    style_arrays, style_limits = [], []
    style_long = None if long_side is None else max(1, round(long_side * config.style_scale))
    for layer, _ in styles:
        array = layer_array(layer, style_long)
        style_arrays.append(array)
        style_limits.append(layer_contrast_limits(layer, array))

    content_shape = _base_shape(content_layer)
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
        sizes=scale_sizes(content.shape[:2], config),
    )


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
    """One sentence for a notification (never a traceback)."""
    text = str(exc).strip().rstrip(".")
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
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    return False


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
