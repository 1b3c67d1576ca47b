"""Where and how a run computes: device choice, precision, loss scaling, host transfers, determinism.

Kept apart from the loop so that every driver (multi-scale, tiles, stacks, batches) and the
device checks resolve 'auto' the same way, and so that the few places where the host waits
for the device are in one module and can be counted (:func:`host_transfers`).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from .config import ConfigError

#: cuBLAS needs a fixed workspace for deterministic results (see the CUDA docs on reproducibility).
CUBLAS_WORKSPACE = ":4096:8"


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
            raise ConfigError(
                f"device: {name!r} is not available on this machine (no CUDA GPU); use 'auto' or 'cpu'"
            )
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device: {name!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if name == "mps" and not mps_ok:
        raise ConfigError("device: 'mps' is not available on this machine; use 'auto' or 'cpu'")
    return torch.device(name)


# ----------------------------------------------------------------------------- fp16 loss scaling

#: fp16's smallest normal number: gradients below it lose precision, below ~6e-8 they vanish.
FP16_TINY = 2.0**-14


def initial_loss_scale(pixels: int) -> float:
    """A power-of-two fp16 loss scale for an image of ``pixels`` pixels: about 256 × pixels.

    Every loss term is a *relative* distance (normalised by the target's energy, which grows
    with the image), so the gradient reaching each activation shrinks in proportion to the
    pixel count: with a fixed scale of 1024, 15–17 % of the non-zero relu4_x gradients were
    already subnormal at 256 px. Measured in fp32 on the CPU (sample pair, after 15 L-BFGS
    steps at 128, 256 and 512 px), the largest activation gradient was 2–4·10⁻⁵ × 10⁴/pixels
    and the 1st percentile of the non-zero relu4_x ones about 10⁴ times smaller. A scale of
    256 × pixels puts the largest scaled gradient near 100 (650× below fp16's maximum) and
    the 1st percentile near 10⁻², well above fp16's smallest normal number (6·10⁻⁵).
    :class:`LossScaler` corrects a guess that is off: halve and redo on overflow, grow after
    a run of good steps.
    """
    guess = 256.0 * max(1, int(pixels))
    return float(2.0 ** min(32, max(10, round(math.log2(guess)))))


def checked_initial_scale(initial: float, growth_interval: int, min_scale: float, max_scale: float) -> float:
    """A loss scaler's settings checked (one message per bad value); the initial scale within bounds."""
    if not initial > 0 or not min_scale > 0 or max_scale < min_scale:
        raise ValueError(f"loss scale: need 0 < min_scale <= max_scale and initial > 0, got {initial!r}")
    if int(growth_interval) < 1:
        raise ValueError(f"growth_interval: must be >= 1, got {growth_interval!r}")
    return float(min(max(initial, min_scale), max_scale))


class LossScaler:
    """Dynamic fp16 loss scaling: halve and redo a step on overflow, grow after good steps.

    The loss is multiplied by :attr:`value` before the backward pass, so that small
    gradients stay representable in fp16, and the gradient is divided by it afterwards (a
    power of two: exact). An overflow (inf or NaN in the gradient) is an evaluation to
    redo with half the scale, not a diverged run; ``growth_interval`` finite steps in a row
    double the scale again, up to ``max_scale``. The loss and the Gram matrices are fp32, so
    only the fp16 activation gradients bound the scale, and scales far above 2¹⁶ are fine.
    """

    def __init__(
        self,
        initial: float = 2.0**16,
        growth_interval: int = 100,
        min_scale: float = 1.0,
        max_scale: float = 2.0**32,
    ):
        self.value = checked_initial_scale(initial, growth_interval, min_scale, max_scale)
        self.growth_interval = int(growth_interval)
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)
        self.good_steps = 0
        self.overflows = 0

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss times the current scale (call ``.backward()`` on this)."""
        return loss * self.value

    def unscale_(self, grad: torch.Tensor) -> torch.Tensor:
        """Divide ``grad`` by the scale in place; a 0-d bool tensor on its device: all finite.

        The flag is not read here (that would wait for the device): fetch it with the step's
        other values in its one host transfer.
        """
        grad.mul_(1.0 / self.value)
        return torch.isfinite(grad).all()

    def backward(self, loss: torch.Tensor, param: torch.Tensor) -> torch.Tensor | None:
        """Scaled backward pass, then ``param.grad`` unscaled; the finiteness flag (None: no grad)."""
        self.scale(loss).backward()
        return None if param.grad is None else self.unscale_(param.grad)

    def update(self, finite: bool) -> bool:
        """Record a step's outcome; True when the step must be evaluated again (it overflowed).

        An overflow halves the scale. At ``min_scale`` there is nothing left to halve: the
        loss itself is not finite, and the caller treats the run as diverged (False).
        """
        if finite:
            self.good_steps += 1
            if self.good_steps >= self.growth_interval:
                self.value = min(self.value * 2, self.max_scale)
                self.good_steps = 0
            return False
        self.good_steps = 0
        if self.value <= self.min_scale:
            return False
        self.overflows += 1
        self.value = max(self.value / 2, self.min_scale)
        return True


# ----------------------------------------------------------------------------- precision


@dataclass(frozen=True)
class Runtime:
    """How the network runs on a device: autocast dtype, memory format, compilation (fp16: loss scaling)."""

    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain fp32
    channels_last: bool
    compile: bool = False  # run the network through torch.compile

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]

    def loss_scaler(self, pixels: int) -> LossScaler | None:
        """A fresh dynamic loss scaler for an image of ``pixels`` pixels (fp16 only; else None)."""
        if self.autocast_dtype != torch.float16:
            return None
        return LossScaler(initial_loss_scale(pixels))


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX) for oneDNN."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - very old or unusual builds
        return False


def cuda_auto_precision(device: torch.device) -> str:
    """'bf16' on CUDA GPUs with bf16 tensor cores (compute capability 8.0, Ampere, and later), else 'fp16'.

    ``torch.cuda.is_bf16_supported()`` also says yes where bf16 is only emulated (T4, V100),
    and it asks the current device, not ``device``.
    """
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, _minor = torch.cuda.get_device_capability(index)
    return "bf16" if major >= 8 else "fp16"


#: 'auto' on a CUDA GPU with bf16 (which also has TF32 convolutions) stays fp32 below this output
#: long side. Measured on an H100 (docs/benchmarks.md): an L-BFGS step at 512 px took 17 ms in bf16
#: and 11 ms in fp32, the same at 1024 px, and 71 against 92 ms at 2048 px. Small steps are bound
#: by kernel launches, which autocast's casts add to.
AUTO_BF16_FROM_SIDE = 1536


def select_runtime(
    precision: str, device: torch.device, compile: bool = False, long_side: int | None = None
) -> Runtime:
    """Resolve 'auto' and check that the precision is usable on ``device``.

    'auto' picks bf16 autocast where the hardware has fast bf16 (CUDA from compute
    capability 8.0, CPUs with AVX512-BF16/AMX), fp16 on older CUDA GPUs, and fp32
    elsewhere. On CUDA, an output whose ``long_side`` is known and below
    :data:`AUTO_BF16_FROM_SIDE` stays fp32 (TF32 convolutions), which is faster there. Gram
    matrices and losses are always computed in fp32. channels_last is used wherever autocast
    is, and on CUDA.
    """
    cuda = device.type == "cuda"
    if precision == "auto":
        if cuda:
            precision = cuda_auto_precision(device)
            if precision == "bf16" and long_side is not None and long_side < AUTO_BF16_FROM_SIDE:
                precision = "fp32"
        elif device.type == "cpu" and cpu_supports_bf16():
            precision = "bf16"
        else:
            precision = "fp32"
    if precision == "fp16" and not cuda:
        raise ConfigError(f"precision: 'fp16' needs a CUDA GPU; on {device.type} use 'bf16' or 'fp32'")
    if precision == "bf16" and device.type == "mps":
        raise ConfigError("precision: 'bf16' is not supported on 'mps'; use 'fp32'")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return Runtime(device, dtype, channels_last=cuda or dtype is not None, compile=compile)


# ----------------------------------------------------------------------------- host transfers

_COUNTS = threading.local()


def host_transfers() -> int:
    """How many device → host transfers :func:`to_host` made in this thread (a running count).

    Each one makes the host wait for the device's queue; a step should make one.
    """
    return getattr(_COUNTS, "n", 0)


def to_host(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` as a numpy array: the one place where a step waits for the device (counted)."""
    _COUNTS.n = host_transfers() + 1
    return tensor.detach().cpu().numpy()


