"""Reading and writing image files for the CLI, scripts and benchmarks (kept for their imports).

Everything lives in :mod:`napari_style_transfer.files`; this module re-exports it.
"""

from __future__ import annotations

from .files import (
    TIFF_SUFFIXES,
    WRITABLE_SUFFIXES,
    ImageFileError,
    check_writable,
    read_image,
    read_stack,
    write_image,
    write_stack,
)

__all__ = [
    "TIFF_SUFFIXES",
    "WRITABLE_SUFFIXES",
    "ImageFileError",
    "check_writable",
    "read_image",
    "read_stack",
    "write_image",
    "write_stack",
]
