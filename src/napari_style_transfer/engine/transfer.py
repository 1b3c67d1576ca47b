"""The optimisation loop: a generator of progress events, and a plain function on top of it."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import color
from .config import ConfigError, StyleConfig
from .guidance import Guidance
from .images import ImageInfo, fit_long_side, from_rgb01, resize, to_numpy, to_rgb01, to_tensor
from .lbfgs import CompactLBFGS
from .losses import content_loss, gram, relative_sq_distance, style_loss, tv_loss
from .masks import (
    MIN_REGION_FRACTION,
    Region,
    RegionPlan,
    blend_grams,
    check_labels,
    default_feather,
    feathered,
    guided_gram,
    plan_regions,
    region_plane,
    style_grams,
    to_plane_tensor,
)
from .memory import available_memory, estimate_peak_memory, largest_fitting_size
from .runtime import Runtime, deterministic_algorithms, select_device, select_runtime
from .transfer_constants import LBFGS_HISTORY
from .vgg import get_network, preprocess, resolve_weights

#: Something that says whether to stop: a threading.Event, or a callable returning bool.
StopRequest = threading.Event | Callable[[], bool] | None
#: Smallest long side of the coarsest scale in multi-scale runs.
MIN_SCALE_SIDE = 200


class StyleTransferError(RuntimeError):
    """A run could not start or continue (device, weights); the message says why."""


class MemoryLimitError(StyleTransferError):
    """The run needs more memory than the device has; the message names the largest size that fits."""

    def __init__(self, message: str, largest_size: int):
        super().__init__(message)
        self.largest_size = largest_size


def check_memory(content_shape: tuple[int, int], config: StyleConfig, runtime: Runtime, style_pixels: int = 0) -> None:
    """Refuse, before starting, a run whose estimated peak memory exceeds what the device has free."""
    budget = available_memory(runtime.device)
    if budget is None:
        return
    shape = scale_sizes(content_shape, config)[-1]
    estimate = estimate_peak_memory(shape, config.deepest_layer, runtime.precision, config.optimizer, style_pixels)
    if estimate.total_bytes <= budget:
        return
    largest = largest_fitting_size(shape, budget, config.deepest_layer, runtime.precision, config.optimizer)
    raise MemoryLimitError(
        f"size: {max(shape)} px needs about {estimate.total_gib:.1f} GiB on {runtime.device} but only "
        f"{budget / 2**30:.1f} GiB are free; the largest size that fits is about {largest} px",
        largest,
    )


@dataclass
class ProgressEvent:
    """One optimiser step (or the end of the run).

    ``preview`` is set every ``config.preview_every`` steps and on the final event; it is
    already in the content's dtype, channel count and value range (at this scale's size).
    """

    scale: int  # 0-based index of the current scale
    n_scales: int
    shape: tuple[int, int]  # (H, W) at this scale
    iteration: int  # 1-based step within this scale
    iterations: int  # steps per scale
    step: int  # 1-based step over the whole run
    total_steps: int
    losses: dict[str, float]
    elapsed: float  # seconds since the run started
    preview: np.ndarray | None = None
    done: bool = False  # the final event; preview holds the result
    stopped: bool = False  # the run ended early on a stop request
    info: dict[str, Any] = field(default_factory=dict)  # device, sizes, timings (final event)
    tile: int = 0  # tiled runs: 1-based tile being optimised (0: the untiled coarse pass)
    n_tiles: int = 0  # tiled runs: number of tiles (0: not a tiled run)
    message: str | None = None  # a one-off notice, e.g. that the run switched to tiling


def scale_sizes(content_shape: tuple[int, int], config: StyleConfig) -> list[tuple[int, int]]:
    """(H, W) of each scale, coarse to fine; the last is the output size."""
    long_side = config.size or max(content_shape)
    sides = [long_side]
    if config.multiscale:
        while sides[0] / 2 >= MIN_SCALE_SIDE:
            sides.insert(0, round(sides[0] / 2))
    return [fit_long_side(content_shape, side) for side in sides]


def _should_stop(stop: StopRequest) -> bool:
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


def _as_style_list(styles: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(styles, np.ndarray) or hasattr(styles, "__array__"):
        return [styles]  # type: ignore[list-item]
    styles = list(styles)
    if not styles:
        raise ConfigError("styles: at least one style image is required")
    return styles


def _features(net, convention, runtime: Runtime, image: torch.Tensor, layers: tuple[str, ...], autocast: bool = True) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` for an RGB [0, 1] image, in the runtime's precision and layout."""
    x = preprocess(image, convention)
    if runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = runtime.autocast_dtype
    if autocast and dtype is not None:
        # What autocast would do for this conv/ReLU/pool stack, without re-casting the weights.
        net, x = net.cast(dtype), x.to(dtype)
    if runtime.compile and autocast:  # the optimisation loop's evaluations, not the one-off targets
        return net.compiled()(x, layers)
    return net(x, layers)


