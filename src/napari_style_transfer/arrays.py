"""numpy-only helpers that both the engine and the file readers need: sizes, dtypes, Pillow images, block means.

They live below ``engine/`` and ``files/`` so that neither imports the other: a file reader
reduces an image to exactly the size the engine will work at (:func:`fit_long_side`), and a
layer and a file with the same pixels reduce to the same values (one :func:`block_mean`).
No torch, no Pillow import (a Pillow *image* is accepted as an object), no napari.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Smallest side (pixels) the VGG-19 stack accepts: four 2×2 poolings before block 5
#: (16 → 1). Smaller sides are upscaled to it by :func:`fit_long_side` (a 3×3 image is
#: stylised at 16×16, a 4000×3 one at 512×16 for a 512 px output).
MIN_SIDE = 16

#: Bytes of float64 (or int64) work that :func:`block_mean` holds at once: the rows it reads
#: from a lazy array (dask, zarr, a memory-mapped file) at a time.
STRIP_BYTES = 32 * 2**20

#: Pillow modes kept as they are (the array keeps the file's values and dtype).
PIL_KEPT_MODES = ("L", "RGB", "RGBA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def fit_long_side(shape: tuple[int, int], long_side: int, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """(H, W) scaled so that the longer side is ``long_side``; each side at least ``min_side``.

    The network cannot look at anything thinner than :data:`MIN_SIDE` pixels, so a side
    that would be thinner is stretched to it (the aspect ratio then changes; a result laid
    over the content with its own scale still covers it exactly).
    """
    h, w = shape
    factor = max(long_side, min_side) / max(h, w)
    return max(min_side, round(h * factor)), max(min_side, round(w * factor))


def cast_to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values in ``dtype``'s own range → ``dtype`` (integers rounded and clipped; bool: >= 0.5)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return values >= 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = float(info.min), float(info.max)
        if high > info.max:  # 64-bit: the float nearest to the max is 2**63 or 2**64, which overflows
            high = float(np.nextafter(high, 0.0))
        return np.clip(np.rint(values), low, high).astype(dtype)
    return values.astype(dtype)


def pil_mode(image: Any) -> str:
    """The mode a Pillow image is converted to before it becomes an array.

    Palettes are looked up (RGBA with transparency), gray + alpha becomes RGBA, 1-bit
    becomes 8-bit gray, CMYK / YCbCr / LAB / HSV become RGB; 16-bit, 32-bit and float
    gray stay as they are.
    """
    mode = image.mode
    transparent = "transparency" in image.info
    if mode in ("P", "PA"):
        return (
            "RGBA"
            if transparent or mode == "PA" or getattr(image.palette, "mode", "RGB") == "RGBA"
            else "RGB"
        )
    if mode in ("LA", "La", "RGBa"):
        return "RGBA"
    if mode in ("1", "L", "RGB") and transparent:
        return "RGBA"
    if mode == "1":
        return "L"
    return mode if mode in PIL_KEPT_MODES else "RGB"


def pil_array(image: Any) -> np.ndarray:
    """A Pillow image (any mode) as an array in the engine's layouts (see :func:`pil_mode`)."""
    mode = pil_mode(image)
    if mode != image.mode:
        image = image.convert(mode)
    array = np.asarray(image)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))  # I;16B
    return array


def reduced_shape(shape: tuple[int, int], k: int) -> tuple[int, int]:
    """(H, W) after k×k blocks (a partial block at the right and bottom edges counts as one)."""
    return -(-shape[0] // k), -(-shape[1] // k)


def block_mean(data: Any, k: int) -> np.ndarray:
    """(H, W, ...) → k×k block means in ``data``'s own dtype.

    ``data`` is anything that slices into numpy (numpy, dask, zarr, a memory map): rows are
    read a strip at a time (about :data:`STRIP_BYTES` of work), so memory follows the output.
    Edge blocks that are cut off average the pixels they have. Integers up to 32 bits are
    summed exactly in int64 and rounded half up; bool blocks are True when at least half is;
    floats and 64-bit integers are averaged in float64 with every value divided first, so
    values near the dtype's maximum cannot overflow. A NaN makes its block NaN.
    """
    dtype = np.dtype(data.dtype)
    if k <= 1:
        return np.asarray(data)
    shape = tuple(int(s) for s in data.shape)
    height, width, rest = shape[0], shape[1], shape[2:]
    row_bytes = width * int(np.prod(rest, dtype=np.int64)) * 8
    rows = max(k, STRIP_BYTES // max(row_bytes, 1) // k * k)
    out = np.empty(reduced_shape((height, width), k) + rest, dtype=dtype.newbyteorder("="))
    for r0 in range(0, height, rows):
        strip = np.asarray(data[r0 : r0 + rows])
        out[r0 // k : r0 // k + -(-strip.shape[0] // k)] = _strip_means(strip, k, dtype)
    return out


def _strip_means(strip: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray:
    """Block means of one strip of rows (its height a multiple of ``k``, except at the bottom edge)."""
    height, width = strip.shape[:2]
    trailing = (1,) * (strip.ndim - 2)
    row_starts, col_starts = np.arange(0, height, k), np.arange(0, width, k)
    row_counts = np.diff(np.append(row_starts, height))
    col_counts = np.diff(np.append(col_starts, width))
    if dtype.kind == "b" or (dtype.kind in "iu" and dtype.itemsize <= 4):
        sums = np.add.reduceat(
            np.add.reduceat(strip.astype(np.int64), row_starts, axis=0), col_starts, axis=1
        )
        counts = (row_counts[:, None] * col_counts[None, :]).reshape(sums.shape[:2] + trailing)
        return sums * 2 >= counts if dtype.kind == "b" else (sums + counts // 2) // counts
    per_row = np.repeat(row_counts, row_counts).reshape((height, 1) + trailing).astype(np.float64)
    per_col = np.repeat(col_counts, col_counts).reshape((1, width) + trailing).astype(np.float64)
    scaled = strip.astype(np.float64) / per_row / per_col
    means = np.add.reduceat(np.add.reduceat(scaled, row_starts, axis=0), col_starts, axis=1)
    return means if dtype.kind == "f" else cast_to_dtype(means, dtype)


__all__ = [
    "MIN_SIDE",
    "PIL_KEPT_MODES",
    "STRIP_BYTES",
    "block_mean",
    "cast_to_dtype",
    "fit_long_side",
    "pil_array",
    "pil_mode",
    "reduced_shape",
]
