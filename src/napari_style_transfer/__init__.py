"""napari-style-transfer: neural style transfer (Gatys et al.) for napari and the command line.

The public Python API, re-exported here: :func:`stylize`, :func:`stylize_iter`,
:func:`stylize_stack`, :func:`run_iter` and :class:`StyleConfig` (from ``engine/``),
:func:`stylize_batch` and :class:`BatchOptions` (from ``batch/``), :class:`Guidance` and
:class:`StackOptions`. The package imports nothing heavy at import time (napari reads the
manifest from it at start-up): each name loads its package on first use.
"""

from importlib import import_module

from .version import __version__

#: Public name → the package that defines it (loaded on first use).
_PUBLIC = {
    "ConfigError": "engine",
    "Guidance": "engine",
    "ProgressEvent": "engine",
    "StackOptions": "engine",
    "StyleConfig": "engine",
    "StyleTransferError": "engine",
    "run_iter": "engine",
    "stylize": "engine",
    "stylize_iter": "engine",
    "stylize_stack": "engine",
    "BatchOptions": "batch",
    "BatchResult": "batch",
    "stylize_batch": "batch",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'napari_style_transfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
