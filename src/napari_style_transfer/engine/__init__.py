"""The compute engine: PyTorch and numpy only (no napari, no Qt), usable headless."""

from .config import ConfigError, StyleConfig
from .guidance import Guidance, StackOptions
from .images import ImageError, ImageInfo, from_rgb01, to_rgb01
from .memory import estimate_peak_memory, largest_fitting_size
from .stack import StackEvent, flicker, run_iter, stylize_stack, stylize_stack_iter
from .transfer import (
    MemoryLimitError,
    ProgressEvent,
    StyleTransferError,
    scale_sizes,
    select_device,
    stylize,
    stylize_iter,
)
from .vgg import WeightsError, get_network

__all__ = [
    "ConfigError",
    "Guidance",
    "ImageError",
    "ImageInfo",
    "MemoryLimitError",
    "ProgressEvent",
    "StackEvent",
    "StackOptions",
    "StyleConfig",
    "StyleTransferError",
    "WeightsError",
    "estimate_peak_memory",
    "flicker",
    "from_rgb01",
    "get_network",
    "largest_fitting_size",
    "scale_sizes",
    "run_iter",
    "select_device",
    "stylize",
    "stylize_iter",
    "stylize_stack",
    "stylize_stack_iter",
    "to_rgb01",
]
