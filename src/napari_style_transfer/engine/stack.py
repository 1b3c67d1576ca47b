"""nD stacks and time-lapses: stylise every 2D slice, coherently, with one value range.

A stack is ``(..., H, W)`` or ``(..., H, W, C)`` (C = 3 or 4, ``rgb=True``); the leading
axes (time, z, ...) index the slices. With ``coherence`` each slice starts from the result
of its neighbour (the slice before it along the last leading axis, else along an earlier
one) when that one was stylised in this run, so the texture stays put from slice to slice
instead of being re-invented every time (less flicker). ``consistency_weight`` > 0 also
pulls each slice toward that neighbour's result with a loss term. The value range (contrast
limits) is computed once over the whole stack, so every slice maps values the same way.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import ConfigError, StyleConfig
from .events import ProgressEvent, StopRequest, should_stop
from .guidance import Guidance, StackOptions, take_guidance, with_overrides
from .images import ImageError, resize_plane, value_range
from .masks import plan_regions
from .memory import release_cached_memory
from .scales import scale_sizes
from .stylizer import Stylizer
from .timelapse import estimate_shift, flicker, guess_rgb, luma, shift_image, temporal_difference

#: Value-range percentiles are computed on at most about this many values (evenly spaced slices).
RANGE_SAMPLE_VALUES = 64 * 2**20


@dataclass
class StackEvent:
    """One step of one slice (or the end of the stack).

    ``index`` is the slice's index over the leading (non-spatial) axes, in their original
    order; ``number`` counts the slices of this run from 1 to ``count``. ``slice_result`` is
    set once per slice, on the event where that slice finished (content's dtype/channels, at
    the output size). The final event has ``done=True`` and ``result``, the whole stack.
    """

    index: tuple[int, ...]
    number: int
    count: int
    event: ProgressEvent
    slice_result: np.ndarray | None = None
    result: np.ndarray | None = None
    done: bool = False
    stopped: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int:
        """1-based optimiser step over the whole stack."""
        return (self.number - 1) * self.event.total_steps + self.event.step

    @property
    def total_steps(self) -> int:
        return self.count * self.event.total_steps


def stack_contrast_limits(
    stack: Any, rgb: bool, contrast_limits: tuple[float, float] | None = None
) -> tuple[float, float]:
    """One (low, high) value range for the whole stack (see ``images.value_range``)."""
    if contrast_limits is not None:
        return float(contrast_limits[0]), float(contrast_limits[1])
    dtype = np.dtype(stack.dtype)
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype == np.bool_:
        return 0.0, 1.0
    spatial = 3 if rgb else 2
    lead = tuple(stack.shape[: len(stack.shape) - spatial])
    per_slice = int(np.prod(stack.shape[len(lead) :]))
    n_slices = int(np.prod(lead)) if lead else 1
    if n_slices * per_slice <= RANGE_SAMPLE_VALUES or not lead:
        sample = np.asarray(stack)
    else:
        keep = max(1, RANGE_SAMPLE_VALUES // per_slice)
        flat = np.linspace(0, n_slices - 1, min(keep, n_slices)).round().astype(int)
        sample = np.stack([np.asarray(stack[np.unravel_index(i, lead)]) for i in flat])
    if rgb:
        sample = sample[..., :3]
    return value_range(sample)


def resize_slice(data: np.ndarray, shape: tuple[int, int], rgb: bool) -> np.ndarray:
    """A slice (H, W[, C]) resized to ``shape`` in its own dtype (for slices that are not stylised)."""
    if tuple(data.shape[:2]) == tuple(shape):
        return data.copy()
    planes = data[..., None] if not rgb else data
    out = np.stack(
        [resize_plane(planes[..., i].astype(np.float32), shape) for i in range(planes.shape[-1])], axis=-1
    )
    if data.dtype == np.bool_:
        out = out >= 0.5
    elif data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(data.dtype)
    return out if rgb else out[..., 0]


def as_colour(plane: np.ndarray) -> np.ndarray:
    """A grey (H, W) slice as the RGB result of ``result_colour='style'`` renders it (same values; bool → uint8)."""
    rgb = np.repeat(plane[..., None], 3, axis=-1)
    return rgb.astype(np.uint8) * 255 if plane.dtype == np.bool_ else rgb


def _slice_indices(slices: Sequence[Any] | None, lead: tuple[int, ...]) -> list[tuple[int, ...]]:
    if slices is None:
        return list(np.ndindex(*lead)) if lead else [()]
    n = int(np.prod(lead)) if lead else 1
    out: list[tuple[int, ...]] = []
    for s in slices:
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            if not -n <= int(s) < n:
                raise ConfigError(
                    f"slices: must be slice numbers from 0 to {n - 1} (or index tuples), got {int(s)}"
                )
            idx = tuple(int(v) for v in np.unravel_index(int(s) % n, lead)) if lead else ()
        else:
            try:
                idx = tuple(int(v) for v in s)
            except (TypeError, ValueError):
                raise ConfigError(f"slices: must be slice numbers or index tuples, got {s!r}") from None
            if len(idx) != len(lead) or not all(-d <= v < d for v, d in zip(idx, lead)):
                raise ConfigError(f"slices: index {s!r} does not fit the leading axes {lead}")
            idx = tuple(v % d for v, d in zip(idx, lead))
        if idx not in out:
            out.append(idx)
    if not out:
        raise ConfigError("slices: must name at least one slice, got none")
    return out


def _neighbour(
    idx: tuple[int, ...], finished: Mapping[tuple[int, ...], np.ndarray]
) -> tuple[int, ...] | None:
    """The finished slice just before ``idx`` along the last leading axis, else an earlier axis."""
    for axis in range(len(idx) - 1, -1, -1):
        if idx[axis] == 0:
            continue
        prev = idx[:axis] + (idx[axis] - 1,) + idx[axis + 1 :]
        if prev in finished:
            return prev
    return None


_STACK_FIELDS = ("rgb", "spatial_axes", "slices", "coherence", "consistency_weight", "motion")


@dataclass
class _Layout:
    """Where the slices of an nD content are: its (H, W) axes moved last, the leading axes, the masks."""

    data: Any  # the content with its spatial axes last (a view)
    rgb: bool
    axes: tuple[int, int]  # the spatial axes among the non-colour axes, as given
    moved: bool  # the spatial axes were not the last two
    lead: tuple[int, ...]
    hw: tuple[int, int]
    masks: np.ndarray | None  # (H, W) for every slice, or lead + (H, W)


def _layout(content: Any, stack: StackOptions, content_mask: Any) -> _Layout:
    shape = tuple(int(v) for v in content.shape)
    rgb = guess_rgb(shape) if stack.rgb is None else stack.rgb
    if rgb and (len(shape) < 3 or shape[-1] not in (3, 4)):
        raise ImageError(f"content: shape {shape} has no colour axis of 3 or 4 at the end, but rgb=True")
    n_plain = len(shape) - (1 if rgb else 0)
    if n_plain < 2:
        raise ImageError(f"content: shape {shape} has fewer than two spatial axes")
    spatial_axes = stack.spatial_axes
    try:
        axes = tuple(int(a) % n_plain for a in spatial_axes)
    except (TypeError, ValueError):
        raise ConfigError(f"spatial_axes: must be two axis numbers, got {spatial_axes!r}") from None
    if len(axes) != 2 or axes[0] == axes[1] or not all(-n_plain <= int(a) < n_plain for a in spatial_axes):
        raise ConfigError(
            f"spatial_axes: must be two different axes of the {n_plain} non-colour axes, got {spatial_axes!r}"
        )
    last_two = (n_plain - 2, n_plain - 1)
    moved = axes != last_two
    data = np.moveaxis(content, axes, last_two) if moved else content
    plain_shape = tuple(int(v) for v in data.shape[:n_plain])
    lead, hw = plain_shape[:-2], plain_shape[-2:]
    masks = None
    if content_mask is not None:
        masks = np.asarray(content_mask)
        if moved and masks.ndim == n_plain:
            masks = np.moveaxis(masks, axes, last_two)
        if masks.ndim != 2 and tuple(masks.shape[:-2]) != lead:
            raise ImageError(
                f"content_mask: shape {masks.shape} must be (H, W) = {hw} or one label image per slice {lead + hw}"
            )
    return _Layout(data, bool(rgb), axes, moved, lead, hw, masks)  # type: ignore[arg-type]


def _start_from(
    layout: _Layout,
    idx: tuple[int, ...],
    prev_idx: tuple[int, ...] | None,
    prev: np.ndarray | None,
    out_hw: tuple[int, int],
    motion: str,
) -> tuple[np.ndarray | None, list[float] | None]:
    """The neighbour's result moved by the drift between the two content slices ('shift'), and that drift."""
    if prev is None or prev_idx is None or motion != "shift":
        return prev, None
    slice_data = np.asarray(layout.data[idx])
    m = estimate_shift(luma(layout.data[prev_idx], layout.rgb), luma(slice_data, layout.rgb))
    m = (m[0] * out_hw[0] / layout.hw[0], m[1] * out_hw[1] / layout.hw[1])
    fill = resize_slice(slice_data, out_hw, layout.rgb)
    moved = shift_image(prev, m, as_colour(fill) if prev.ndim > fill.ndim else fill)
    return moved, [round(m[0], 2), round(m[1], 2)]


