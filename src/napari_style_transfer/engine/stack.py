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
import torch
import torch.nn.functional as F

from .config import ConfigError, StyleConfig
from .guidance import Guidance, StackOptions
from .images import ImageError, resize_plane, value_range
from .transfer import ProgressEvent, StopRequest, _should_stop, _take_guidance, scale_sizes, stylize_iter

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


def guess_rgb(shape: tuple[int, ...]) -> bool:
    """napari's rule: a last axis of 3 or 4 on an array of 3+ dimensions is colour."""
    return len(shape) >= 3 and shape[-1] in (3, 4)


def stack_contrast_limits(stack: Any, rgb: bool, contrast_limits: tuple[float, float] | None = None) -> tuple[float, float]:
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


def _resize_slice(data: np.ndarray, shape: tuple[int, int], rgb: bool) -> np.ndarray:
    """A slice (H, W[, C]) resized to ``shape`` in its own dtype (for slices that are not stylised)."""
    if tuple(data.shape[:2]) == tuple(shape):
        return data.copy()
    planes = data[..., None] if not rgb else data
    out = np.stack([resize_plane(planes[..., i].astype(np.float32), shape) for i in range(planes.shape[-1])], axis=-1)
    if data.dtype == np.bool_:
        out = out >= 0.5
    elif data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(data.dtype)
    return out if rgb else out[..., 0]


def _slice_indices(slices: Sequence[Any] | None, lead: tuple[int, ...]) -> list[tuple[int, ...]]:
    if slices is None:
        return list(np.ndindex(*lead)) if lead else [()]
    n = int(np.prod(lead)) if lead else 1
    out: list[tuple[int, ...]] = []
    for s in slices:
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            if not -n <= int(s) < n:
                raise ConfigError(f"slices: must be slice numbers from 0 to {n - 1} (or index tuples), got {int(s)}")
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


def _neighbour(idx: tuple[int, ...], finished: Mapping[tuple[int, ...], np.ndarray]) -> tuple[int, ...] | None:
    """The finished slice just before ``idx`` along the last leading axis, else an earlier axis."""
    for axis in range(len(idx) - 1, -1, -1):
        if idx[axis] == 0:
            continue
        prev = idx[:axis] + (idx[axis] - 1,) + idx[axis + 1 :]
        if prev in finished:
            return prev
    return None


_STACK_FIELDS = ("rgb", "spatial_axes", "slices", "coherence", "consistency_weight", "motion")
#: Estimated shifts smaller than this (pixels, both axes) are taken as no motion.
MIN_SHIFT = 0.1


def _luma(data: np.ndarray, rgb: bool) -> np.ndarray:
    values = np.asarray(data, dtype=np.float64)
    if rgb:
        values = values[..., :3].mean(-1)
    return values


def estimate_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Global motion between two 2D images by phase correlation: ``m`` with ``b(p) ≈ a(p + m)``.

    Sub-pixel by a parabola through the correlation peak. Shifts beyond a quarter of the
    image, or a flat correlation (no structure), give (0, 0).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    h, w = a.shape
    window = np.outer(np.hanning(h), np.hanning(w)) if min(h, w) > 2 else np.ones((h, w))
    fa = np.fft.fft2((a - a.mean()) * window)
    fb = np.fft.fft2((b - b.mean()) * window)
    cross = fa * np.conj(fb)
    magnitude = np.abs(cross)
    if magnitude.max() <= 0:
        return 0.0, 0.0
    r = np.fft.ifft2(cross / np.maximum(magnitude, 1e-12 * magnitude.max())).real
    iy, ix = np.unravel_index(int(np.argmax(r)), r.shape)
    if r[iy, ix] < 5 * r.std():  # no clear peak
        return 0.0, 0.0

    def refine(m1: float, m0: float, p1: float) -> float:
        denom = m1 - 2 * m0 + p1
        return 0.0 if denom == 0 else float(np.clip(0.5 * (m1 - p1) / denom, -0.5, 0.5))

    dy = iy + refine(r[iy - 1, ix], r[iy, ix], r[(iy + 1) % h, ix])
    dx = ix + refine(r[iy, ix - 1], r[iy, ix], r[iy, (ix + 1) % w])
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    if abs(dy) > h / 4 or abs(dx) > w / 4:
        return 0.0, 0.0
    return float(dy), float(dx)


