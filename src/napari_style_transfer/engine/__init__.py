"""The compute engine: PyTorch and numpy only (no napari, no Qt), usable headless.

A run goes through four stages — inputs (``inputs.py``) → objective (``objective.py``) →
the one optimisation loop (``optimise.py``) → render (``render.py``) — and drivers on top of
the loop: multi-scale (``multiscale.py``), tiles (``tiling.py``) and stacks (``stack.py``).
:class:`Stylizer` prepares styles, network and style targets once for many contents, and
:func:`stylize_batch` runs many contents on a Dask cluster (``batch/``).
"""

from .batch import BatchResult, stylize_batch
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
    "BatchResult",
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
    "stylize_batch",
    "stylize",
    "stylize_iter",
    "stylize_stack",
    "stylize_stack_iter",
    "to_rgb01",
]
