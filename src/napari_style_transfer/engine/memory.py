"""Peak-memory estimate of a run, so that a size that cannot fit is refused before it starts.

The peak is dominated by the activations autograd keeps for one forward/backward pass of the
truncated VGG-19, which grow linearly with the number of output pixels. Per input pixel the
stack to relu5_1 produces 320 activation values (block 1: 2×64 channels at full resolution,
block 2: 2×128 at 1/4, …); autograd keeps them and the backward pass holds about as much
again in gradients, max-pooling adds int64 indices. The constant factors below were measured
on the CPU (peak process RSS after a few steps, 256–1024 px; see tests/engine/test_memory.py) and
include the L-BFGS history, which fills up over the first ``LBFGS_HISTORY`` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import StyleConfig
from .events import MemoryLimitError
from .optimise import LBFGS_HISTORY
from .runtime import Runtime, select_runtime
from .vgg import CONV_CHANNELS, LAYER_INDEX, LAYER_NAMES

#: Activation bytes held per activation value in one forward+backward (fp32 storage).
_BYTES_PER_ACTIVATION_FP32 = 9.0
#: With bf16/fp16 autocast most saved activations are half precision.
_BYTES_PER_ACTIVATION_HALF = 7.5
#: Fixed overhead: allocator slack; CUDA context excluded (measured as free memory).
_FIXED_BYTES = 192 * 2**20
#: cuDNN workspaces on CUDA: a fixed part, plus fp32 values per pixel (two 64-channel maps).
_CUDNN_FIXED_BYTES = 256 * 2**20
_CUDNN_VALUES_PER_PIXEL = 2 * 64
#: bf16/fp16 Gram backward: the fp32 copy of relu1_1's features (64 values per pixel). Its fp32 product
#: exists in fp32 runs too, so it is in the calibrated per-activation bytes already.
_GRAM_FP32_VALUES_PER_PIXEL = 64


@dataclass(frozen=True)
class MemoryEstimate:
    total_bytes: int
    activations_bytes: int
    weights_bytes: int
    optimizer_bytes: int

    @property
    def total_gib(self) -> float:
        return self.total_bytes / 2**30


def activations_per_pixel(deepest_layer: str) -> float:
    """Activation values per input pixel for the stack up to ``deepest_layer``."""
    total = 0.0
    factor = 1.0
    channels = 3
    for name in LAYER_NAMES[: LAYER_INDEX[deepest_layer] + 1]:
        if name.startswith("conv"):
            channels = CONV_CHANNELS[name][1]
            total += channels * factor
        elif name.startswith("pool"):
            factor /= 4
            total += channels * factor * 3  # pooled output plus int64 indices (2 × 4 bytes)
    return total


def _weights_bytes(deepest_layer: str) -> int:
    count = 0
    for name in LAYER_NAMES[: LAYER_INDEX[deepest_layer] + 1]:
        if name.startswith("conv"):
            cin, cout = CONV_CHANNELS[name]
            count += cin * cout * 9 + cout
    return count * 4


def estimate_peak_memory(
    shape: tuple[int, int],
    deepest_layer: str = "relu5_1",
    precision: str = "fp32",
    optimizer: str = "lbfgs",
    style_pixels: int | None = None,
    history_size: int = LBFGS_HISTORY,
    *,
    device: torch.device | str | None = None,
    regions: int = 0,
) -> MemoryEstimate:
    """Peak memory of one run at output ``shape`` (H, W) on a device (bytes, generous).

    Besides activations, gradients, image copies, the L-BFGS history and the weights, it
    counts what the CPU calibration could not see:

    - bf16/fp16: the Gram backward widens the features of the largest style layer to fp32
      (relu1_1: 64 channels at full size), while all saved activations are still held (the
      Gram nodes run first in the backward pass);
    - ``device`` 'cuda': cuDNN workspaces (benchmark mode picks algorithms with scratch space):
      a fixed 256 MiB plus two fp32 maps of the widest full-size convolution;
    - ``regions`` > 0 (guided runs): per region, an fp32 masked copy of every style layer's
      features, kept for the backward pass, and the masks at each layer's size.

    Margin: on the CPU the estimate covers the measured peak process memory (L-BFGS, 256 px:
    measured ≤ estimate ≤ 4 × measured, ``tests/engine/test_memory.py``); one forward and backward
    pass measured 4.5 bytes per activation value in fp32 and 4.4 in bf16 at 256 px (RSS,
    one thread), against the 9 and 7.5 counted here: about 2× for the activations. The terms
    above are upper bounds, each counted as if it peaked with the activations. On CUDA,
    ``benchmarks/gpu_check.py`` reports torch's allocated and reserved peaks next to it.
    The CUDA context (~0.5 GiB) is excluded: it is already taken when free memory is read.
    """
    pixels = shape[0] * shape[1]
    half = precision != "fp32"
    per_value = _BYTES_PER_ACTIVATION_HALF if half else _BYTES_PER_ACTIVATION_FP32
    # Targets are computed without grad, one image at a time: smaller than one training pass.
    target_pixels = max(pixels, style_pixels or pixels)
    activations = activations_per_pixel(deepest_layer) * max(pixels * per_value, target_pixels * 4.0 * 1.2)
    if half:
        activations += _GRAM_FP32_VALUES_PER_PIXEL * pixels * 4
    if regions > 0:
        activations += regions * guided_values_per_pixel(deepest_layer) * pixels * 4
    image_copies = 3 * pixels * 4 * (6 if optimizer == "lbfgs" else 4)
    history = 2 * history_size * 3 * pixels * 4 if optimizer == "lbfgs" else 0
    weights = _weights_bytes(deepest_layer) * (2 if half else 1)
    fixed = _FIXED_BYTES
    if device is not None and torch.device(device).type == "cuda":
        fixed += _CUDNN_FIXED_BYTES + _CUDNN_VALUES_PER_PIXEL * pixels * 4
    total = int(activations + image_copies + history + weights + fixed)
    return MemoryEstimate(total, int(activations), weights, int(image_copies + history))


def available_memory(device: torch.device) -> int | None:
    """Bytes a run may use on ``device`` now (None where it cannot be known).

    CUDA: the driver's free memory plus what PyTorch's allocator holds cached but unused
    (the driver counts that as taken, but the run gets it first). MPS: see
    :func:`mps_available_memory`. CPU: available RAM.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, cached))
    if device.type == "mps":
        return mps_available_memory()
    if device.type == "cpu":
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil comes with napari; optional for the engine
            return None
        return int(psutil.virtual_memory().available)
    return None


