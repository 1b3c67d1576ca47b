"""The installed package's version, as its metadata says (a leaf: settings, results and the CLI name it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-style-transfer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
