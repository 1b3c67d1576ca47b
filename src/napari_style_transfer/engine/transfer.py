"""The optimisation loop: a generator of progress events, and a plain function on top of it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import color
from .config import ConfigError, StyleConfig
from .images import ImageInfo, fit_long_side, from_rgb01, resize, to_numpy, to_rgb01, to_tensor
from .losses import content_loss, gram, style_loss, tv_loss
from .memory import available_memory, estimate_peak_memory, largest_fitting_size
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


def select_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA, then Apple MPS, then CPU; a named device must be available."""
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} is not available on this machine (no CUDA GPU); use 'auto' or 'cpu'")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device: {name!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if name == "mps" and not mps_ok:
        raise ConfigError("device: 'mps' is not available on this machine; use 'auto' or 'cpu'")
    return torch.device(name)


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


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_cudnn = torch.backends.cudnn.deterministic
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.deterministic = previous_cudnn


@dataclass(frozen=True)
class Runtime:
    """How the network runs on a device: autocast dtype, memory format, fp16 loss scale."""

    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain fp32
    channels_last: bool
    loss_scale: float = 1.0  # fp16 gradients of O(1) relative losses underflow without it

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX) for oneDNN."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - very old or unusual builds
        return False


def select_runtime(precision: str, device: torch.device) -> Runtime:
    """Resolve 'auto' and check that the precision is usable on ``device``.

    'auto' picks bf16 autocast where the hardware has fast bf16 (CUDA with bf16, CPUs with
    AVX512-BF16/AMX), fp16 on older CUDA GPUs, and fp32 elsewhere. Gram matrices and losses
    are always computed in fp32. channels_last is used wherever autocast is, and on CUDA.
    """
    cuda = device.type == "cuda"
    if precision == "auto":
        if cuda:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "cpu" and cpu_supports_bf16():
            precision = "bf16"
        else:
            precision = "fp32"
    if precision == "fp16" and not cuda:
        raise ConfigError(f"precision: 'fp16' needs a CUDA GPU; on {device.type} use 'bf16' or 'fp32'")
    if precision == "bf16" and device.type == "mps":
        raise ConfigError("precision: 'bf16' is not supported on 'mps'; use 'fp32'")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return Runtime(device, dtype, channels_last=cuda or dtype is not None, loss_scale=1024.0 if dtype == torch.float16 else 1.0)


