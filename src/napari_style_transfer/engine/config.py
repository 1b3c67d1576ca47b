"""All options of a style-transfer run, validated once, at construction."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .stopping import AUTO
from .vgg import LAYER_INDEX

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "image")
POOLINGS = ("max", "avg")
PRESERVE_COLORS = ("none", "luminance", "histogram")
#: The colours of the result: the content's channels (grey stays grey) or the style's (RGB).
RESULT_COLOURS = ("content", "style")
WEIGHT_CONVENTIONS = ("caffe", "torchvision")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
TILINGS = ("auto", "on", "off")
#: Style statistics: Gram matrices, Gaussians (closed-form W2), whole distributions (sliced W2).
STYLE_STATISTICS = ("gram", "wasserstein", "sliced")
#: Two statistics mixed, ``style_loss_mix`` being the second's share of the style loss.
STYLE_COMBINATIONS = ("gram+sliced", "gram+wasserstein", "wasserstein+sliced")
STYLE_LOSSES = STYLE_STATISTICS + STYLE_COMBINATIONS
#: Allowed ranges (inclusive), shared by the validation below and the option specs.
ITERATIONS_RANGE = (1, 100_000)
SIZE_RANGE = (16, 65_536)
#: learning_rate: 0 < value <= LEARNING_RATE_MAX.
LEARNING_RATE_MAX = 10.0
SEED_RANGE = (0, 2**63 - 1)
STYLE_SCALE_RANGE = (0.05, 8.0)
TILE_SIZE_RANGE = (32, 65_536)
#: Named weight sources and device names (``weights`` may also be a file path, ``device`` 'cuda:N').
WEIGHT_SOURCES = ("embedded", "torchvision")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: The widget groups an option can be in (see ``options.OptionSpec.group``).
OPTION_GROUPS = ("main", "advanced", "tiling", "inputs", "cli")
#: The value kinds an option can have (see ``options.OptionSpec.kind``).
OPTION_KINDS = ("int", "float", "bool", "choice", "str", "layers", "floats", "image", "range")
#: The key of a StyleConfig field's metadata that holds its option description.
OPTION_KEY = "option"


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the field and what is allowed."""


def _fail(name: str, allowed: str, value: Any) -> None:
    raise ConfigError(f"{name}: must be {allowed}, got {value!r}")


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO


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


#: The optional parts of an option's description and their defaults (see ``options.OptionSpec``).
OPTION_DETAILS: Mapping[str, Any] = MappingProxyType(
    {
        "optional": False,
        "none_label": "",
        "auto_label": "",
        "choices": (),
        "choice_labels": (),
        "minimum": None,
        "maximum": None,
        "step": None,
        "flags": (),
        "metavar": None,
    }
)


def option(label: str, help: str, *, group: str, kind: str, **details: Any) -> dict[str, Any]:
    """Field metadata describing an option for the CLI and the widget (read by ``options.py``).

    ``details`` are the optional parts named in :data:`OPTION_DETAILS`.
    """
    unknown = sorted(set(details) - set(OPTION_DETAILS))
    if unknown:
        raise TypeError(f"option {label!r}: unknown detail(s) {', '.join(unknown)}")
    if group not in OPTION_GROUPS or kind not in OPTION_KINDS:
        raise ValueError(
            f"option {label!r}: group must be one of {OPTION_GROUPS}, kind one of {OPTION_KINDS}"
        )
    spec = {"label": label, "help": help, "group": group, "kind": kind, **OPTION_DETAILS, **details}
    for name in ("choices", "choice_labels", "flags"):
        spec[name] = tuple(spec[name])
    if spec["choice_labels"] and len(spec["choice_labels"]) != len(spec["choices"]):
        raise ValueError(f"option {label!r}: one choice label per choice")
    return {OPTION_KEY: MappingProxyType(spec)}