def largest_fitting_size(
    aspect: tuple[int, int],
    budget_bytes: int,
    deepest_layer: str = "relu5_1",
    precision: str = "fp32",
    optimizer: str = "lbfgs",
    *,
    device: torch.device | str | None = None,
    regions: int = 0,
) -> int:
    """Largest long side (pixels, multiple of 16) whose estimate fits in ``budget_bytes``; 0 if none."""
    low, high = 0, 16

    def fits(side: int) -> bool:
        h, w = aspect
        scale = side / max(h, w)
        shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        return (
            estimate_peak_memory(
                shape, deepest_layer, precision, optimizer, device=device, regions=regions
            ).total_bytes
            <= budget_bytes
        )

    while fits(high) and high < 1 << 20:
        low, high = high, high * 2
    while high - low > 16:
        mid = (low + high) // 2 // 16 * 16
        if fits(mid):
            low = mid
        else:
            high = mid
    return low


#: Host memory per output pixel held by a tiled run (content, coarse result, canvas, weights, output).
HOST_BYTES_PER_PIXEL = 128
#: Automatic tile size: the largest that fits, at most this (bigger tiles gain little).
MAX_AUTO_TILE = 1024
#: Smallest automatic tile size; below it a tiled run is refused.
MIN_AUTO_TILE = 64
#: Tile size when the device's free memory is unknown (e.g. Apple MPS).
FALLBACK_TILE = 512