class _Problem:
    """Targets and loss of one scale: content features and blended style Grams, computed once (fp32)."""

    def __init__(self, net, convention, config: StyleConfig, runtime: Runtime, content: torch.Tensor, styles: list[torch.Tensor], blend: list[float]):
        self.net, self.convention, self.config, self.runtime = net, convention, config, runtime
        self.layers = config.all_layers
        with torch.no_grad():
            feats = self.features(content, config.content_layers, autocast=False)
            self.content_targets = {k: v.detach().float().clone() for k, v in feats.items()}
            self.style_targets: dict[str, torch.Tensor] = {}
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
        x = preprocess(image, self.convention)
        if self.runtime.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = self.runtime.autocast_dtype
        with torch.autocast(self.runtime.device.type, dtype=dtype or torch.bfloat16, enabled=autocast and dtype is not None):
            return self.net(x, layers)

    def loss(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        feats = self.features(image, self.layers)
        c = sum(w * content_loss(feats[n], self.content_targets[n]) for n, w in zip(cfg.content_layers, self.content_layer_weights))
        s = sum(w * style_loss(feats[n], self.style_targets[n]) for n, w in zip(cfg.style_layers, self.style_layer_weights))
        total = cfg.content_weight * c + cfg.style_weight * s
        terms = {"content": c, "style": s}
        if cfg.tv_weight > 0:
            tv = tv_loss(image)
            total = total + cfg.tv_weight * tv
            terms["tv"] = tv
        terms["total"] = total
        return total, terms


def stylize_iter(
    content: np.ndarray,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    stop: StopRequest = None,
    style_contrast_limits: Sequence[tuple[float, float] | None] | None = None,
    **overrides: Any,
) -> Iterator[ProgressEvent]:
    """Optimise an image; yield a :class:`ProgressEvent` after every optimiser step.

    ``content`` and each style are numpy arrays (2D grayscale, RGB or RGBA, any dtype and
    range). ``stop`` is checked before every step, so a stop request ends the run within
    one iteration; closing the generator does the same. The last event has ``done=True``
    and its ``preview`` is the result, in the content's dtype, channels and range.
    """
    config = (config or StyleConfig()).replace(**overrides) if overrides else (config or StyleConfig())
    style_list = _as_style_list(styles)
    blend = list(config.style_blend_weights or [1.0] * len(style_list))
    if len(blend) != len(style_list):
        raise ConfigError(
            f"style_blend_weights: must have one weight per style image ({len(style_list)}), got {len(blend)}"
        )
    total_blend = sum(blend)
    blend = [w / total_blend for w in blend]
    start = time.perf_counter()

    content_rgb, info = to_rgb01(content, config.contrast_limits, name="content")
    style_rgbs = []
    for i, style in enumerate(style_list):
        limits = style_contrast_limits[i] if style_contrast_limits else None
        style_rgbs.append(to_rgb01(style, limits, name=f"style {i + 1}" if len(style_list) > 1 else "style")[0])
    init_rgb = to_rgb01(config.init_image, name="init_image")[0] if config.init == "image" else None

    # Colour handling happens on the [0, 1] RGB images, once, before any scale.
    if config.preserve_colors == "histogram":
        style_rgbs = [color.match_color_histogram(s, content_rgb) for s in style_rgbs]
    elif config.preserve_colors == "luminance":
        style_rgbs = [color.match_luminance(s, content_rgb) for s in style_rgbs]
        transfer_content = color.luminance_image(content_rgb)
        if init_rgb is not None:
            init_rgb = color.luminance_image(init_rgb)
    if config.preserve_colors != "luminance":
        transfer_content = content_rgb

    device = select_device(config.device)
    runtime = select_runtime(config.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
    style_pixels = max(
        (round(s.shape[0] * s.shape[1] * (config.style_scale * (config.size or max(content_rgb.shape[:2])) / max(s.shape[:2])) ** 2) for s in style_rgbs),
        default=0,
    )
    check_memory(content_rgb.shape[:2], config, runtime, style_pixels)
    source, convention = resolve_weights(config.weights, config.weights_convention)
    try:
        net = get_network(config.weights, config.pooling, device, config.deepest_layer, channels_last=runtime.channels_last)
    except Exception as exc:
        if isinstance(exc, (ConfigError, StyleTransferError)):
            raise
        from .vgg import WeightsError

        if isinstance(exc, WeightsError):
            raise
        raise StyleTransferError(f"could not load the VGG-19 network on {device}: {exc}") from exc

    sizes = scale_sizes(content_rgb.shape[:2], config)
    total_steps = len(sizes) * config.iterations
    generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
    content_full = to_tensor(transfer_content)
    styles_full = [to_tensor(s) for s in style_rgbs]
    chroma_source = to_tensor(content_rgb) if config.preserve_colors == "luminance" else None

    def render(image: torch.Tensor) -> np.ndarray:
        rgb = to_numpy(image)
        if chroma_source is not None:
            rgb = color.combine_luma_chroma(rgb, to_numpy(resize(chroma_source, rgb.shape[:2])))
        return from_rgb01(rgb, info)

    step = 0
    image: torch.Tensor | None = None
    last_losses: dict[str, float] = {}
    scale_times: list[float] = []
    with _deterministic(config.deterministic):
        for scale_index, shape in enumerate(sizes):
            scale_start = time.perf_counter()
            content_t = resize(content_full, shape).to(device)
            style_long = max(1, round(max(shape) * config.style_scale))
            style_ts = [resize(s, fit_long_side(tuple(s.shape[-2:]), style_long)).to(device) for s in styles_full]
            problem = _Problem(net, convention, config, runtime, content_t, style_ts, blend)
            del style_ts
            if image is None:
                image = _initial_image(config, content_t, init_rgb, generator, shape, device)
            else:
                image = resize(image.detach(), shape).clamp(0, 1)
            image = image.detach().contiguous().requires_grad_(True)
            optimizer = _make_optimizer(config, image)
            terms_box: dict[str, torch.Tensor] = {}
            closure = _closure(optimizer, problem, image, terms_box, runtime.loss_scale)
            for iteration in range(1, config.iterations + 1):
                if _should_stop(stop):
                    yield _final_event(scale_index, sizes, shape, iteration - 1, config, step, total_steps, last_losses, start, render(image), True, runtime, source, scale_times)
                    return
                optimizer.step(closure)
                step += 1
                last_losses = {k: float(v.detach()) for k, v in terms_box.items()}
                if not np.isfinite(last_losses.get("total", 0.0)):
                    raise StyleTransferError(
                        "the optimisation diverged (loss is not finite); lower the learning rate or use L-BFGS"
                    )
                last_of_run = scale_index == len(sizes) - 1 and iteration == config.iterations
                preview = None
                if config.preview_every and iteration % config.preview_every == 0 and not last_of_run:
                    with torch.no_grad():
                        preview = render(image)
                if not last_of_run:
                    yield ProgressEvent(scale_index, len(sizes), shape, iteration, config.iterations, step, total_steps, last_losses, time.perf_counter() - start, preview)
            scale_times.append(time.perf_counter() - scale_start)
    assert image is not None
    yield _final_event(len(sizes) - 1, sizes, sizes[-1], config.iterations, config, step, total_steps, last_losses, start, render(image), False, runtime, source, scale_times)


def _closure(optimizer, problem: _Problem, image: torch.Tensor, terms_box: dict, loss_scale: float = 1.0) -> Callable[[], torch.Tensor]:
    """The optimiser's closure: one forward and backward; keeps the loss terms for reporting."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, terms = problem.loss(image)
        if loss_scale != 1.0:
            (loss * loss_scale).backward()
            image.grad.div_(loss_scale)
        else:
            loss.backward()
        terms_box.clear()
        terms_box.update(terms)
        return loss

    return closure


def _final_event(scale, sizes, shape, iteration, config, step, total_steps, losses, start, image, stopped, runtime, source, scale_times) -> ProgressEvent:
    elapsed = time.perf_counter() - start
    info = {
        "device": str(runtime.device),
        "precision": runtime.precision,
        "weights": source,
        "scales": [list(s) for s in sizes],
        "steps": step,
        "elapsed_s": round(elapsed, 3),
        "scale_times_s": [round(t, 3) for t in scale_times],
        "torch": torch.__version__,
    }
    return ProgressEvent(scale, len(sizes), shape, iteration, config.iterations, step, total_steps, dict(losses), elapsed, image, True, stopped, info)


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
        # One function evaluation per step, so the loop can report and stop after each one.
        return torch.optim.LBFGS(
            [image], lr=config.learning_rate or 1.0, max_iter=1, history_size=LBFGS_HISTORY,
            tolerance_grad=0.0, tolerance_change=0.0,
        )  # fmt: skip
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
