"""16-bit colour PNGs read at their full depth: uint16, the values exactly as stored.

Pillow opens a 16-bit RGB, RGBA or gray + alpha PNG as 8-bit and cannot read one
otherwise, so these are decoded here: zlib, then the five PNG filters undone in numpy
(None, Sub and Up a row at a time; Average and Paeth, which depend on the pixel to the
left, along the anti-diagonals of a band of rows, all rows of the band at once). Rows come
a band at a time and are reduced as they come (``bands.py``), so memory follows the
output. Gray + alpha becomes RGBA and an RGB file's tRNS colour becomes an alpha channel,
as for any other file; the EXIF orientation (eXIf chunk) is applied; interlaced (Adam7)
files are read pass by pass. 16-bit gray PNGs (Pillow reads them as uint16) and animated
PNGs are left to Pillow.
"""

from __future__ import annotations

import itertools
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arrays import block_mean, reduced_shape
from .bands import mapped, reduce_bands
from .limits import Declared, check_declared
from .pil_read import Decoded
from .reduce import orient, oriented_shape, reduction_factor, subsample

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: 16-bit colour types Pillow reads at 8 bits → samples per pixel (RGB, gray + alpha, RGBA).
DEEP_COLOUR_TYPES = {2: 3, 4: 2, 6: 4}
#: Adam7 passes: (first column, first row, column step, row step).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
#: Bytes of the skewed work arrays that undo Average and Paeth filters a band of rows at a time.
SKEW_BYTES = 48 * 2**20


@dataclass(frozen=True)
class PngHeader:
    """What a 16-bit colour PNG says before its pixels: size, samples, tRNS and eXIf before IDAT."""

    width: int
    height: int
    samples: int
    interlaced: bool
    idat_offset: int
    transparent: bytes | None = None
    exif: bytes | None = None


def _chunk_heads(handle, size: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, data offset, length) of each chunk, reading only the chunk headers."""
    position = len(PNG_SIGNATURE)
    while position + 8 <= size:
        handle.seek(position)
        length, kind = struct.unpack(">I4s", handle.read(8))
        yield kind, position + 8, length
        position += 12 + length


def png16_header(path: Path) -> PngHeader | None:
    """The header of a 16-bit colour, non-animated PNG; None for any other file (Pillow reads those)."""
    with open(path, "rb") as handle:
        head = handle.read(33)
        if len(head) < 33 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
            return None
        width, height, depth, colour, _method, _filter, interlace = struct.unpack(">IIBBBBB", head[16:29])
        if depth != 16 or colour not in DEEP_COLOUR_TYPES or _method or _filter or interlace > 1:
            return None  # (unknown methods: Pillow explains)
        found: dict[bytes, bytes] = {}
        for kind, offset, length in _chunk_heads(handle, os.fstat(handle.fileno()).st_size):
            if kind == b"acTL":
                return None  # an animation: Pillow reads its frames (at 8 bits)
            if kind == b"IDAT":
                return PngHeader(
                    width, height, DEEP_COLOUR_TYPES[colour], interlace == 1, offset - 8, *_extras(found)
                )
            if kind in (b"tRNS", b"eXIf") and length <= 2**20:
                handle.seek(offset)
                found[kind] = handle.read(length)
    return PngHeader(width, height, DEEP_COLOUR_TYPES[colour], interlace == 1, -1, *_extras(found))


def _extras(found: dict[bytes, bytes]) -> tuple[bytes | None, bytes | None]:
    return found.get(b"tRNS"), found.get(b"eXIf")


def _chunks(handle, start: int) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk from ``start``, CRC checked; a chunk cut short raises."""
    size = os.fstat(handle.fileno()).st_size
    handle.seek(start)
    while True:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError("the file ends before its IEND chunk (a truncated file?)")
        length, kind = struct.unpack(">I4s", head)
        if handle.tell() + length + 4 > size:
            raise ValueError(f"the file ends inside its {kind.decode('latin-1')} chunk (a truncated file?)")
        data, crc = handle.read(length), handle.read(4)
        if zlib.crc32(kind + data) != int.from_bytes(crc, "big"):
            raise ValueError(f"its {kind.decode('latin-1')} chunk is corrupted (CRC mismatch)")
        yield kind, data
        if kind == b"IEND":
            return


def _idat(chunks: Iterator[tuple[bytes, bytes]]) -> Iterator[bytes]:
    """The compressed image data: the consecutive IDAT chunks."""
    for kind, data in chunks:
        if kind != b"IDAT":
            return
        yield data