def largest_side_for(shape: tuple[int, int], budget_bytes: float, bytes_per_pixel: float) -> int:
    """Largest long side (multiple of 16) of an image shaped like ``shape`` at ``bytes_per_pixel`` within a budget."""
    h, w = shape
    ratio = min(h, w) / max(h, w)
    return int(math.sqrt(max(0.0, budget_bytes) / bytes_per_pixel / ratio)) // 16 * 16


def check_run_fits(
    shape: tuple[int, int], config: StyleConfig, runtime: Runtime, style_pixels: int = 0, regions: int = 0
) -> None:
    """Refuse, before starting, a run at output ``shape`` whose estimated peak exceeds the device's free memory.

    ``regions``: the number of mask regions of a guided run (each adds masked feature copies).
    """
    budget = available_memory(runtime.device)
    if budget is None:
        return
    where = {"device": runtime.device, "regions": regions}
    estimate = estimate_peak_memory(
        shape, config.deepest_layer, runtime.precision, config.optimizer, style_pixels, **where
    )
    if estimate.total_bytes <= budget:
        return
    largest = largest_fitting_size(
        shape, budget, config.deepest_layer, runtime.precision, config.optimizer, **where
    )
    raise MemoryLimitError(
        f"size: {max(shape)} px needs about {estimate.total_gib:.1f} GiB on {runtime.device} but only "
        f"{budget / 2**30:.1f} GiB are free; the largest size that fits is about {largest} px",
        largest,
    )


def largest_size_now(shape: tuple[int, int], config: StyleConfig, device: torch.device) -> int:
    """After running out of memory at output ``shape``: a long side that should fit now (0: none).

    The estimate for the memory free now, and below the size that failed (the estimate had
    said that one fits, so ask for less).
    """
    below = int(max(shape) * 0.75) // 16 * 16
    budget = available_memory(device)
    if budget is None:
        return below
    precision = select_runtime(config.precision, device, long_side=config.size).precision
    fits = largest_fitting_size(
        shape, budget, config.deepest_layer, precision, config.optimizer, device=device
    )
    return max(0, min(fits, below))


@dataclass(frozen=True)
class TileBudget:
    """What a tiled run may use: device bytes for one tile's optimisation (None: unknown)."""

    device_bytes: int | None


def tiled_run_budget(shape: tuple[int, int], device: torch.device, deepest_layer: str) -> TileBudget:
    """The device budget of a tiled run at output ``shape``; refuses when the host cannot hold the canvas."""
    budget = available_memory(device)
    if budget is None:
        return TileBudget(None)
    cpu = device.type == "cpu"
    host_budget = budget if cpu else available_memory(torch.device("cpu"))
    if host_budget is None:
        return TileBudget(budget)
    if cpu:
        host_budget -= estimate_peak_memory((MIN_AUTO_TILE, MIN_AUTO_TILE), deepest_layer).total_bytes
    host_bytes = shape[0] * shape[1] * HOST_BYTES_PER_PIXEL
    if host_bytes > host_budget:
        largest = largest_side_for(shape, host_budget, HOST_BYTES_PER_PIXEL)
        raise MemoryLimitError(
            f"size: {max(shape)} px needs about {host_bytes / 2**30:.1f} GiB of host memory even in tiles "
            f"but only {max(host_budget, 0) / 2**30:.1f} GiB are free; the largest size that fits is about "
            f"{largest} px",
            largest,
        )
    return TileBudget(budget - host_bytes if cpu else budget)


