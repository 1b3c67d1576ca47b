"""All options of a style-transfer run, validated once, at construction."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .vgg import LAYER_INDEX

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "image")
POOLINGS = ("max", "avg")
PRESERVE_COLORS = ("none", "luminance", "histogram")
WEIGHT_CONVENTIONS = ("caffe", "torchvision")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
TILINGS = ("auto", "on", "off")
#: Coarse-to-fine starts at about this long side (pixels).
MULTISCALE_START = 256


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the field and what is allowed."""


def _fail(name: str, allowed: str, value: Any) -> None:
    raise ConfigError(f"{name}: must be {allowed}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _finite_nonneg(name: str, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        _fail(name, "a finite number >= 0", value)


def _layer_tuple(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = tuple(v for v in value.replace(",", " ").split() if v)
    try:
        layers = tuple(value)
    except TypeError:
        _fail(name, "a list of VGG-19 layer names such as 'relu4_2'", value)
    if not layers:
        _fail(name, "a non-empty list of VGG-19 layer names", value)
    for layer in layers:
        if layer not in LAYER_INDEX or layer.startswith("pool"):
            _fail(name, "VGG-19 conv/relu layer names (conv1_1 … relu5_4)", layer)
    return layers


def _weights_tuple(name: str, value: Any, count: int, count_name: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        weights = tuple(value)
    except TypeError:
        _fail(name, f"None or {count} numbers (one per {count_name})", value)
    if len(weights) != count:
        _fail(name, f"None or {count} numbers (one per {count_name})", value)
    for w in weights:
        _finite_nonneg(name, w)
    if sum(weights) <= 0:
        _fail(name, "numbers >= 0 with a positive sum", value)
    return tuple(float(w) for w in weights)


@dataclass(frozen=True)
class StyleConfig:
    """Every option of one run.

    Loss weights are relative: each loss term is a squared *relative* distance (see
    ``losses.py``), so the defaults balance content and style at any output size.
    """

    #: Optimiser steps at each scale (the final scale, and every coarser one).
    iterations: int = 300
    #: Long side of the output in pixels; None keeps the content's size.
    size: int | None = 512
    content_weight: float = 1.0
    style_weight: float = 30.0
    tv_weight: float = 0.0
    content_layers: tuple[str, ...] = DEFAULT_CONTENT_LAYERS
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    #: Per content layer; None weights them equally.
    content_layer_weights: tuple[float, ...] | None = None
    #: Per style layer; None weights them equally.
    style_layer_weights: tuple[float, ...] | None = None
    optimizer: str = "lbfgs"
    #: Adam's step size in [0, 1] pixel units (L-BFGS uses 1.0 and ignores this unless set).
    learning_rate: float | None = None
    init: str = "content"
    #: The starting image when ``init == 'image'`` (any array the content may be).
    init_image: np.ndarray | None = field(default=None, compare=False, repr=False)
    seed: int | None = 0
    #: Use deterministic algorithms (bit-identical runs on the same machine; slower on CUDA).
    deterministic: bool = False
    #: Style images are resized to style_scale × the output's long side.
    style_scale: float = 1.0
    #: One weight per style image; None blends them equally.
    style_blend_weights: tuple[float, ...] | None = None
    #: 'none', 'luminance' (transfer on luminance, keep content chroma) or 'histogram'
    #: (match the style's colours to the content's before transfer).
    preserve_colors: str = "none"
    #: Coarse-to-fine from about 256 px, each scale warm-started from the last.
    multiscale: bool = True
    pooling: str = "max"
    #: 'embedded' (offline), 'torchvision' (downloads), or a path to a state dict file.
    weights: str = "embedded"
    #: Input convention of a state-dict file: 'caffe' (BGR 0-255 minus mean) or 'torchvision'.
    weights_convention: str = "caffe"
    #: 'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.
    device: str = "auto"
    #: Emit a preview image every this many iterations (0: only the final image).
    preview_every: int = 10
    #: The network's precision: 'auto' (bf16 on CUDA GPUs and on CPUs with native bf16
    #: (AVX512-BF16/AMX), fp16 on older GPUs, fp32 elsewhere), 'fp32', 'bf16' or 'fp16'.
    #: Gram matrices and losses are fp32 in every mode; bf16 ends within 1 % of fp32's distances.
    precision: str = "auto"
    #: Run the network through ``torch.compile`` (fused kernels; pays off on CUDA for long
    #: runs: the first step of each scale compiles for a while; falls back to eager if it fails).
    compile: bool = False
    #: Contrast limits (low, high) of the content image; None: dtype range or percentiles.
    contrast_limits: tuple[float, float] | None = None
    #: Outputs too large for the device's memory: 'auto' optimises them in overlapping tiles
    #: (after an untiled pass at a size that fits), 'off' refuses them, 'on' always tiles.
    tiling: str = "auto"
    #: Long side of a tile in output pixels; None: the largest that fits (at most 1024).
    tile_size: int | None = None
    #: Overlap of neighbouring tiles in output pixels; None: a quarter of the tile size.
    tile_overlap: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.iterations) or not 1 <= self.iterations <= 100_000:
            _fail("iterations", "an integer from 1 to 100000", self.iterations)
        if self.size is not None and (not _is_int(self.size) or not 16 <= self.size <= 65_536):
            _fail("size", "None or an integer from 16 to 65536 (pixels, long side)", self.size)
        for name in ("content_weight", "style_weight", "tv_weight"):
            _finite_nonneg(name, getattr(self, name))
        if self.content_weight == 0 and self.style_weight == 0:
            _fail("style_weight", "> 0 when content_weight is 0", self.style_weight)
        set_ = object.__setattr__
        set_(self, "content_layers", _layer_tuple("content_layers", self.content_layers))
        set_(self, "style_layers", _layer_tuple("style_layers", self.style_layers))
        set_(
            self,
            "content_layer_weights",
            _weights_tuple(
                "content_layer_weights",
                self.content_layer_weights,
                len(self.content_layers),
                "content layer",
            ),
        )
        set_(
            self,
            "style_layer_weights",
            _weights_tuple(
                "style_layer_weights", self.style_layer_weights, len(self.style_layers), "style layer"
            ),
        )
        if self.optimizer not in OPTIMIZERS:
            _fail("optimizer", f"one of {', '.join(OPTIMIZERS)}", self.optimizer)
        if self.learning_rate is not None and (
            not _is_number(self.learning_rate)
            or not math.isfinite(self.learning_rate)
            or not 0 < self.learning_rate <= 10
        ):
            _fail("learning_rate", "None or a number in (0, 10]", self.learning_rate)
        if self.init not in INITS:
            _fail("init", f"one of {', '.join(INITS)}", self.init)
        if self.init == "image" and self.init_image is None:
            _fail("init_image", "an image array when init is 'image'", None)
        if self.init_image is not None and not isinstance(self.init_image, np.ndarray):
            _fail("init_image", "None or a numpy array", type(self.init_image).__name__)
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed < 2**63):
            _fail("seed", "None or an integer from 0 to 2**63-1", self.seed)
        if not isinstance(self.deterministic, bool):
            _fail("deterministic", "True or False", self.deterministic)
        if (
            not _is_number(self.style_scale)
            or not math.isfinite(self.style_scale)
            or not 0.05 <= self.style_scale <= 8
        ):
            _fail("style_scale", "a number from 0.05 to 8", self.style_scale)
        if self.style_blend_weights is not None:
            try:
                blend = tuple(self.style_blend_weights)
            except TypeError:
                _fail("style_blend_weights", "None or one number >= 0 per style image", self.style_blend_weights)
            for w in blend:
                _finite_nonneg("style_blend_weights", w)
            if not blend or sum(blend) <= 0:
                _fail("style_blend_weights", "numbers >= 0 with a positive sum", self.style_blend_weights)
            set_(self, "style_blend_weights", tuple(float(w) for w in blend))
        if self.preserve_colors not in PRESERVE_COLORS:
            _fail("preserve_colors", f"one of {', '.join(PRESERVE_COLORS)}", self.preserve_colors)
        if not isinstance(self.multiscale, bool):
            _fail("multiscale", "True or False", self.multiscale)
        if self.pooling not in POOLINGS:
            _fail("pooling", f"one of {', '.join(POOLINGS)}", self.pooling)
        if not isinstance(self.weights, (str, Path)) or not str(self.weights):
            _fail("weights", "'embedded', 'torchvision' or a path to a state dict file", self.weights)
        set_(self, "weights", str(self.weights))
        if self.weights_convention not in WEIGHT_CONVENTIONS:
            _fail("weights_convention", f"one of {', '.join(WEIGHT_CONVENTIONS)}", self.weights_convention)
        if not isinstance(self.device, str) or not _valid_device_name(self.device):
            _fail("device", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", self.device)
        if not _is_int(self.preview_every) or self.preview_every < 0:
            _fail("preview_every", "an integer >= 0 (0: final image only)", self.preview_every)
        if self.precision not in PRECISIONS:
            _fail("precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        if self.contrast_limits is not None:
            try:
                low, high = (float(v) for v in self.contrast_limits)
            except (TypeError, ValueError):
                _fail("contrast_limits", "None or two numbers (low, high)", self.contrast_limits)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                _fail("contrast_limits", "two finite numbers with low < high", self.contrast_limits)
            set_(self, "contrast_limits", (low, high))
        if self.tiling not in TILINGS:
            _fail("tiling", f"one of {', '.join(TILINGS)}", self.tiling)
        if not isinstance(self.compile, bool):
            _fail("compile", "True or False", self.compile)
        if self.tile_size is not None and (not _is_int(self.tile_size) or not 32 <= self.tile_size <= 65_536):
            _fail("tile_size", "None or an integer from 32 to 65536 (pixels)", self.tile_size)
        if self.tile_overlap is not None:
            limit = (self.tile_size or 65_536) // 2
            if not _is_int(self.tile_overlap) or not 0 <= self.tile_overlap < limit:
                _fail("tile_overlap", f"None or an integer from 0 to less than half the tile size ({limit})", self.tile_overlap)

    def replace(self, **changes: Any) -> StyleConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def all_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    @property
    def deepest_layer(self) -> str:
        return max(self.all_layers, key=LAYER_INDEX.__getitem__)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for metadata and logs (the init image is summarised by its shape)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = f"array{value.shape}"
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _valid_device_name(name: str) -> bool:
    if name in ("auto", "cpu", "cuda", "mps"):
        return True
    if name.startswith("cuda:"):
        return name[5:].isdigit()
    return False