@dataclass(frozen=True)
class StyleConfig:
    """Every option of one run.

    Loss weights are relative: each loss term is a squared *relative* distance (see
    ``losses.py``), so the defaults balance content and style at any output size. Each field's
    metadata (:func:`option`) says how the CLI and the widget show it (``options.py`` reads it).
    """

    # One field a row: the option table reads best unwrapped.
    # fmt: off

    iterations: int | str = field(default=AUTO, metadata=option(
        "Iterations", "Optimiser steps at each scale, or auto", group="main", kind="int",
        auto_label="each scale stops when the image stops improving", minimum=ITERATIONS_RANGE[0],
        maximum=ITERATIONS_RANGE[1], step=50, flags=("-n", "--iterations"), metavar="N|auto",
    ))
    size: int | None = field(default=512, metadata=option(
        "Output size (px)", "Long side of the result in pixels (bigger is slower)", group="main", kind="int",
        optional=True, none_label="the content's size", minimum=SIZE_RANGE[0], maximum=SIZE_RANGE[1], step=64,
        flags=("-s", "--size"), metavar="PX",
    ))
    content_weight: float = field(default=1.0, metadata=option(
        "Content weight", "Weight of the content loss (how closely the content's shapes are kept)",
        group="advanced", kind="float", minimum=0.0, step=0.1, metavar="W",
    ))
    style_weight: float = field(default=30.0, metadata=option(
        "Style strength", "Style against content: low keeps the photo, high paints over it",
        group="main", kind="float", minimum=0.0, step=0.5, metavar="W",
    ))
    tv_weight: float = field(default=0.0, metadata=option(
        "Smoothness (TV)", "Total-variation weight: above 0 removes high-frequency noise",
        group="advanced", kind="float", minimum=0.0, step=0.1, metavar="W",
    ))
    content_layers: tuple[str, ...] = field(default=DEFAULT_CONTENT_LAYERS, metadata=option(
        "Content layers", "VGG-19 layers whose features must match the content (e.g. relu4_2)",
        group="advanced", kind="layers", metavar="LAYER",
    ))
    style_layers: tuple[str, ...] = field(default=DEFAULT_STYLE_LAYERS, metadata=option(
        "Style layers", "VGG-19 layers whose feature statistics define the style (e.g. relu1_1 relu2_1)",
        group="advanced", kind="layers", metavar="LAYER",
    ))
    content_layer_weights: tuple[float, ...] | None = field(default=None, metadata=option(
        "Content layer weights", "One weight per content layer", group="advanced", kind="floats",
        optional=True, none_label="equal weights", minimum=0.0, metavar="W",
    ))
    style_layer_weights: tuple[float, ...] | None = field(default=None, metadata=option(
        "Style layer weights", "One weight per style layer", group="advanced", kind="floats",
        optional=True, none_label="equal weights", minimum=0.0, metavar="W",
    ))
    style_loss: str = field(default="gram", metadata=option(
        "Style statistics", "What of the style's features to match: 'gram' (second moments, the classic), "
        "'wasserstein' (means and covariances), 'sliced' (whole distributions; slower), or two mixed "
        "('gram+sliced', ...; see style_loss_mix)", group="advanced", kind="choice", choices=STYLE_LOSSES,
        choice_labels=(
            "Gram matrices", "means + covariances (Wasserstein)", "distributions (sliced Wasserstein)",
            "Gram + distributions", "Gram + means/covariances", "means/covariances + distributions",
        ),
    ))
    style_loss_mix: float = field(default=0.5, metadata=option(
        "Style mix", "Share of the second statistic in a combined style loss such as 'gram+sliced' (above 0 "
        "and below 1 there; a single statistic ignores it)", group="advanced", kind="float", minimum=0.0,
        maximum=1.0, step=0.05, metavar="SHARE",
    ))
    optimizer: str = field(default="lbfgs", metadata=option(
        "Optimiser", "L-BFGS converges in fewer steps; Adam uses less memory", group="advanced",
        kind="choice", choices=OPTIMIZERS, choice_labels=("L-BFGS", "Adam"),
    ))
    #: Adam's step size in pixel units (L-BFGS uses 1.0 and ignores this unless set); > 0.
    learning_rate: float | None = field(default=None, metadata=option(
        "Learning rate", "Optimiser step size in pixel units (above 0)", group="advanced",
        kind="float", optional=True, none_label="Adam 0.02, L-BFGS 1", minimum=0.0, maximum=LEARNING_RATE_MAX,
        step=0.01, flags=("--lr", "--learning-rate"), metavar="LR",
    ))
    init: str = field(default="content", metadata=option(
        "Start from", "The image the optimisation starts from", group="advanced", kind="choice",
        choices=INITS, choice_labels=("the content", "noise", "an image"),
    ))
    #: The starting image when ``init == 'image'`` (any array the content may be).
    init_image: np.ndarray | None = field(default=None, compare=False, repr=False, metadata=option(
        "Start image", "The starting image when starting from an image", group="inputs", kind="image",
        optional=True, none_label="none",
    ))
    seed: int | None = field(default=0, metadata=option(
        "Seed", "Random seed (for the noise start)", group="advanced", kind="int", optional=True,
        none_label="random", minimum=SEED_RANGE[0], maximum=SEED_RANGE[1], metavar="N",
    ))
    deterministic: bool = field(default=False, metadata=option(
        "Deterministic", "Bit-identical repeat runs on the same machine (slower on CUDA)", group="advanced",
        kind="bool",
    ))
    style_scale: float = field(default=1.0, metadata=option(
        "Style scale", "Size of the style image relative to the output (bigger: larger brush strokes)",
        group="advanced", kind="float", minimum=STYLE_SCALE_RANGE[0], maximum=STYLE_SCALE_RANGE[1], step=0.1,
        metavar="X",
    ))
    style_blend_weights: tuple[float, ...] | None = field(default=None, metadata=option(
        "Style blend weights", "One weight per style image", group="inputs", kind="floats", optional=True,
        none_label="equal weights", minimum=0.0, metavar="W",
    ))
    preserve_colors: str = field(default="none", metadata=option(
        "Keep colours", "Keep the content's colours: 'luminance' restyles brightness only, 'histogram' "
        "first recolours the style like the content", group="main", kind="choice", choices=PRESERVE_COLORS,
        choice_labels=("no (use the style's)", "luminance transfer", "match histograms"),
    ))
    result_colour: str = field(default="content", metadata=option(
        "Result colours", "A single-channel content gives a grey result ('content') or an RGB one in the "
        "style's colours ('style', in the content's dtype family)", group="main", kind="choice",
        choices=RESULT_COLOURS, choice_labels=("the content's channels", "the style's colours (RGB)"),
    ))
    structure_weight: float = field(default=0.0, metadata=option(
        "Keep structure", "Matting-Laplacian weight (Luan et al. 2017): above 0 keeps the result locally an "
        "affine recolouring of the content, so edges and thin structures stay where they are",
        group="advanced", kind="float", minimum=0.0, step=10.0, metavar="W",
    ))
    multiscale: bool = field(default=True, metadata=option(
        "Multi-scale", "Coarse to fine: start at about 256 px and refine (faster, larger structures)",
        group="advanced", kind="bool",
    ))
    pooling: str = field(default="max", metadata=option(
        "Pooling", "VGG-19 pooling: 'avg' often gives smoother results", group="advanced", kind="choice",
        choices=POOLINGS,
    ))
    weights: str = field(default="embedded", metadata=option(
        "Weights", "Where the VGG-19 weights come from: 'embedded' (offline), 'torchvision' (downloads) "
        "or a state-dict file", group="advanced", kind="str", choices=WEIGHT_SOURCES,
        choice_labels=("embedded VGG-19 (offline)", "torchvision (downloads)"), metavar="SOURCE",
    ))
    weights_convention: str = field(default="caffe", metadata=option(
        "Convention", "Input convention of a weight file: 'caffe' (BGR, 0-255) or 'torchvision' "
        "(RGB, ImageNet)", group="advanced", kind="choice", choices=WEIGHT_CONVENTIONS,
    ))
    device: str = field(default="auto", metadata=option(
        "Device", "Where to run: auto (a GPU if there is one), cpu, cuda, cuda:N or mps", group="advanced",
        kind="str", choices=DEVICES,
        choice_labels=("auto (GPU if there is one)", "cpu", "cuda", "mps (Apple GPU)"), metavar="DEVICE",
    ))
    preview_every: int = field(default=10, metadata=option(
        "Preview every (it)", "Show the image every N iterations (0: only at the end)", group="advanced",
        kind="int", minimum=0, metavar="N",
    ))
    #: 'auto': bf16 on CUDA GPUs and on CPUs with native bf16 (AVX512-BF16/AMX), fp16 on older
    #: GPUs, fp32 elsewhere. bf16 ends within 1 % of fp32's distances.
    precision: str = field(default="auto", metadata=option(
        "Precision", "Network arithmetic; auto: bf16 on CPUs with native bf16 and on CUDA GPUs from 1536 px "
        "(fp32 below, faster there), else fp32 (Gram matrices and losses are fp32 in every mode)", group="advanced", kind="choice",
        choices=PRECISIONS,
    ))
    compile: bool = field(default=False, metadata=option(
        "Compile", "Run the network through torch.compile: faster long runs on a GPU (the first step of "
        "each scale waits for the compiler)", group="advanced", kind="bool",
    ))
    contrast_limits: tuple[float, float] | None = field(default=None, metadata=option(
        "Contrast limits", "Value range (low, high) of the content", group="inputs", kind="range",
        optional=True, none_label="the dtype's range or percentiles", metavar="VALUE",
    ))
    #: 'auto' tiles only after an untiled pass at a size that fits.
    tiling: str = field(default="auto", metadata=option(
        "Tiling", "auto: optimise in overlapping tiles only when the size does not fit in memory; "
        "on: always; off: never", group="tiling", kind="choice", choices=TILINGS,
    ))
    tile_size: int | None = field(default=None, metadata=option(
        "Tile size (px)", "Long side of a tile in output pixels", group="tiling", kind="int", optional=True,
        none_label="the largest that fits, at most 1024", minimum=TILE_SIZE_RANGE[0],
        maximum=TILE_SIZE_RANGE[1], step=64, metavar="PX",
    ))
    tile_overlap: int | None = field(default=None, metadata=option(
        "Tile overlap (px)", "Overlap of neighbouring tiles in output pixels (less than half a tile)",
        group="tiling", kind="int", optional=True, none_label="a quarter of the tile", minimum=0,
        maximum=TILE_SIZE_RANGE[1] // 2 - 1, step=8, metavar="PX",
    ))

    # fmt: on

    def __post_init__(self) -> None:
        self._check_sizes()
        self._check_weights()
        self._check_layers()
        for f in dataclasses.fields(self):  # the choices and the switches, as their metadata says
            spec, value = f.metadata[OPTION_KEY], getattr(self, f.name)
            if spec["kind"] == "choice" and value not in spec["choices"]:
                _fail(f.name, f"one of {', '.join(spec['choices'])}", value)
            if spec["kind"] == "bool" and not isinstance(value, bool):
                _fail(f.name, "True or False", value)
        self._check_mix()
        self._check_colours()
        self._check_start()
        self._check_runtime()
        self._check_contrast_limits()
        self._check_tiles()

    def _check_sizes(self) -> None:
        low, high = ITERATIONS_RANGE
        if not _is_auto(self.iterations) and (
            not _is_int(self.iterations) or not low <= self.iterations <= high
        ):
            _fail("iterations", f"'auto' or an integer from {low} to {high}", self.iterations)
        low, high = SIZE_RANGE
        if self.size is not None and (not _is_int(self.size) or not low <= self.size <= high):
            _fail("size", f"None or an integer from {low} to {high} (pixels, long side)", self.size)
        low, high = STYLE_SCALE_RANGE
        scale = self.style_scale
        if not _is_number(scale) or not math.isfinite(scale) or not low <= scale <= high:
            _fail("style_scale", f"a number from {low:g} to {high:g}", scale)

    def _check_weights(self) -> None:
        for name in ("content_weight", "style_weight", "tv_weight", "structure_weight"):
            _finite_nonneg(name, getattr(self, name))
        if self.content_weight == 0 and self.style_weight == 0:
            _fail("style_weight", "> 0 when content_weight is 0", self.style_weight)
        rate = self.learning_rate
        if rate is not None and (
            not _is_number(rate) or not math.isfinite(rate) or not 0 < rate <= LEARNING_RATE_MAX
        ):
            _fail("learning_rate", f"None or a number in (0, {LEARNING_RATE_MAX:g}]", rate)
        if self.style_blend_weights is not None:
            name, value = "style_blend_weights", self.style_blend_weights
            try:
                blend = tuple(value)
            except TypeError:
                _fail(name, "None or one number >= 0 per style image", value)
            for w in blend:
                _finite_nonneg(name, w)
            if not blend or sum(blend) <= 0:
                _fail(name, "numbers >= 0 with a positive sum", value)
            object.__setattr__(self, name, tuple(float(w) for w in blend))

    def _check_layers(self) -> None:
        set_ = object.__setattr__
        for kind in ("content", "style"):
            layers = _layer_tuple(f"{kind}_layers", getattr(self, f"{kind}_layers"))
            set_(self, f"{kind}_layers", layers)
            name = f"{kind}_layer_weights"
            set_(self, name, _weights_tuple(name, getattr(self, name), len(layers), f"{kind} layer"))

    def _check_mix(self) -> None:
        mix, combined = self.style_loss_mix, self.style_loss in STYLE_COMBINATIONS
        if not _is_number(mix) or not math.isfinite(mix) or not 0 <= mix <= 1 or (combined and mix in (0, 1)):
            allowed = "a number from 0 to 1, above 0 and below 1 when style_loss combines two statistics"
            _fail("style_loss_mix", f"{allowed} (style_loss is {self.style_loss!r})", mix)
        object.__setattr__(self, "style_loss_mix", float(mix))

    def _check_colours(self) -> None:
        if self.result_colour == "style" and self.preserve_colors != "none":
            raise ConfigError(
                "result_colour: 'style' needs preserve_colors 'none' (keeping the content's colours "
                f"would give a grey result again), but preserve_colors is {self.preserve_colors!r}"
            )

    def _check_start(self) -> None:
        if self.init == "image" and self.init_image is None:
            _fail("init_image", "an image array when init is 'image'", None)
        if self.init_image is not None and not isinstance(self.init_image, np.ndarray):
            _fail("init_image", "None or a numpy array", type(self.init_image).__name__)
        if self.init_image is not None and self.init != "image":
            raise ConfigError(
                f"init_image: is only used when init is 'image', but init is {self.init!r}; "
                "set init='image' to start from it, or leave init_image out"
            )
        low, high = SEED_RANGE
        if self.seed is not None and (not _is_int(self.seed) or not low <= self.seed <= high):
            _fail("seed", "None or an integer from 0 to 2**63-1", self.seed)

    def _check_runtime(self) -> None:
        if not isinstance(self.weights, (str, Path)) or not str(self.weights):
            _fail("weights", "'embedded', 'torchvision' or a path to a state dict file", self.weights)
        object.__setattr__(self, "weights", str(self.weights))
        if not isinstance(self.device, str) or not _valid_device_name(self.device):
            _fail("device", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", self.device)
        if not _is_int(self.preview_every) or self.preview_every < 0:
            _fail("preview_every", "an integer >= 0 (0: final image only)", self.preview_every)

    def _check_contrast_limits(self) -> None:
        if self.contrast_limits is None:
            return
        try:
            low, high = (float(v) for v in self.contrast_limits)
        except (TypeError, ValueError):
            _fail("contrast_limits", "None or two numbers (low, high)", self.contrast_limits)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            _fail("contrast_limits", "two finite numbers with low < high", self.contrast_limits)
        object.__setattr__(self, "contrast_limits", (low, high))

    def _check_tiles(self) -> None:
        low, high = TILE_SIZE_RANGE
        if self.tile_size is not None and (not _is_int(self.tile_size) or not low <= self.tile_size <= high):
            _fail("tile_size", f"None or an integer from {low} to {high} (pixels)", self.tile_size)
        if self.tile_overlap is not None:
            limit = (self.tile_size or high) // 2
            if not _is_int(self.tile_overlap) or not 0 <= self.tile_overlap < limit:
                _fail(
                    "tile_overlap",
                    f"None or an integer from 0 to less than half the tile size ({limit})",
                    self.tile_overlap,
                )

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
    if name in DEVICES:
        return True
    if name.startswith("cuda:"):
        return name[5:].isdigit()
    return False