def upload(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A small host array on ``like``'s device in its dtype, converted on the host.

    The conversion happens before the copy (MPS has no float64), and on CUDA the copy is
    queued from pinned memory without making the host wait.
    """
    numpy_dtype = {torch.float32: np.float32, torch.float16: np.float16}.get(like.dtype, np.float64)
    host = torch.from_numpy(np.ascontiguousarray(array, dtype=numpy_dtype)).to(like.dtype)
    if like.device.type == "cuda":
        return host.pin_memory().to(like.device, non_blocking=True)
    return host.to(like.device)


def loss_values(terms: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """Scalar loss terms as floats, fetched in one transfer (one wait for the device, not one per term)."""
    out = {k: float(v) for k, v in terms.items() if not isinstance(v, torch.Tensor)}
    names = [k for k, v in terms.items() if isinstance(v, torch.Tensor)]
    if names:
        stacked = torch.stack([terms[k].detach().float().reshape(()) for k in names])  # type: ignore[union-attr]
        out.update(zip(names, (float(x) for x in to_host(stacked))))
    return {k: out[k] for k in terms}


# ----------------------------------------------------------------------------- CUDA streams


def on_device(device: torch.device) -> contextlib.AbstractContextManager:
    """Make ``device`` the current CUDA device inside the block (a no-op elsewhere).

    Kernels, events and streams that name no device use the current one, which is device 0
    in a fresh worker thread: a run on ``cuda:1`` enters this around its loop.
    """
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def record_copy_done(tensor: torch.Tensor) -> torch.cuda.Event | None:
    """An event recorded on the stream that copies to or from ``tensor`` (None off CUDA).

    A copy involving a CUDA tensor runs on the current stream *of that tensor's device*;
    an event recorded on the current device's stream (``Event().record()``) says nothing
    about it when the tensor lives on another GPU, and the host could read a torn preview.
    """
    if tensor.device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(tensor.device))
    return event


# ----------------------------------------------------------------------------- determinism

_DETERMINISM_LOCK = threading.Lock()
_DETERMINISM_USERS = 0
_DETERMINISM_SAVED: tuple[bool, bool, bool] | None = None


def _determinism_enter() -> None:
    global _DETERMINISM_USERS, _DETERMINISM_SAVED
    with _DETERMINISM_LOCK:
        if _DETERMINISM_USERS == 0:
            _DETERMINISM_SAVED = (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic,
            )
            # Read by cuBLAS when it creates a handle's workspace: before the first cuBLAS call.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
        _DETERMINISM_USERS += 1


def _determinism_exit() -> None:
    global _DETERMINISM_USERS, _DETERMINISM_SAVED
    with _DETERMINISM_LOCK:
        _DETERMINISM_USERS -= 1
        if _DETERMINISM_USERS == 0 and _DETERMINISM_SAVED is not None:
            enabled, warn_only, cudnn = _DETERMINISM_SAVED
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
            torch.backends.cudnn.deterministic = cudnn
            _DETERMINISM_SAVED = None


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Deterministic algorithms inside the block when ``enabled``; the previous settings after it.

    The setting is process-wide, so overlapping blocks (two paused generators, two threads)
    share it: a count under a lock turns it on at the first entry and restores what was
    there before (``warn_only`` included) when the last one leaves, in whatever order they
    leave. ``CUBLAS_WORKSPACE_CONFIG`` is set (if unset) for cuBLAS's deterministic mode; it
    takes effect for cuBLAS handles created afterwards, so a process that used cuBLAS before
    should set it itself at start-up.
    """
    if not enabled:
        yield
        return
    _determinism_enter()
    try:
        yield
    finally:
        _determinism_exit()


__all__ = [
    "CUBLAS_WORKSPACE",
    "FP16_TINY",
    "LossScaler",
    "Runtime",
    "checked_initial_scale",
    "cpu_supports_bf16",
    "cuda_auto_precision",
    "deterministic_algorithms",
    "host_transfers",
    "initial_loss_scale",
    "loss_values",
    "on_device",
    "record_copy_done",
    "select_device",
    "select_runtime",
    "to_host",
    "upload",
]
