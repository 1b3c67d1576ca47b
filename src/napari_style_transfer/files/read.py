"""Reading image files for the CLI: any format Pillow or tifffile reads, checked and shown upright.

The format is recognised from the file's first bytes, not its name (a PNG named .tif is
read as a PNG). Every failure is an :class:`ImageFileError` with one line saying which file
and why; a FIFO or a device is refused before it is opened, so reading never blocks.

Every reader checks the size the file declares before it decodes a pixel (``limits.py``).
16-bit colour PNGs and 16-bit PGM / PPM files, which Pillow reads at 8 bits or rescaled, are
read at their full depth here (``png16.py``, ``pnm16.py``); TIFFs by tifffile
(``tiff_read.py``); movies (MP4, MOV, AVI, WebM) by PyAV as a stack of frames (``movie.py``);
everything else by Pillow (``pil_read.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import ImageFileError, reason, shown
from .limits import Refused
from .movie import is_movie, read_movie
from .paths import check_input_file
from .pil_read import Decoded, read_pil
from .png16 import png16_header, read_png16
from .pnm16 import pnm16_header, read_pnm16
from .tiff_read import read_tiff, read_tiff_stack

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def is_tiff(path: Path) -> bool:
    """Whether the file starts like a TIFF (classic or BigTIFF)."""
    with open(path, "rb") as handle:
        return handle.read(4) in TIFF_MAGIC


@contextmanager
def _one_line(path: Path) -> Iterator[None]:
    """Any failure inside → one :class:`ImageFileError` line naming the file and why."""
    try:
        yield
    except Refused as exc:  # a size beyond the limits, channels first…: the message says it all
        raise ImageFileError(f"cannot read image {shown(path)}: {exc}") from None
    except MemoryError:
        raise ImageFileError(f"cannot read image {shown(path)}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - every reader failure means "unreadable"
        raise ImageFileError(f"cannot read image {shown(path)}: {reason(exc)}") from exc


def _read(path: Path, long_side: int | None, factor: int | None, labels: bool) -> Decoded:
    """The reader for the file's format (by its first bytes)."""
    if is_tiff(path):
        return read_tiff(path, long_side, factor, labels)
    png = png16_header(path)
    if png is not None:
        return read_png16(path, png, long_side, factor, labels)
    pnm = pnm16_header(path)
    if pnm is not None:
        return read_pnm16(path, pnm, long_side, factor, labels)
    return read_pil(path, long_side, factor, labels)


def decode(
    path: str | os.PathLike, long_side: int | None = None, *, factor: int | None = None, labels: bool = False
) -> Decoded:
    """Read an image file, reduced on reading for an output of ``long_side`` px (see ``reduce.py``).

    ``factor`` forces the reduction (a mask follows its content); ``labels``: the file holds
    labels, which are subsampled rather than averaged.
    """
    path = check_input_file(path)
    if is_movie(path):  # every frame, as an animation's (its errors are already one line)
        frames = read_movie(path).frames
        return Decoded(frames, 1, frames.shape[1:3], len(frames))
    with _one_line(path):
        return _read(path, long_side, factor, labels)


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
    if is_movie(path):
        return read_movie(path).frames, True
    with _one_line(path):
        if is_tiff(path):
            return read_tiff_stack(path, labels)
        array = _read(path, None, None, labels).array
    return array, array.ndim >= 3 and array.shape[-1] in (3, 4)


__all__ = ["TIFF_MAGIC", "decode", "is_tiff", "read_image", "read_stack"]