def stylize_stack_iter(
    content: Any,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    stack: StackOptions | None = None,
    guidance: Guidance | None = None,
    stop: StopRequest = None,
    **overrides: Any,
) -> Iterator[StackEvent]:
    """Stylise the 2D slices of an nD ``content``; yield a :class:`StackEvent` per optimiser step.

    ``stack`` says which slices and how they are tied together (see
    :class:`~.guidance.StackOptions`); slices not stylised hold the content (resized to the
    output size). ``guidance`` applies to every slice; its ``content_mask`` is an (H, W)
    label image for every slice or one per slice (the leading axes plus (H, W)).
    The styles, the network and the style targets are prepared once for all slices.
    A stop request ends the current slice and the stack; finished slices are kept (the
    stopped slice is not: it holds the content, its partial result is the last event's
    ``event.preview``). The final event's ``result`` has the content's dtype and, per slice,
    the output size; with ``spatial_axes`` the axes are where they were in the content.
    """
    loose_stack = {k: overrides.pop(k) for k in _STACK_FIELDS if k in overrides}
    stack = dataclasses.replace(stack or StackOptions(), **loose_stack)
    guidance = take_guidance(guidance, overrides)
    config = with_overrides(config, overrides)
    if not hasattr(content, "shape") or not hasattr(content, "dtype"):
        content = np.asarray(content)
    layout = _layout(content, stack, guidance.content_mask)
    indices = _slice_indices(stack.slices, layout.lead)
    limits = stack_contrast_limits(layout.data, layout.rgb, config.contrast_limits)
    out_hw = scale_sizes(layout.hw, config)[-1]
    colour = config.result_colour == "style" and not layout.rgb  # grey slices give RGB results
    channels = (int(content.shape[-1]),) if layout.rgb else (3,) if colour else ()
    dtype = np.dtype(np.uint8) if colour and content.dtype == np.bool_ else np.dtype(content.dtype)
    result = np.empty(layout.lead + tuple(out_hw) + channels, dtype=dtype)
    for idx in np.ndindex(*layout.lead) if layout.lead else [()]:
        kept = resize_slice(np.asarray(layout.data[idx]), out_hw, layout.rgb)
        result[idx] = as_colour(kept) if colour else kept
    stylizer = Stylizer(styles, config.replace(contrast_limits=limits), guidance)
    if (
        layout.masks is not None and layout.masks.ndim != 2
    ):  # one label image per slice: check them all at once
        plan_regions(layout.masks, guidance.label_styles, len(stylizer.styles.rgbs))
    run = _StackRun(layout, stack, stylizer, guidance, limits, out_hw)
    yield from run.slices(indices, result, stop)
    info = run.info(len(indices))
    if layout.moved:
        lead_axes = len(layout.lead)
        result = np.moveaxis(result, (lead_axes, lead_axes + 1), layout.axes)
    assert run.last is not None
    yield StackEvent(
        *run.last_at, len(indices), run.last, result=result, done=True, stopped=run.stopped, info=info
    )


