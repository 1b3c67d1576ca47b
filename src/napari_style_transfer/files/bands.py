"""Images decoded a band of rows at a time and reduced as the bands come, so memory follows the output.

:func:`reduce_bands` takes the rows of an image from top to bottom, in bands of any height,
and gives exactly what :func:`~napari_style_transfer.arrays.block_mean` (or, for labels,
:func:`~napari_style_transfer.files.reduce.subsample`) gives for the whole image, holding one
band (and fewer than ``k`` leftover rows) at a time. :func:`tiff_page_bands` gives a TIFF
page's rows that way: read straight from the file when they are stored uncompressed,
else decoded strip by strip (or one row of tiles at a time) by tifffile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ..arrays import block_mean, reduced_shape
from .reduce import subsample

#: Bytes of stored rows read from a file at once.
BAND_BYTES = 8 * 2**20


def reduce_bands(bands: Iterable[np.ndarray], height: int, k: int, labels: bool = False) -> np.ndarray:
    """(rows, W, ...) bands, top to bottom, that make an image ``height`` rows tall → its k×k block means.

    ``labels``: every k-th row and column instead of means. ``k`` = 1 assembles the image.
    """
    out: np.ndarray | None = None
    done = 0  # rows of the image written (as block rows) to ``out``
    pending: list[np.ndarray] = []  # rows waiting for the rest of their k-row block
    waiting = 0
    for rows in bands:
        pending.append(rows)
        waiting += len(rows)
        last = done + waiting >= height
        if waiting < k and not last:
            continue
        band = pending[0] if len(pending) == 1 else np.concatenate(pending)
        usable = min(len(band), height - done) if last else len(band) // k * k
        if out is None:
            dtype = band.dtype.newbyteorder("=")
            out = np.empty(reduced_shape((height, band.shape[1]), k) + band.shape[2:], dtype=dtype)
        part = band[:usable]
        if k > 1:
            part = subsample(part, k) if labels else block_mean(part, k)
        out[done // k : done // k + len(part)] = part
        done += usable
        pending = [band[usable:].copy()] if usable < len(band) and not last else []
        waiting = len(pending[0]) if pending else 0
        if last:
            break
    if out is None or done < height:
        raise ValueError(f"its pixel data ends after {done + waiting} of {height} rows (a truncated file?)")
    return out


def mapped(
    bands: Iterable[np.ndarray], transform: Callable[[np.ndarray], np.ndarray]
) -> Iterator[np.ndarray]:
    """Each band through ``transform`` (e.g. the photometric conversion), one at a time."""
    for band in bands:
        yield transform(band)


def streamable(page) -> bool:
    """Whether :func:`tiff_page_bands` can read this TIFF page (one plane, samples interleaved, whole bytes)."""
    key = page.keyframe
    return (
        (int(key.planarconfig) == 1 or int(key.samplesperpixel) == 1)
        and int(key.imagedepth) == 1
        and int(key.bitspersample) in (8, 16, 32, 64)
        and key.dtype is not None
    )


def _page_shape(key) -> tuple[int, int, int]:
    return int(key.imagelength), int(key.imagewidth), int(key.samplesperpixel)


def _as_rows(array: np.ndarray, samples: int) -> np.ndarray:
    """(rows, W, S) in native byte order; (rows, W) for one sample, as tifffile returns a page."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array[..., 0] if samples == 1 else array


def file_bands(handle, offset: int, shape: tuple[int, int, int], dtype: np.dtype) -> Iterator[np.ndarray]:
    """Rows of (H, W, S) ``dtype`` samples stored uncompressed from ``offset``, read a band at a time."""
    height, width, samples = shape
    row_bytes = width * samples * dtype.itemsize
    step = max(1, BAND_BYTES // max(row_bytes, 1))
    for top in range(0, height, step):
        rows = min(step, height - top)
        handle.seek(offset + top * row_bytes)
        data = handle.read(rows * row_bytes)
        whole = len(data) // row_bytes if row_bytes else rows
        if whole:
            values = np.frombuffer(data, dtype, whole * width * samples)
            yield _as_rows(values.reshape(whole, width, samples), samples)
        if whole < rows:
            return  # the file ends early: reduce_bands says how many rows it got


def _segment_bands(page) -> Iterator[np.ndarray]:
    """A compressed (or scattered) page's rows, decoded a strip or a row of tiles at a time."""
    key = page.keyframe
    height, width, samples = _page_shape(key)
    dtype = np.dtype(key.dtype)
    band: np.ndarray | None = None
    top = -1
    for segment, index, _shape in page.segments(maxworkers=1):
        y, x = int(index[2]), int(index[3])
        if y != top:
            if band is not None:
                yield _as_rows(band, samples)
            rows = min(int(key.tilelength) if key.is_tiled else int(key.rowsperstrip), height - y)
            band, top = np.zeros((rows, width, samples), dtype), y
        if segment is not None:
            tile = np.asarray(segment).reshape(np.shape(segment)[-3:])
            rows, cols = min(tile.shape[0], len(band)), min(tile.shape[1], width - x)
            band[:rows, x : x + cols] = tile[:rows, :cols]
    if band is not None:
        yield _as_rows(band, samples)


def tiff_page_bands(tif, page) -> Iterator[np.ndarray]:
    """A TIFF page's rows, top to bottom, a band at a time (see :func:`streamable`), in native byte order."""
    if page.is_final and tif.filehandle.is_file:
        key = page.keyframe
        dtype = np.dtype(key.dtype).newbyteorder(tif.byteorder)
        return file_bands(tif.filehandle, int(page.dataoffsets[0]), _page_shape(key), dtype)
    return _segment_bands(page)


__all__ = ["BAND_BYTES", "file_bands", "mapped", "reduce_bands", "streamable", "tiff_page_bands"]
