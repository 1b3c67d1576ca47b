"""Where and how a run computes: device choice, precision, memory layout, determinism.

Kept apart from the loop so that every driver (multi-scale, tiles, stacks, batches) and the
device checks resolve 'auto' the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .config import ConfigError


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


@dataclass(frozen=True)
class Runtime:
    """How the network runs on a device: autocast dtype, memory format, fp16 loss scale."""

    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain fp32
    channels_last: bool
    loss_scale: float = 1.0  # fp16 gradients of O(1) relative losses underflow without it
    compile: bool = False  # run the network through torch.compile

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX) for oneDNN."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - very old or unusual builds
        return False


def select_runtime(precision: str, device: torch.device, compile: bool = False) -> Runtime:
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
    return Runtime(device, dtype, channels_last=cuda or dtype is not None,
                   loss_scale=1024.0 if dtype == torch.float16 else 1.0, compile=compile)  # fmt: skip


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Deterministic algorithms inside the block when ``enabled``; the previous settings after it."""
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


__all__ = ["Runtime", "cpu_supports_bf16", "deterministic_algorithms", "select_device", "select_runtime"]