class _StackRun:
    """The slice loop of one stack run, and what it records."""

    def __init__(
        self,
        layout: _Layout,
        stack: StackOptions,
        stylizer: Stylizer,
        guidance: Guidance,
        limits: tuple[float, float],
        out_hw: tuple[int, int],
    ):
        self.layout, self.stack, self.stylizer, self.guidance = layout, stack, stylizer, guidance
        self.limits, self.out_hw = limits, out_hw
        self.finished: dict[tuple[int, ...], np.ndarray] = {}
        self.motions: dict[tuple[int, ...], list[float]] = {}
        self.slice_times: list[float] = []
        self.start = time.perf_counter()
        self.last: ProgressEvent | None = None
        self.last_at: tuple[tuple[int, ...], int] = ((), 1)
        self.stopped = False

    def slice_guidance(self, idx: tuple[int, ...], prev: np.ndarray | None) -> Guidance:
        masks, weight = self.layout.masks, self.stack.consistency_weight
        per_slice = masks is not None and masks.ndim != 2
        return dataclasses.replace(
            self.guidance,
            content_mask=None if masks is None else (masks[idx] if per_slice else masks),
            partial_mask=per_slice,  # the whole stack's mask was checked once
            init_contrast_limits=self.limits,
            consistency_image=prev if weight > 0 else None,
            consistency_weight=weight if prev is not None else 0.0,
        )

    def slices(
        self, indices: list[tuple[int, ...]], result: np.ndarray, stop: StopRequest
    ) -> Iterator[StackEvent]:
        count = len(indices)
        self.last_at = (indices[0], 1)
        for number, idx in enumerate(indices, start=1):
            if should_stop(stop) and self.last is not None:
                self.stopped = True
                return
            self.last_at = (idx, number)
            slice_start = time.perf_counter()
            prev_idx = _neighbour(idx, self.finished) if self.stack.coherence else None
            prev = self.finished[prev_idx] if prev_idx is not None else None
            prev, moved_by = _start_from(self.layout, idx, prev_idx, prev, self.out_hw, self.stack.motion)
            if moved_by is not None:
                self.motions[idx] = moved_by
            if number > 1:  # the last slice's tensors are gone: give the allocator's cache back
                release_cached_memory(self.stylizer.device, collect=False)
            events = self.stylizer.run_iter(
                np.asarray(self.layout.data[idx]),
                guidance=self.slice_guidance(idx, prev),
                stop=stop,
                init_image=prev,
            )
            for event in events:
                self.last = event
                if event.done and event.stopped:
                    self.stopped = True
                    yield StackEvent(idx, number, count, event, stopped=True)
                    return
                if event.done:
                    result[idx] = self.finished[idx] = event.preview
                    self.slice_times.append(time.perf_counter() - slice_start)
                    yield StackEvent(idx, number, count, event, slice_result=event.preview)
                else:
                    yield StackEvent(idx, number, count, event)

    def info(self, count: int) -> dict[str, Any]:
        return {
            "slices": [list(i) for i in self.finished],
            "slice_count": count,
            "contrast_limits": list(self.limits),
            "coherence": bool(self.stack.coherence),
            "consistency_weight": float(self.stack.consistency_weight),
            "motion": self.stack.motion,
            "motions": {",".join(map(str, k)): v for k, v in self.motions.items()},
            "slice_times_s": [round(t, 3) for t in self.slice_times],
            "elapsed_s": round(time.perf_counter() - self.start, 3),
            "output_slice_shape": list(self.out_hw),
            "rgb": bool(self.layout.rgb),
        }


def stylize_stack(
    content: Any, styles: np.ndarray | Sequence[np.ndarray], config: StyleConfig | None = None, **kwargs: Any
) -> np.ndarray:
    """Run :func:`stylize_stack_iter` to the end and return the stylised stack."""
    result = None
    for event in stylize_stack_iter(content, styles, config, **kwargs):
        if event.done:
            result = event.result
    assert result is not None
    return result


__all__ = [
    "StackEvent",
    "estimate_shift",
    "flicker",
    "guess_rgb",
    "resize_slice",
    "shift_image",
    "stack_contrast_limits",
    "stylize_stack",
    "stylize_stack_iter",
    "temporal_difference",
]