def choose_tile_size(
    out_long: int,
    tile_size: int | None,
    budget: TileBudget,
    device: torch.device,
    deepest: str,
    precision: str,
    optimizer: str,
) -> int:
    """The tile size: the one asked for (refused if it cannot fit) or the largest that fits, at most 1024."""
    available = budget.device_bytes
    if tile_size is not None:
        if available is not None:
            need = estimate_peak_memory(
                (tile_size, tile_size), deepest, precision, optimizer, device=device
            ).total_bytes
            if need > available:
                fits = largest_fitting_size((1, 1), available, deepest, precision, optimizer, device=device)
                raise MemoryLimitError(
                    f"tile_size: {tile_size} px tiles need about {need / 2**30:.1f} GiB on {device} but only "
                    f"{available / 2**30:.1f} GiB are free; the largest tile that fits is about {fits} px",
                    fits,
                )
        return min(tile_size, out_long)
    if available is None:
        return min(FALLBACK_TILE, out_long)
    tile = min(
        MAX_AUTO_TILE, largest_fitting_size((1, 1), available, deepest, precision, optimizer, device=device)
    )
    if tile < MIN_AUTO_TILE:
        raise MemoryLimitError(
            f"size: {out_long} px needs more memory than {device} has free ({max(available, 0) / 2**30:.2f} GiB), "
            f"even in tiles; the largest size that fits is about 0 px",
            0,
        )
    return min(tile, out_long)


class PeakRSS:
    """Context manager that samples this process's RSS every ``interval`` s in a thread.

    ``peak_bytes`` is the highest RSS seen above the RSS at entry: the CPU peak of the work
    inside the block (``ru_maxrss`` cannot give this once an earlier step peaked higher).
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_bytes = 0

    def __enter__(self) -> PeakRSS:
        import threading

        import psutil

        process = psutil.Process()
        self._base = process.memory_info().rss
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak_bytes = max(self.peak_bytes, process.memory_info().rss - self._base)
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------- devices


def guided_values_per_pixel(deepest_layer: str) -> float:
    """fp32 values per output pixel that one guided region adds: masked features + masks per style layer.

    Counted for the default style layers (relu1_1 … relu5_1) up to ``deepest_layer``.
    """
    total = 0.0
    deepest = LAYER_INDEX[deepest_layer]
    for block, channels in enumerate((64, 128, 256, 512, 512)):
        name = f"relu{block + 1}_1"
        if LAYER_INDEX[name] <= deepest:
            total += (channels + 1) / 4**block
    return total


def mps_available_memory() -> int | None:
    """Bytes a run may use on Apple's GPU now, or None where this torch cannot say.

    Metal's recommended working-set size minus what tensors hold now; Apple GPUs share the
    RAM, so at most the free RAM plus what the MPS allocator holds cached.
    """
    mps = getattr(torch, "mps", None)
    limit = getattr(mps, "recommended_max_memory", None)
    current = getattr(mps, "current_allocated_memory", None)
    if limit is None or current is None:
        return None
    try:
        held = int(current())
        budget = int(limit()) - held
        driver = getattr(mps, "driver_allocated_memory", None)
        import psutil

        cached = max(0, int(driver()) - held) if driver is not None else 0
        budget = min(budget, int(psutil.virtual_memory().available) + cached)
    except ImportError:  # pragma: no cover - psutil comes with napari; optional for the engine
        pass
    except RuntimeError:  # MPS present in the build but not usable
        return None
    return max(0, budget)


def release_cached_memory(device: torch.device | str | None = None, *, collect: bool = True) -> None:
    """Give memory cached by PyTorch's device allocator back (CUDA, MPS); call after a run or between slices.

    ``collect`` runs the garbage collector first (tenths of a second with napari loaded):
    the cache can only give back blocks whose tensors are gone. ``device`` None: every
    device type present. On the CPU there is no cache, and nothing is done.
    """
    kind = None if device is None else torch.device(device).type
    if kind == "cpu":
        return
    if collect:
        import gc

        gc.collect()
    if kind in (None, "cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch.backends, "mps", None)
    if kind in (None, "mps") and mps is not None and mps.is_available():
        torch.mps.empty_cache()
