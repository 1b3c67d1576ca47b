"""A TIFF stack read a few slices at a time: its header without the pixels, then slices by number.

A batch worker never holds more of a stack than its chunk: one TIFF page per slice (what
tifffile, ImageJ and most microscopes write) is read page by page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..messages import first_line
from .errors import ImageFileError, shown
from .paths import TIFF_SUFFIXES, check_input_file


@dataclass(frozen=True)
class StackHeader:
    """Shape and type of an nD TIFF stack, read from its header only (no pixel data)."""

    shape: tuple[int, ...]
    dtype: str
    rgb: bool

    @property
    def slice_shape(self) -> tuple[int, ...]:
        """(H, W) or (H, W, C)."""
        return self.shape[-3:] if self.rgb else self.shape[-2:]

    @property
    def lead(self) -> tuple[int, ...]:
        """The leading (time, z, …) axes that index the slices."""
        return self.shape[: len(self.shape) - len(self.slice_shape)]

    @property
    def n_slices(self) -> int:
        return int(np.prod(self.lead)) if self.lead else 1


def read_stack_header(path: str | Path) -> StackHeader:
    """The stack's shape, dtype and whether its last axis is colour; ImageFileError when unreadable."""
    path = check_input_file(path)  # a FIFO or a device is refused before it is opened: nothing blocks
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ImageFileError(f"--stack: {shown(path)} is not a TIFF stack (.tif or .tiff)")
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes, dtype = (
                tuple(int(v) for v in series.shape),
                series.axes or "",
                np.dtype(series.dtype),
            )
    except Exception as exc:  # noqa: BLE001 - every reader failure means "unreadable"
        raise ImageFileError(
            f"cannot read image {shown(path)}: {type(exc).__name__}: {first_line(exc)}"
        ) from exc
    if len(axes) == len(shape):
        rgb = axes.endswith("S") and shape[-1] in (3, 4)
    else:
        rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    if len(shape) - (1 if rgb else 0) < 2:
        raise ImageFileError(f"--stack: {shown(path)} has shape {shape}, not a stack of 2D slices")
    return StackHeader(shape, dtype.str, rgb)


def read_slices(path: str | Path, start: int, stop: int, header: StackHeader) -> np.ndarray:
    """Slices ``start`` to ``stop`` (flat numbers in C order over the leading axes) as (k, H, W[, C]).

    One TIFF page per slice (what tifffile, ImageJ and most microscopes write) is read page by
    page; any other layout is read whole and cut.
    """
    import tifffile

    count = stop - start
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if len(series) == header.n_slices:
                data = tif.asarray(key=range(start, stop), series=0)
            else:
                data = series.asarray().reshape((header.n_slices, *header.slice_shape))[start:stop]
    except Exception as exc:  # noqa: BLE001
        raise ImageFileError(
            f"cannot read image {shown(path)}: {type(exc).__name__}: {first_line(exc)}"
        ) from exc
    return np.asarray(data).reshape((count, *header.slice_shape))


class TiffSlices:
    """A stack on disk that reads a slice when indexed by a leading-axes index (for value ranges)."""

    def __init__(self, path: str | Path, header: StackHeader):
        self.path, self.header = Path(path), header
        self.shape, self.dtype = header.shape, np.dtype(header.dtype)

    def __getitem__(self, index: tuple[int, ...]) -> np.ndarray:
        flat = int(np.ravel_multi_index(index, self.header.lead)) if self.header.lead else 0
        return read_slices(self.path, flat, flat + 1, self.header)[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = read_slices(self.path, 0, self.header.n_slices, self.header).reshape(self.shape)
        return data if dtype is None else data.astype(dtype)


__all__ = ["StackHeader", "TiffSlices", "read_slices", "read_stack_header"]
