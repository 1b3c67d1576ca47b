"""Reading image files for the CLI: any format Pillow or tifffile reads, checked and shown upright.

The format is recognised from the file's first bytes, not its name (a PNG named .tif is
read as a PNG). Every failure is an :class:`ImageFileError` with one line saying which file
and why; a FIFO or a device is refused before it is opened, so reading never blocks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ImageFileError, reason, shown
from .paths import check_input_file
from .pil_read import Decoded, read_pil
from .tiff_read import read_tiff, read_tiff_stack

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def is_tiff(path: Path) -> bool:
    """Whether the file starts like a TIFF (classic or BigTIFF)."""
    with open(path, "rb") as handle:
        return handle.read(4) in TIFF_MAGIC


def decode(
    path: str | os.PathLike, long_side: int | None = None, *, factor: int | None = None, labels: bool = False
) -> Decoded:
    """Read an image file, reduced on reading for an output of ``long_side`` px (see ``reduce.py``).

    ``factor`` forces the reduction (a mask follows its content); ``labels``: the file holds
    labels, which are subsampled rather than averaged.
    """
    path = check_input_file(path)
    try:
        if is_tiff(path):
            return read_tiff(path, long_side, factor, labels)
        return read_pil(path, long_side, factor, labels)
    except MemoryError:
        raise ImageFileError(f"cannot read image {shown(path)}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - every reader failure means "unreadable"
        raise ImageFileError(f"cannot read image {shown(path)}: {reason(exc)}") from exc


def read_image(
    path: str | os.PathLike, long_side: int | None = None, *, factor: int | None = None, labels: bool = False
) -> np.ndarray:
    """Read a PNG, JPEG, TIFF… as a numpy array (dtype preserved, e.g. uint16 TIFF); see :func:`decode`."""
    return decode(path, long_side, factor=factor, labels=labels).array


def read_stack(path: str | os.PathLike, labels: bool = False) -> tuple[np.ndarray, bool | None]:
    """Read an nD stack (a TIFF, an animation, a multi-page file) as stored; also whether its last axis is colour.

    The colour flag comes from the file (TIFF samples, a palette, an animation's RGB frames)
    when it says, else None (let the caller guess). ``labels``: a mask (palette indices, 0/1).
    """
    path = check_input_file(path)
    try:
        if is_tiff(path):
            return read_tiff_stack(path, labels)
        array = read_pil(path, labels=labels).array
    except MemoryError:
        raise ImageFileError(f"cannot read image {shown(path)}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageFileError(f"cannot read image {shown(path)}: {reason(exc)}") from exc
    return array, array.ndim >= 3 and array.shape[-1] in (3, 4)


__all__ = ["TIFF_MAGIC", "decode", "is_tiff", "read_image", "read_stack"]