def shift_image(image: np.ndarray, motion: tuple[float, float], fill: np.ndarray) -> np.ndarray:
    """``image(p + motion)`` (bilinear), in ``image``'s dtype; pixels from outside come from ``fill``.

    Motions below ``MIN_SHIFT`` px on both axes leave the image as it is (no resampling blur).
    """
    dy, dx = motion
    if abs(dy) < MIN_SHIFT and abs(dx) < MIN_SHIFT:
        return image
    planes = np.asarray(image, dtype=np.float32)
    planes = planes[..., None] if planes.ndim == 2 else planes
    h, w = planes.shape[:2]
    t = torch.from_numpy(np.ascontiguousarray(planes)).permute(2, 0, 1)[None]
    ys = (torch.arange(h, dtype=torch.float32) + dy + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + dx + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
    moved = F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    valid = F.grid_sample(torch.ones(1, 1, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = moved[0].permute(1, 2, 0).numpy()
    v = valid[0, 0].numpy()[..., None]
    filler = np.asarray(fill, dtype=np.float32)
    filler = filler[..., None] if filler.ndim == 2 else filler
    out = np.where(v > 0.5, out / np.maximum(v, 1e-6), filler)
    out = out if np.asarray(image).ndim == 3 else out[..., 0]
    dtype = np.asarray(image).dtype
    if dtype == np.bool_:
        return out >= 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(dtype)
    return out.astype(dtype)


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
    A stop request ends the current slice and the stack; finished slices are kept (the
    stopped slice is not: it holds the content, its partial result is the last event's
    ``event.preview``). The final event's ``result`` has the content's dtype and, per slice,
    the output size; with ``spatial_axes`` the axes are where they were in the content.
    """
    loose_stack = {k: overrides.pop(k) for k in _STACK_FIELDS if k in overrides}
    stack = dataclasses.replace(stack or StackOptions(), **loose_stack)
    guidance = _take_guidance(guidance, overrides)
    config = (config or StyleConfig()).replace(**overrides) if overrides else (config or StyleConfig())
    rgb, spatial_axes, slices = stack.rgb, stack.spatial_axes, stack.slices
    coherence, consistency_weight, motion = stack.coherence, stack.consistency_weight, stack.motion
    content_mask, label_styles = guidance.content_mask, guidance.label_styles
    style_masks, mask_feather, style_contrast_limits = guidance.style_masks, guidance.mask_feather, guidance.style_contrast_limits
    if not hasattr(content, "shape") or not hasattr(content, "dtype"):
        content = np.asarray(content)
    shape = tuple(int(v) for v in content.shape)
    if rgb is None:
        rgb = guess_rgb(shape)
    if rgb and (len(shape) < 3 or shape[-1] not in (3, 4)):
        raise ImageError(f"content: shape {shape} has no colour axis of 3 or 4 at the end, but rgb=True")
    n_plain = len(shape) - (1 if rgb else 0)
    if n_plain < 2:
        raise ImageError(f"content: shape {shape} has fewer than two spatial axes")
    try:
        axes = tuple(int(a) % n_plain for a in spatial_axes)
    except (TypeError, ValueError):
        raise ConfigError(f"spatial_axes: must be two axis numbers, got {spatial_axes!r}") from None
    if len(axes) != 2 or axes[0] == axes[1] or not all(-n_plain <= int(a) < n_plain for a in spatial_axes):
        raise ConfigError(f"spatial_axes: must be two different axes of the {n_plain} non-colour axes, got {spatial_axes!r}")
    moved = axes != (n_plain - 2, n_plain - 1)
    data = np.moveaxis(content, axes, (n_plain - 2, n_plain - 1)) if moved else content
    plain_shape = tuple(int(v) for v in data.shape[:n_plain])
    lead, hw = plain_shape[:-2], plain_shape[-2:]
    indices = _slice_indices(slices, lead)
    channels = (shape[-1],) if rgb else ()

    masks = None
    if content_mask is not None:
        masks = np.asarray(content_mask)
        if moved and masks.ndim == n_plain:
            masks = np.moveaxis(masks, axes, (n_plain - 2, n_plain - 1))
        if masks.ndim != 2 and tuple(masks.shape[:-2]) != lead:
            raise ImageError(
                f"content_mask: shape {masks.shape} must be (H, W) = {hw} or one label image per slice {lead + hw}"
            )

    limits = stack_contrast_limits(data, rgb, config.contrast_limits)
    out_hw = scale_sizes(hw, config)[-1]
    result = np.empty(lead + tuple(out_hw) + channels, dtype=np.dtype(content.dtype))
    for idx in np.ndindex(*lead) if lead else [()]:
        result[idx] = _resize_slice(np.asarray(data[idx]), out_hw, rgb)
    slice_config = config.replace(contrast_limits=limits)
    finished: dict[tuple[int, ...], np.ndarray] = {}
    motions: dict[tuple[int, ...], list[float]] = {}
    start = time.perf_counter()
    slice_times: list[float] = []
    last: ProgressEvent | None = None
    stopped = False
    count = len(indices)
    last_at = (indices[0], 1)
    for number, idx in enumerate(indices, start=1):
        if _should_stop(stop) and last is not None:
            stopped = True
            break
        last_at = (idx, number)
        slice_start = time.perf_counter()
        prev_idx = _neighbour(idx, finished) if coherence else None
        prev = finished[prev_idx] if prev_idx is not None else None
        slice_data = np.asarray(data[idx])
        if prev is not None and motion == "shift":
            m = estimate_shift(_luma(data[prev_idx], rgb), _luma(slice_data, rgb))
            scale = (out_hw[0] / hw[0], out_hw[1] / hw[1])
            m = (m[0] * scale[0], m[1] * scale[1])
            motions[idx] = [round(m[0], 2), round(m[1], 2)]
            prev = shift_image(prev, m, _resize_slice(slice_data, out_hw, rgb))
        cfg = slice_config if prev is None else slice_config.replace(init="image", init_image=prev)
        mask = None if masks is None else (masks if masks.ndim == 2 else masks[idx])
        for event in stylize_iter(
            slice_data, styles, cfg, stop=stop, style_contrast_limits=style_contrast_limits,
            init_contrast_limits=limits, content_mask=mask, label_styles=label_styles, style_masks=style_masks,
            mask_feather=mask_feather, consistency_image=prev if consistency_weight > 0 else None,
            consistency_weight=consistency_weight if prev is not None else 0.0,
        ):  # fmt: skip
            last = event
            if event.done and event.stopped:
                stopped = True
                yield StackEvent(idx, number, count, event, stopped=True)
                break
            if event.done:
                result[idx] = event.preview
                finished[idx] = event.preview
                slice_times.append(time.perf_counter() - slice_start)
                yield StackEvent(idx, number, count, event, slice_result=event.preview)
            else:
                yield StackEvent(idx, number, count, event)
        if stopped:
            break
    assert last is not None
    info = {
        "slices": [list(i) for i in finished],
        "slice_count": count,
        "contrast_limits": list(limits),
        "coherence": bool(coherence),
        "consistency_weight": float(consistency_weight),
        "motion": motion,
        "motions": {",".join(map(str, k)): v for k, v in motions.items()},
        "slice_times_s": [round(t, 3) for t in slice_times],
        "elapsed_s": round(time.perf_counter() - start, 3),
        "output_slice_shape": list(out_hw),
        "rgb": bool(rgb),
    }
    if moved:
        lead_axes = len(lead)
        result = np.moveaxis(result, (lead_axes, lead_axes + 1), axes)
    yield StackEvent(*last_at, count, last, result=result, done=True, stopped=stopped, info=info)


def stylize_stack(content: Any, styles: np.ndarray | Sequence[np.ndarray], config: StyleConfig | None = None, **kwargs: Any) -> np.ndarray:
    """Run :func:`stylize_stack_iter` to the end and return the stylised stack."""
    result = None
    for event in stylize_stack_iter(content, styles, config, **kwargs):
        if event.done:
            result = event.result
    assert result is not None
    return result


def run_iter(
    content: Any,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    stack: StackOptions | None = None,
    guidance: Guidance | None = None,
    stop: StopRequest = None,
) -> Iterator[ProgressEvent] | Iterator[StackEvent]:
    """The one place that picks the engine function: a 2D run without ``stack``, else a stack run."""
    if stack is None:
        return stylize_iter(content, styles, config, guidance=guidance, stop=stop)
    return stylize_stack_iter(content, styles, config, stack=stack, guidance=guidance, stop=stop)


def temporal_difference(stack: np.ndarray, axis: int = 0, rgb: bool | None = None) -> float:
    """Mean absolute difference between consecutive slices along ``axis`` (in the array's units)."""
    stack = np.asarray(stack)
    if rgb is None:
        rgb = guess_rgb(stack.shape) and stack.ndim >= 4
    if rgb and stack.shape[-1] == 4:
        stack = stack[..., :3]
    if stack.shape[axis] < 2:
        raise ValueError(f"need at least two slices along axis {axis}, got shape {stack.shape}")
    return float(np.abs(np.diff(stack.astype(np.float64), axis=axis)).mean())


def flicker(result: np.ndarray, content: np.ndarray, axis: int = 0, rgb: bool | None = None) -> float:
    """Temporal flicker of a stylised stack: its mean absolute slice-to-slice difference
    relative to the content's (1.0: changes as much as the content does; both arrays in the
    same value units, as a result is in its content's range)."""
    moving = temporal_difference(content, axis, rgb)
    changing = temporal_difference(result, axis, rgb)
    if moving == 0:
        return 1.0 if changing == 0 else float("inf")
    return changing / moving


__all__ = [
    "StackEvent",
    "estimate_shift",
    "flicker",
    "guess_rgb",
    "run_iter",
    "shift_image",
    "stack_contrast_limits",
    "stylize_stack",
    "stylize_stack_iter",
    "temporal_difference",
]