class _Problem:
    """Targets and loss of one scale: content features and blended style Grams, computed once (fp32).

    Optional extras (keyword arguments; without them the loss is the plain Gatys loss):
    ``style_targets`` — precomputed blended Gram targets (``styles`` is then not used; tiles
    share the Grams of the whole style image); ``regions`` — guided Grams, one
    :class:`~.masks.Region` (mask at the image's size + Gram targets) per region, replacing
    the global style term; ``consistency`` — an RGB [0, 1] image of the same size that the
    result is pulled toward with ``consistency_weight`` (relative squared pixel distance).
    """

    def __init__(
        self, net, convention, config: StyleConfig, runtime: Runtime, content: torch.Tensor,
        styles: list[torch.Tensor], blend: list[float], *, style_targets: dict[str, torch.Tensor] | None = None,
        regions: list[Region] | None = None, consistency: torch.Tensor | None = None, consistency_weight: float = 0.0,
    ):  # fmt: skip
        self.net, self.convention, self.config, self.runtime = net, convention, config, runtime
        self.layers = config.all_layers
        self.regions = regions
        self.consistency = consistency
        self.consistency_weight = float(consistency_weight)
        with torch.no_grad():
            feats = self.features(content, config.content_layers, autocast=False)
            self.content_targets = {k: v.detach().float().clone() for k, v in feats.items()}
            self.style_targets: dict[str, torch.Tensor] = {}
            if style_targets is not None:
                self.style_targets = dict(style_targets)
            elif regions is None:
                for style, weight in zip(styles, blend):
                    feats = self.features(style, config.style_layers, autocast=False)
                    for name in config.style_layers:
                        g = gram(feats[name]) * weight
                        self.style_targets[name] = self.style_targets.get(name, 0) + g
                    del feats
        n_c, n_s = len(config.content_layers), len(config.style_layers)
        self.content_layer_weights = config.content_layer_weights or (1.0,) * n_c
        self.style_layer_weights = config.style_layer_weights or (1.0,) * n_s
        c_sum, s_sum = sum(self.content_layer_weights), sum(self.style_layer_weights)
        self.content_layer_weights = tuple(w / c_sum for w in self.content_layer_weights)
        self.style_layer_weights = tuple(w / s_sum for w in self.style_layer_weights)

    def features(self, image: torch.Tensor, layers: tuple[str, ...], autocast: bool = True) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for an RGB [0, 1] image, in the runtime's precision and layout."""
        return _features(self.net, self.convention, self.runtime, image, layers, autocast)

    def _region_style_loss(self, feats: dict[str, torch.Tensor], zero: torch.Tensor) -> torch.Tensor:
        """Σ_layers w_l Σ_regions a_r ‖G_r − T_r‖²/‖T_r‖², a_r = the region's share of the layer."""
        assert self.regions is not None
        total = zero
        for name, weight in zip(self.config.style_layers, self.style_layer_weights):
            f = feats[name]
            for region in self.regions:
                mask, share = region.at(tuple(f.shape[-2:]))
                if share < MIN_REGION_FRACTION:
                    continue
                g = guided_gram(f, mask.to(f.device))
                total = total + weight * share * relative_sq_distance(g, region.targets[name])
        return total

    def loss(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        feats = self.features(image, self.layers)
        c = sum(w * content_loss(feats[n], self.content_targets[n]) for n, w in zip(cfg.content_layers, self.content_layer_weights))
        if self.regions is None:
            s = sum(w * style_loss(feats[n], self.style_targets[n]) for n, w in zip(cfg.style_layers, self.style_layer_weights))
        else:
            s = self._region_style_loss(feats, image.new_zeros((), dtype=torch.float32))
        total = cfg.content_weight * c + cfg.style_weight * s
        terms = {"content": c, "style": s}
        if cfg.tv_weight > 0:
            tv = tv_loss(image)
            total = total + cfg.tv_weight * tv
            terms["tv"] = tv
        if self.consistency is not None and self.consistency_weight > 0:
            k = relative_sq_distance(image, self.consistency)
            total = total + self.consistency_weight * k
            terms["consistency"] = k
        terms["total"] = total
        return total, terms


def _check_weight(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value < 0:
        raise ConfigError(f"{name}: must be a finite number >= 0, got {value!r}")
    return float(value)


class _Prepared:
    """A run's inputs converted once: RGB [0, 1] arrays, device, runtime, masks, network.

    Shared by the untiled loop (:func:`stylize_iter`) and the tiled one (``tiling.py``).
    """

    def __init__(
        self, content, styles, config: StyleConfig, *, style_contrast_limits=None, init_contrast_limits=None,
        content_mask=None, label_styles=None, style_masks=None, mask_feather=None, consistency_image=None,
        consistency_weight: float = 0.0,
    ):  # fmt: skip
        self.config = config
        self.start = time.perf_counter()
        style_list = _as_style_list(styles)
        blend = list(config.style_blend_weights or [1.0] * len(style_list))
        if len(blend) != len(style_list):
            raise ConfigError(
                f"style_blend_weights: must have one weight per style image ({len(style_list)}), got {len(blend)}"
            )
        total_blend = sum(blend)
        self.blend = [w / total_blend for w in blend]
        self.consistency_weight = _check_weight("consistency_weight", consistency_weight)
        if mask_feather is not None:
            mask_feather = _check_weight("mask_feather", mask_feather)
        if self.consistency_weight > 0 and consistency_image is None:
            raise ConfigError("consistency_image: must be an image array when consistency_weight > 0, got None")

        content_rgb, self.info = to_rgb01(content, config.contrast_limits, name="content")
        style_rgbs = []
        for i, style in enumerate(style_list):
            limits = style_contrast_limits[i] if style_contrast_limits else None
            style_rgbs.append(to_rgb01(style, limits, name=f"style {i + 1}" if len(style_list) > 1 else "style")[0])
        init_rgb = (
            to_rgb01(config.init_image, init_contrast_limits, name="init_image")[0] if config.init == "image" else None
        )
        consistency_rgb = (
            to_rgb01(consistency_image, config.contrast_limits, name="consistency_image")[0]
            if consistency_image is not None and self.consistency_weight > 0
            else None
        )

        # Colour handling happens on the [0, 1] RGB images, once, before any scale.
        if config.preserve_colors == "histogram":
            style_rgbs = [color.match_color_histogram(s, content_rgb) for s in style_rgbs]
        elif config.preserve_colors == "luminance":
            style_rgbs = [color.match_luminance(s, content_rgb) for s in style_rgbs]
            transfer_content = color.luminance_image(content_rgb)
            if init_rgb is not None:
                init_rgb = color.luminance_image(init_rgb)
            if consistency_rgb is not None:
                consistency_rgb = color.luminance_image(consistency_rgb)
        if config.preserve_colors != "luminance":
            transfer_content = content_rgb
        self.content_rgb, self.init_rgb = content_rgb, init_rgb
        self.content_shape: tuple[int, int] = tuple(content_rgb.shape[:2])  # type: ignore[assignment]

        # Masks: checked before anything heavy starts.
        n_styles = len(style_list)
        self.plan: list[RegionPlan] | None = None
        self.region_planes: list[torch.Tensor] = []
        self.keep_plane: torch.Tensor | None = None  # 1 where stylised, 0 where the content is kept
        self.style_mask_planes: list[torch.Tensor | None] = [None] * n_styles
        if style_masks is not None:
            style_masks = list(style_masks)
            if len(style_masks) != n_styles:
                raise ConfigError(f"style_masks: must have one entry (mask or None) per style image ({n_styles}), got {len(style_masks)}")
            for i, (mask, rgb) in enumerate(zip(style_masks, style_rgbs)):
                if mask is None:
                    continue
                labels = check_labels(mask, rgb.shape[:2], name=f"style_masks[{i}]")
                if not np.any(labels != 0):
                    raise ConfigError(f"style_masks[{i}]: must mark part of the style image (non-zero), got an empty mask")
                self.style_mask_planes[i] = to_plane_tensor((labels != 0).astype(np.float32))
        if content_mask is not None:
            labels = check_labels(content_mask, self.content_shape, name="content_mask")
            self.plan = plan_regions(labels, label_styles, n_styles)
            self.region_planes = [to_plane_tensor(region_plane(labels, r.labels)) for r in self.plan]
            union = region_plane(labels, [v for r in self.plan for v in r.labels])
            if not union.all():
                self.keep_plane = to_plane_tensor(union)
        elif label_styles is not None:
            raise ConfigError("label_styles: needs a content_mask (label image) to map labels to styles")
        elif style_masks is not None and any(m is not None for m in self.style_mask_planes):
            self.plan = [RegionPlan((), None)]
            self.region_planes = [torch.ones((1, 1, *self.content_shape))]

        self.device = select_device(config.device)
        self.runtime = select_runtime(config.precision, self.device, config.compile)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not config.deterministic
        self.output_shape = scale_sizes(self.content_shape, config)[-1]
        out_long = config.size or max(self.content_shape)
        self.style_pixels = max(
            (round(s.shape[0] * s.shape[1] * (config.style_scale * out_long / max(s.shape[:2])) ** 2) for s in style_rgbs),
            default=0,
        )
        self.feather = default_feather(self.output_shape) if mask_feather is None else mask_feather
        self.generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
        self.content_full = to_tensor(transfer_content)
        self.styles_full = [to_tensor(s) for s in style_rgbs]
        self.chroma_source = to_tensor(content_rgb) if config.preserve_colors == "luminance" else None
        self.consistency_full = to_tensor(consistency_rgb) if consistency_rgb is not None else None
        self.net = None
        self.convention = None
        self.source = ""
        self._keep_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def load_network(self) -> None:
        config = self.config
        self.source, self.convention = resolve_weights(config.weights, config.weights_convention)
        try:
            self.net = get_network(config.weights, config.pooling, self.device, config.deepest_layer, channels_last=self.runtime.channels_last)
        except Exception as exc:
            if isinstance(exc, (ConfigError, StyleTransferError)):
                raise
            from .vgg import WeightsError

            if isinstance(exc, WeightsError):
                raise
            raise StyleTransferError(f"could not load the VGG-19 network on {self.device}: {exc}") from exc

    def features(self, image: torch.Tensor, layers: tuple[str, ...], autocast: bool = True) -> dict[str, torch.Tensor]:
        return _features(self.net, self.convention, self.runtime, image, layers, autocast)

    @property
    def guided(self) -> bool:
        return self.plan is not None

    def style_tensors(self, long_side: int) -> list[torch.Tensor]:
        """The style images resized so that their long side is ``style_scale × long_side``."""
        style_long = max(1, round(long_side * self.config.style_scale))
        return [resize(s, fit_long_side(tuple(s.shape[-2:]), style_long)).to(self.device) for s in self.styles_full]

    def region_targets(self, style_ts: list[torch.Tensor], tile: int | None = None) -> list[dict[str, torch.Tensor]]:
        """Gram targets of each planned region: its style's (masked) Grams, or the blend of all."""
        assert self.plan is not None
        layers = self.config.style_layers
        cache: dict[int, dict[str, torch.Tensor]] = {}

        def grams(i: int) -> dict[str, torch.Tensor]:
            if i not in cache:
                mask = self.style_mask_planes[i]
                cache[i] = style_grams(
                    lambda x, names: self.features(x, names, autocast=False), style_ts[i], layers,
                    mask=None if mask is None else mask.to(self.device), tile=tile,
                )  # fmt: skip
            return cache[i]

        return [
            grams(r.style) if r.style is not None else blend_grams([grams(i) for i in range(len(style_ts))], self.blend)
            for r in self.plan
        ]

    def blended_targets(self, style_ts: list[torch.Tensor], tile: int | None = None) -> dict[str, torch.Tensor]:
        """The blended Gram targets of all styles (unguided), optionally accumulated in tiles."""
        layers = self.config.style_layers
        return blend_grams(
            [style_grams(lambda x, names: self.features(x, names, autocast=False), s, layers, tile=tile) for s in style_ts],
            self.blend,
        )

    def problem(self, shape: tuple[int, int]) -> tuple[_Problem, torch.Tensor]:
        """The loss at one scale (output ``shape``) and the content at that size (on the device)."""
        config = self.config
        content_t = resize(self.content_full, shape).to(self.device)
        style_ts = self.style_tensors(max(shape))
        consistency = None
        if self.consistency_full is not None:
            consistency = resize(self.consistency_full, shape).clamp(0, 1).to(self.device)
        if not self.guided:
            problem = _Problem(self.net, self.convention, config, self.runtime, content_t, style_ts, self.blend,
                               consistency=consistency, consistency_weight=self.consistency_weight)  # fmt: skip
            return problem, content_t
        targets = self.region_targets(style_ts)
        regions = [Region(resize(p, shape).clamp(0, 1).to(self.device), t) for p, t in zip(self.region_planes, targets)]
        problem = _Problem(self.net, self.convention, config, self.runtime, content_t, [], [], regions=regions,
                           consistency=consistency, consistency_weight=self.consistency_weight)  # fmt: skip
        return problem, content_t

    def keep_mask(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        """(soft mask (h, w, 1), content RGB at ``shape``) for blending, or None when everything is stylised."""
        if self.keep_plane is None:
            return None
        if shape not in self._keep_cache:
            sigma = self.feather * max(shape) / max(self.output_shape)
            soft = feathered(self.keep_plane, shape, sigma)[0, 0].numpy()[..., None]
            content = to_numpy(resize(to_tensor(self.content_rgb), shape))
            self._keep_cache = {shape: (soft, content)}  # keep one size only
        return self._keep_cache[shape]

    def render(self, image: torch.Tensor | np.ndarray) -> np.ndarray:
        """An RGB [0, 1] image (tensor (1, 3, h, w) or numpy (h, w, 3)) in the content's format."""
        rgb = image if isinstance(image, np.ndarray) else to_numpy(image)
        rgb = np.clip(rgb, 0, 1)
        if self.chroma_source is not None:
            rgb = color.combine_luma_chroma(rgb, to_numpy(resize(self.chroma_source, rgb.shape[:2])))
        keep = self.keep_mask(tuple(rgb.shape[:2]))
        if keep is not None:
            soft, content = keep
            rgb = soft * rgb + (1 - soft) * content
        return from_rgb01(rgb, self.info)


def stylize_iter(
    content: np.ndarray,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    guidance: Guidance | None = None,
    stop: StopRequest = None,
    **overrides: Any,
) -> Iterator[ProgressEvent]:
    """Optimise an image; yield a :class:`ProgressEvent` after every optimiser step.

    ``content`` and each style are numpy arrays (2D grayscale, RGB or RGBA, any dtype and
    range). ``stop`` is checked before every step, so a stop request ends the run within
    one iteration; closing the generator does the same. The last event has ``done=True``
    and its ``preview`` is the result, in the content's dtype, channels and range.
    ``guidance`` (masks, value ranges, a consistency image) steers the run; see
    :class:`~.guidance.Guidance`. ``overrides`` change fields of ``config``.

    When the output does not fit in the device's memory, ``config.tiling == 'auto'`` (the
    default) switches to tiled optimisation (see ``tiling.py``); the first event's
    ``message`` says so and the final event's ``info['tiled']`` describes the tiles.
    """
    guidance = _take_guidance(guidance, overrides)
    g = guidance
    config = (config or StyleConfig()).replace(**overrides) if overrides else (config or StyleConfig())
    prep = _Prepared(
        content, styles, config, style_contrast_limits=g.style_contrast_limits, init_contrast_limits=g.init_contrast_limits,
        content_mask=g.content_mask, label_styles=g.label_styles, style_masks=g.style_masks, mask_feather=g.mask_feather,
        consistency_image=g.consistency_image, consistency_weight=g.consistency_weight,
    )  # fmt: skip
    reason = None
    if config.tiling == "on":
        reason = "tiling: on"
    else:
        try:
            check_memory(prep.content_shape, config, prep.runtime, prep.style_pixels)
        except MemoryLimitError as exc:
            if config.tiling == "off":
                raise
            reason = str(exc)
    if reason is not None:
        from .tiling import plan_tiled_run, tiled_iter

        plan = plan_tiled_run(prep, reason)  # refuses (MemoryLimitError) before loading anything
        prep.load_network()
        yield from tiled_iter(prep, plan, stop=stop)
        return
    prep.load_network()
    sizes = scale_sizes(prep.content_shape, config)
    total_steps = len(sizes) * config.iterations
    with deterministic_algorithms(config.deterministic):
        state = yield from _scale_loop(prep, sizes, stop, total_steps=total_steps, final=True)
    yield _final_event(prep, state, sizes, total_steps)


_GUIDANCE_FIELDS = (
    "content_mask", "label_styles", "style_masks", "mask_feather", "style_contrast_limits",
    "init_contrast_limits", "consistency_image", "consistency_weight",
)  # fmt: skip


def _take_guidance(guidance: Guidance | None, overrides: dict[str, Any]) -> Guidance:
    """Guidance given as loose keyword arguments (the old interface) moves into one object."""
    loose = {k: overrides.pop(k) for k in _GUIDANCE_FIELDS if k in overrides}
    if guidance is None:
        return Guidance(**loose)
    return dataclasses.replace(guidance, **loose) if loose else guidance


class _PreviewPipe:
    """Gets preview images off the device without making the device wait for the host.

    On CUDA a preview is copied into pinned host memory with ``non_blocking=True`` right after
    the step that made it, and rendered (numpy, colour handling, dtype) during the *next*
    step, after that step's forward and backward are queued: the copy and the rendering
    overlap GPU compute, and the preview reaches the caller one step later. On other devices
    the preview is rendered at once and comes with the step that made it.
    """

    def __init__(self, prep: _Prepared):
        self.prep = prep
        self.overlap = prep.device.type == "cuda"
        self._pending: tuple[torch.Tensor, Any] | None = None
        self._buffer: torch.Tensor | None = None  # pinned; one pipe serves one scale, so one shape
        self._ready: np.ndarray | None = None

    def submit(self, image: torch.Tensor) -> None:
        image = image.detach()
        if not self.overlap:
            self._ready = self.prep.render(image)
            return
        if self._buffer is None:
            self._buffer = torch.empty(image.shape, dtype=image.dtype, pin_memory=True)
        host = self._buffer.copy_(image, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._pending = (host, done)

    def render_pending(self) -> None:
        """Render a submitted preview (waits for its copy only, not for later GPU work)."""
        if self._pending is None:
            return
        host, done = self._pending
        self._pending = None
        done.synchronize()
        self._ready = self.prep.render(host)

    def take(self) -> np.ndarray | None:
        ready, self._ready = self._ready, None
        return ready


@dataclass
class _LoopState:
    """Where a run of scales ended: the image (RGB [0, 1] tensor) and the counters."""

    image: torch.Tensor | None = None
    step: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    scale_times: list[float] = field(default_factory=list)
    stopped: bool = False
    scale: int = 0
    shape: tuple[int, int] = (0, 0)
    iteration: int = 0


def _scale_loop(
    prep: _Prepared, sizes: list[tuple[int, int]], stop: StopRequest, *, total_steps: int, final: bool,
    n_scales: int | None = None, event_fields: dict[str, Any] | None = None, message: str | None = None,
) -> Generator[ProgressEvent, None, _LoopState]:  # fmt: skip
    """Coarse-to-fine optimisation over ``sizes``; yields step events, returns the end state.

    With ``final`` the last step of the run yields no event (the caller yields the final
    one). ``n_scales``/``event_fields``/``message`` let a larger run (tiling) number the events.
    """
    config = prep.config
    n_scales = n_scales or len(sizes)
    event_fields = event_fields or {}
    st = _LoopState()
    image: torch.Tensor | None = None
    for scale_index, shape in enumerate(sizes):
        if image is not None and _should_stop(stop):
            # Stop before the next scale's set-up (its targets take a while at large sizes).
            st.image, st.stopped, st.scale = image, True, scale_index - 1
            st.shape, st.iteration = tuple(image.shape[-2:]), config.iterations
            return st
        scale_start = time.perf_counter()
        problem, content_t = prep.problem(shape)
        if image is None:
            image = _initial_image(config, content_t, prep.init_rgb, prep.generator, shape, prep.device)
        else:
            image = resize(image.detach(), shape).clamp(0, 1)
        image = image.detach().contiguous().requires_grad_(True)
        optimizer = _make_optimizer(config, image)
        terms_box: dict[str, torch.Tensor] = {}
        previews = _PreviewPipe(prep)
        closure = _closure(optimizer, problem, image, terms_box, prep.runtime.loss_scale, previews.render_pending)
        for iteration in range(1, config.iterations + 1):
            if _should_stop(stop):
                st.image, st.stopped, st.scale, st.shape, st.iteration = image, True, scale_index, shape, iteration - 1
                return st
            optimizer.step(closure)
            st.step += 1
            st.losses = {k: float(v.detach()) for k, v in terms_box.items()}
            if not np.isfinite(st.losses.get("total", 0.0)):
                raise StyleTransferError(
                    "the optimisation diverged (loss is not finite); lower the learning rate or use L-BFGS"
                )
            last_of_run = final and scale_index == len(sizes) - 1 and iteration == config.iterations
            if config.preview_every and iteration % config.preview_every == 0 and not last_of_run:
                with torch.no_grad():
                    previews.submit(image)
            preview = previews.take()
            if not last_of_run:
                yield ProgressEvent(scale_index, n_scales, shape, iteration, config.iterations, st.step, total_steps,
                                    st.losses, time.perf_counter() - prep.start, preview, message=message, **event_fields)  # fmt: skip
                message = None
        st.scale_times.append(time.perf_counter() - scale_start)
    st.image, st.scale, st.shape, st.iteration = image, len(sizes) - 1, sizes[-1], config.iterations
    return st


def _final_event(
    prep: _Prepared, st: _LoopState, sizes: list[tuple[int, int]], total_steps: int, *,
    image: np.ndarray | None = None, n_scales: int | None = None, extra_info: dict[str, Any] | None = None,
    event_fields: dict[str, Any] | None = None, message: str | None = None,
) -> ProgressEvent:  # fmt: skip
    elapsed = time.perf_counter() - prep.start
    info = {
        "device": str(prep.runtime.device),
        "precision": prep.runtime.precision,
        "weights": prep.source,
        "scales": [list(s) for s in sizes],
        "steps": st.step,
        "elapsed_s": round(elapsed, 3),
        "scale_times_s": [round(t, 3) for t in st.scale_times],
        "torch": torch.__version__,
    }
    if prep.guided:
        assert prep.plan is not None
        info["regions"] = [{"labels": list(r.labels), "style": r.style} for r in prep.plan]
        info["mask_feather_px"] = round(prep.feather, 3) if prep.keep_plane is not None else 0.0
    info.update(extra_info or {})
    with torch.no_grad():
        result = image if image is not None else prep.render(st.image)
    return ProgressEvent(st.scale, n_scales or len(sizes), st.shape, st.iteration, prep.config.iterations, st.step,
                         total_steps, dict(st.losses), elapsed, result, True, st.stopped, info, message=message,
                         **(event_fields or {}))  # fmt: skip


def _closure(
    optimizer, problem: _Problem, image: torch.Tensor, terms_box: dict, loss_scale: float = 1.0,
    after_launch: Callable[[], None] | None = None,
) -> Callable[[], torch.Tensor]:  # fmt: skip
    """The optimiser's closure: one forward and backward; keeps the loss terms for reporting.

    ``after_launch`` runs once the backward pass is queued: on a GPU, host work done there
    (rendering the last preview) overlaps the device's compute instead of delaying it.
    """

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, terms = problem.loss(image)
        if loss_scale != 1.0:
            (loss * loss_scale).backward()
            image.grad.div_(loss_scale)
        else:
            loss.backward()
        if after_launch is not None:
            after_launch()
        terms_box.clear()
        terms_box.update(terms)
        return loss

    return closure


def _initial_image(config: StyleConfig, content: torch.Tensor, init_rgb: np.ndarray | None, generator, shape, device) -> torch.Tensor:
    if config.init == "content":
        return content.clone()
    if config.init == "noise":
        noise = torch.rand((1, 3, *shape), generator=generator)
        return noise.to(device)
    assert init_rgb is not None
    return resize(to_tensor(init_rgb), shape).to(device)


def _make_optimizer(config: StyleConfig, image: torch.Tensor) -> torch.optim.Optimizer:
    if config.optimizer == "lbfgs":
        # One function evaluation per step, so the loop can report and stop after each one;
        # the same steps as torch.optim.LBFGS(max_iter=1) from a few big products (lbfgs.py).
        return CompactLBFGS([image], lr=config.learning_rate or 1.0, history_size=LBFGS_HISTORY)
    return torch.optim.Adam([image], lr=config.learning_rate or 0.02)


def stylize(
    content: np.ndarray,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    stop: StopRequest = None,
    callback: Callable[[ProgressEvent], None] | None = None,
    **overrides: Any,
) -> np.ndarray:
    """Run the whole optimisation and return the result (content's dtype, channels, range)."""
    result = None
    for event in stylize_iter(content, styles, config, stop=stop, **overrides):
        if callback is not None:
            callback(event)
        if event.done:
            result = event.preview
    assert result is not None
    return result


__all__ = ["ImageInfo", "ProgressEvent", "StyleTransferError", "scale_sizes", "select_device", "stylize", "stylize_iter"]