def _inflated(compressed: Iterator[bytes], size: int, block: int) -> Iterator[bytes]:
    """The zlib stream's bytes, ``block`` at a time (the last one shorter), never more than ``size`` in all.

    Output is asked for a block at a time, so a stream that inflates to far more than the
    image needs (a zlib bomb) is never held.
    """
    inflater = zlib.decompressobj()
    buffer = bytearray()
    for data in itertools.chain(compressed, [b""]):
        while size > 0:
            limit = min(block, size)
            out = inflater.decompress(data, limit - len(buffer))
            buffer += out
            data = inflater.unconsumed_tail
            if len(buffer) >= limit:
                yield bytes(buffer)
                buffer.clear()
                size -= limit
            elif not data and not out:
                break
        if size <= 0 or inflater.eof:
            break
    if buffer and size > 0:
        yield bytes(buffer)


def _paeth_step(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    d1, d2 = b - c, a - c
    pa, pb, pc = np.abs(d1), np.abs(d2), np.abs(d1 + d2)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _skewed(array: np.ndarray, width: int, samples: int) -> np.ndarray:
    """A view of (R + 1, W + R + 2, bpp) ``array`` in which row j, pixel x is column j + x + 1."""
    s = array.strides
    return np.lib.stride_tricks.as_strided(
        array[:, 1:], shape=(array.shape[0], width, samples), strides=(s[0] + s[1], s[1], s[2])
    )


def _unfilter_diagonals(types: np.ndarray, data: np.ndarray, bpp: int, prior: np.ndarray) -> np.ndarray:
    """Undo any filters on a band, one anti-diagonal (pixel x of row j at step j + x) at a time."""
    rows, width = data.shape[0], data.shape[1] // bpp
    recon = np.zeros((rows + 1, width + rows + 2, bpp), np.int16)
    filtered = np.zeros((rows + 1, width + rows + 2, bpp), np.uint8)
    _skewed(recon, width, bpp)[0] = prior.reshape(width, bpp)
    _skewed(filtered, width, bpp)[1:] = data.reshape(rows, width, bpp)
    masks = [np.concatenate([[0], types == kind]).astype(np.int16)[:, None] for kind in (1, 2, 3, 4)]
    average, paeth = bool((types == 3).any()), bool((types == 4).any())
    for t in range(2, width + rows + 1):
        lo, hi = max(1, t - width), min(rows, t - 1) + 1
        a, b = recon[lo:hi, t - 1], recon[lo - 1 : hi - 1, t - 1]
        value = masks[0][lo:hi] * a + masks[1][lo:hi] * b
        if average:
            value += masks[2][lo:hi] * ((a + b) >> 1)
        if paeth:
            value += masks[3][lo:hi] * _paeth_step(a, b, recon[lo - 1 : hi - 1, t - 2])
        value += filtered[lo:hi, t]
        recon[lo:hi, t] = value & 255
    return _skewed(recon, width, bpp)[1:].reshape(rows, width * bpp).astype(np.uint8)


def unfilter(lines: np.ndarray, bpp: int, prior: np.ndarray | None = None) -> np.ndarray:
    """PNG scanlines (rows, 1 + W × bpp), each led by its filter type → the stored bytes (rows, W × bpp).

    ``prior``: the row above the first (stored bytes; zeros at the top of an image or a pass).
    """
    types, data = lines[:, 0], lines[:, 1:]
    if types.size and types.max() > 4:
        raise ValueError(f"a row has the unknown PNG filter type {int(types.max())} (a corrupted file?)")
    prior = np.zeros(data.shape[1], np.uint8) if prior is None else prior
    if ((types == 3) | (types == 4)).any():
        return _unfilter_diagonals(types, data, bpp, prior)
    out = np.empty_like(data)
    for j, kind in enumerate(types):
        row = data[j]
        if kind == 1:
            row = np.cumsum(row.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:
            row = row + prior
        out[j] = row
        prior = out[j]
    return out


def _band_rows(width: int, bpp: int) -> int:
    return int(np.clip(SKEW_BYTES // max((width + 1) * bpp * 3, 1), 16, 1024))


def _scanline_bands(compressed: Iterator[bytes], header: PngHeader) -> Iterator[np.ndarray]:
    """A non-interlaced file's stored bytes, a band of rows at a time: (rows, W × bpp) uint8."""
    bpp = header.samples * 2
    line = 1 + header.width * bpp
    rows = _band_rows(header.width, bpp)
    prior = None
    for block in _inflated(compressed, line * header.height, line * rows):
        lines = np.frombuffer(block, np.uint8)[: len(block) // line * line].reshape(-1, line)
        band = unfilter(lines, bpp, prior)
        if len(band):
            prior = band[-1]
            yield band


def _interlaced(compressed: Iterator[bytes], header: PngHeader, pixels) -> np.ndarray:
    """An Adam7 file's image, pass by pass (whole: interlaced rows cannot be reduced as they come)."""
    bpp, width, height = header.samples * 2, header.width, header.height
    passes = [(x0, y0, dx, dy, -(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in ADAM7]
    passes = [p for p in passes if p[4] > 0 and p[5] > 0]
    total = sum(rows * (1 + cols * bpp) for *_, cols, rows in passes)
    raw = b"".join(_inflated(compressed, total, total))
    if len(raw) < total:
        raise ValueError("its pixel data ends early (a truncated file?)")
    image: np.ndarray | None = None
    start = 0
    for x0, y0, dx, dy, cols, rows in passes:
        size = rows * (1 + cols * bpp)
        lines = np.frombuffer(raw, np.uint8, size, start).reshape(rows, 1 + cols * bpp)
        values = pixels(unfilter(lines, bpp))
        if image is None:
            image = np.empty((height, width) + values.shape[2:], values.dtype)
        image[y0::dy, x0::dx] = values
        start += size
    assert image is not None
    return image


def _pixels(header: PngHeader, labels: bool):
    """Stored bytes (rows, W × bpp) → uint16 in the engine's layouts (gray + alpha → RGBA, tRNS → alpha)."""
    key = None
    if header.samples == 3 and header.transparent is not None and len(header.transparent) == 6:
        key = np.frombuffer(header.transparent, ">u2").astype(np.uint16)

    def convert(band: np.ndarray) -> np.ndarray:
        values = band.view(">u2").reshape(len(band), -1, header.samples).astype(np.uint16)
        if header.samples == 2:
            gray = values[..., :1]
            values = np.concatenate([gray, gray, gray, values[..., 1:]], axis=-1)
        if key is not None:
            alpha = np.where((values == key).all(axis=-1), 0, 65535).astype(np.uint16)
            values = np.concatenate([values, alpha[..., None]], axis=-1)
        return values

    return convert


def _orientation(header: PngHeader) -> int:
    if not header.exif:
        return 1
    try:
        from PIL import Image

        exif = Image.Exif()
        exif.load(header.exif)
        value = int(exif.get(0x0112, 1))
    except Exception:  # noqa: BLE001 - broken EXIF: shown as stored
        return 1
    return value if 1 <= value <= 8 else 1


def read_png16(
    path: Path,
    header: PngHeader,
    long_side: int | None = None,
    factor: int | None = None,
    labels: bool = False,
) -> Decoded:
    """Read a 16-bit colour PNG (see :func:`png16_header`) as uint16, reduced on reading like any file."""
    if header.idat_offset < 0:
        raise ValueError("it has no image data (no IDAT chunk)")
    if header.width < 1 or header.height < 1:
        raise ValueError(f"it declares an empty image ({header.width}×{header.height} px)")
    channels = 4 if header.samples in (2, 4) or header.transparent is not None else 3
    declared = Declared(header.width, header.height, 1, channels, 2)
    orientation = _orientation(header)
    shape = oriented_shape((header.height, header.width), orientation)
    k = factor if factor is not None else reduction_factor(shape, long_side)
    work = header.width * _band_rows(header.width, header.samples * 2) * channels * 16 + SKEW_BYTES
    out_bytes = int(np.prod(reduced_shape((header.height, header.width), k))) * channels * 2
    check_declared(declared, 2 * declared.nbytes if header.interlaced else out_bytes + work)
    with open(path, "rb") as handle:
        compressed = _idat(_chunks(handle, header.idat_offset))
        pixels = _pixels(header, labels)
        if header.interlaced:
            image = _interlaced(compressed, header, pixels)
            array = subsample(image, k) if labels else block_mean(image, k)
        else:
            bands = mapped(_scanline_bands(compressed, header), pixels)
            array = reduce_bands(bands, header.height, k, labels)
    return Decoded(orient(array, orientation), k, shape, 1)


__all__ = [
    "ADAM7",
    "DEEP_COLOUR_TYPES",
    "PNG_SIGNATURE",
    "PngHeader",
    "png16_header",
    "read_png16",
    "unfilter",
]
