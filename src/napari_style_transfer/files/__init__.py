"""Image files: reading (any format Pillow or tifffile reads, reduced on reading), atomic writing, path checks.

``read.py`` / ``pil_read.py`` / ``tiff_read.py`` read, ``reduce.py`` shrinks on reading,
``tiff_stack.py`` reads a stack a few slices at a time, ``write.py`` and ``atomic.py`` write
(``embedded.py``: the settings text a result carries), ``names.py`` makes every output name,
``paths.py`` checks what the user names first.

May import: numpy, Pillow, tifffile and the package's leaves (``arrays``, ``messages``);
never the engine (the readers reduce to the engine's sizes through ``arrays``).
"""

from .atomic import atomic_target, atomic_write, write_json_atomic
from .embedded import TEXT_KEY, read_description
from .errors import ImageFileError, shown
from .guard import ReadFiles, identity
from .names import output_suffix, safe_stem, step_name, step_path
from .paths import (
    TIFF_SUFFIXES,
    WRITABLE_SUFFIXES,
    check_input_file,
    check_writable,
    write_target,
)
from .read import decode, read_image, read_stack
from .reduce import reduction_factor
from .tiff_stack import StackHeader, read_slices, read_stack_header
from .write import to_uint8, write_image, write_stack

__all__ = [
    "ReadFiles",
    "identity",
    "StackHeader",
    "atomic_write",
    "output_suffix",
    "read_slices",
    "read_stack_header",
    "safe_stem",
    "step_name",
    "step_path",
    "write_json_atomic",
    "TEXT_KEY",
    "TIFF_SUFFIXES",
    "WRITABLE_SUFFIXES",
    "ImageFileError",
    "atomic_target",
    "check_input_file",
    "check_writable",
    "decode",
    "read_description",
    "read_image",
    "read_stack",
    "reduction_factor",
    "shown",
    "to_uint8",
    "write_image",
    "write_stack",
    "write_target",
]
