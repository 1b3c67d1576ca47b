"""The compute engine: PyTorch and numpy only (no napari, no Qt), usable headless."""

from .config import ConfigError, StyleConfig
from .images import ImageError, ImageInfo, from_rgb01, to_rgb01
from .transfer import ProgressEvent, StyleTransferError, scale_sizes, select_device, stylize, stylize_iter
from .vgg import WeightsError, get_network

__all__ = [
    "ConfigError",
    "ImageError",
    "ImageInfo",
    "ProgressEvent",
    "StyleConfig",
    "StyleTransferError",
    "WeightsError",
    "from_rgb01",
    "get_network",
    "scale_sizes",
    "select_device",
    "stylize",
    "stylize_iter",
    "to_rgb01",
]
