"""napari-style-transfer: neural style transfer (Gatys et al.) for napari and the command line.

The package imports nothing heavy at import time (napari reads the manifest from it at
start-up); ``stylize``, ``stylize_iter`` and ``StyleConfig`` load the engine on first use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-style-transfer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["StyleConfig", "__version__", "stylize", "stylize_iter"]


def __getattr__(name: str):
    if name in ("StyleConfig", "stylize", "stylize_iter"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'napari_style_transfer' has no attribute {name!r}")
