"""Image files: reading (any format Pillow or tifffile reads, reduced on reading), atomic writing, path checks.

``read.py`` / ``pil_read.py`` / ``tiff_read.py`` read, ``reduce.py`` shrinks on reading,
``write.py`` and ``atomic.py`` write (``embedded.py``: the text a result carries), ``paths.py`` checks what the user names first.
"""

from .atomic import atomic_target
from .embedded import TEXT_KEY, read_description
from .errors import ImageFileError, shown
from .paths import (
    TIFF_SUFFIXES,
    WRITABLE_SUFFIXES,
    check_input_file,
    check_not_an_input,
    check_writable,
    same_file,
    write_target,
)
from .read import decode, read_image, read_stack
from .reduce import reduction_factor
from .write import to_uint8, write_image, write_stack

__all__ = [
    "TEXT_KEY",
    "TIFF_SUFFIXES",
    "WRITABLE_SUFFIXES",
    "ImageFileError",
    "atomic_target",
    "check_input_file",
    "check_not_an_input",
    "check_writable",
    "decode",
    "read_description",
    "read_image",
    "read_stack",
    "reduction_factor",
    "same_file",
    "shown",
    "to_uint8",
    "write_image",
    "write_stack",
    "write_target",
]
