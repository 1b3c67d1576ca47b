"""napari-style-transfer: neural style transfer (Gatys et al.) for napari and the command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-style-transfer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from .engine import StyleConfig, stylize, stylize_iter

__all__ = ["StyleConfig", "__version__", "stylize", "stylize_iter"]
