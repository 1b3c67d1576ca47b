"""The compute engine: one run, arrays in and arrays out, usable headless.

A run goes through four stages — inputs (``inputs.py``) → objective (``objective.py``) →
the one optimisation loop (``optimise.py``) → render (``render.py``) — and drivers on top of
the loop: multi-scale (``multiscale.py``), tiles (``tiling.py``) and stacks (``stack.py``).
:class:`Stylizer` prepares styles, network and style targets once for many contents (the
batch package, one level up, runs many of them on a Dask cluster).

May import: torch, numpy and the package's leaves (``arrays``, ``messages``). Never files,
Pillow, tifffile, Dask, zarr, napari or Qt (``tests/test_layout.py`` checks it).
"""

from .config import ConfigError, StyleConfig
from .events import MemoryLimitError, ProgressEvent, StyleTransferError
from .guidance import Guidance, StackOptions
from .images import ImageError, ImageInfo, from_rgb01, to_rgb01
from .memory import estimate_peak_memory, largest_fitting_size
from .runtime import select_device
from .scales import scale_sizes
from .stack import StackEvent, stylize_stack, stylize_stack_iter
from .stopping import expected_steps
from .stylizer import Stylizer
from .timelapse import flicker
from .transfer import run_iter, stylize, stylize_iter
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
    "Stylizer",
    "WeightsError",
    "estimate_peak_memory",
    "expected_steps",
    "flicker",
    "from_rgb01",
    "get_network",
    "largest_fitting_size",
    "run_iter",
    "scale_sizes",
    "select_device",
    "stylize",
    "stylize_iter",
    "stylize_stack",
    "stylize_stack_iter",
    "to_rgb01",
]
