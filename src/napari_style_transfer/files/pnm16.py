"""16-bit PGM and PPM files (a maximum value above 255) read at their full depth: uint16, as stored.

Pillow reads a 16-bit PPM as 8-bit (wrongly for binary ones) and a 16-bit PGM as 32-bit
integers rescaled to 65535; here the samples come back exactly as stored (a 12-bit camera's
0-4095 stays 0-4095). Binary files (P5, P6) are read a band of rows at a time and reduced as
they come; plain (text) ones (P2, P3) are small by nature and read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arrays import block_mean, reduced_shape
from .bands import BAND_BYTES, file_bands, reduce_bands
from .limits import Declared, check_declared
from .pil_read import Decoded
from .reduce import reduction_factor, subsample

#: Magic number → (samples per pixel, plain text).
PNM_MAGIC = {b"P2": (1, True), b"P3": (3, True), b"P5": (1, False), b"P6": (3, False)}
WHITESPACE = b" \t\r\n\v\f"
#: How far into the file the header may reach (comments included).
HEADER_BYTES = 64 * 1024
#: Memory per declared byte a plain file takes while its text is parsed.
PLAIN_FACTOR = 32


@dataclass(frozen=True)
class PnmHeader:
    """A 16-bit PNM's header: size, samples per pixel, maximum value, where the samples start."""

    width: int
    height: int
    samples: int
    maxval: int
    offset: int
    plain: bool


def _tokens(head: bytes, count: int) -> tuple[list[int], int] | None:
    """The first ``count`` numbers after the magic (comments skipped) and the offset just past the last."""
    numbers, i = [], 2
    while len(numbers) < count:
        while i < len(head) and (head[i] in WHITESPACE or head[i] == ord("#")):
            if head[i] == ord("#"):
                end = head.find(b"\n", i)
                i = len(head) if end < 0 else end
            i += 1
        start = i
        while i < len(head) and head[i : i + 1].isdigit():
            i += 1
        if i == start or i >= len(head):
            return None  # not a number, or the header goes on past what was read: Pillow explains
        numbers.append(int(head[start:i]))
    return numbers, i


def pnm16_header(path: Path) -> PnmHeader | None:
    """The header of a PGM / PPM with a maximum value above 255; None for any other file."""
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    if head[:2] not in PNM_MAGIC or len(head) < 3 or head[2] not in WHITESPACE:
        return None
    parsed = _tokens(head, 3)
    if parsed is None:
        return None
    (width, height, maxval), end = parsed
    if not 255 < maxval < 65536 or head[end] not in WHITESPACE:
        return None
    samples, plain = PNM_MAGIC[head[:2]]
    return PnmHeader(width, height, samples, maxval, end + 1, plain)


def _plain(path: Path, header: PnmHeader) -> np.ndarray:
    count = header.width * header.height * header.samples
    with open(path, "rb") as handle:
        handle.seek(header.offset)
        tokens = handle.read(count * 16 + HEADER_BYTES).split(maxsplit=count)[:count]
    if len(tokens) < count:
        raise ValueError(f"it holds {len(tokens)} of its {count} samples (a truncated file?)")
    try:
        values = np.array(tokens).astype(np.int64)
    except ValueError:
        raise ValueError("its samples are not all numbers") from None
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError("a sample is outside 0-65535")
    shape = (header.height, header.width) + ((header.samples,) if header.samples > 1 else ())
    return values.astype(np.uint16).reshape(shape)


def read_pnm16(
    path: Path,
    header: PnmHeader,
    long_side: int | None = None,
    factor: int | None = None,
    labels: bool = False,
) -> Decoded:
    """Read a 16-bit PGM / PPM (see :func:`pnm16_header`) as uint16, reduced on reading like any file."""
    if header.width < 1 or header.height < 1:
        raise ValueError(f"it declares an empty image ({header.width}×{header.height} px)")
    declared = Declared(header.width, header.height, 1, header.samples, 2)
    shape = (header.height, header.width)
    k = factor if factor is not None else reduction_factor(shape, long_side)
    if header.plain:
        check_declared(declared, declared.nbytes * PLAIN_FACTOR)
        image = _plain(path, header)
        array = subsample(image, k) if labels else block_mean(image, k)
        return Decoded(array, k, shape, 1)
    out_bytes = int(np.prod(reduced_shape(shape, k))) * header.samples * 2
    check_declared(declared, out_bytes + 8 * BAND_BYTES)
    with open(path, "rb") as handle:
        rows = file_bands(
            handle, header.offset, (header.height, header.width, header.samples), np.dtype(">u2")
        )
        array = reduce_bands(rows, header.height, k, labels)
    return Decoded(array, k, shape, 1)


__all__ = ["PNM_MAGIC", "PnmHeader", "pnm16_header", "read_pnm16"]
