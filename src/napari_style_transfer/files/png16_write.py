"""16-bit colour PNGs written at their full depth: gray + alpha, RGB and RGBA uint16, every bit kept.

Pillow writes 16 bits only for a gray image (mode I;16); a uint16 RGB or RGBA array would be
8-bit. So these are written here: IHDR (bit depth 16, colour type 4, 2 or 6), the settings
text (a compressed iTXt chunk, as Pillow writes it: ``embedded.itxt_data``), then the rows a
band at a time, each row Sub-filtered in numpy and deflated as it comes (IDAT chunks), so
memory follows the band, not the image. ``png16.py`` reads them back at 16 bits.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

from .embedded import itxt_data

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Samples per pixel → PNG colour type (gray + alpha, RGB, RGBA).
COLOUR_TYPES = {2: 4, 3: 2, 4: 6}
#: Bytes of image rows filtered and deflated at a time.
BAND_BYTES = 16 * 2**20
#: zlib level (Pillow's default for PNG).
LEVEL = 6


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _sub_filtered(band: np.ndarray, bpp: int) -> bytes:
    """Stored bytes (rows, W × bpp) → scanlines, each led by filter type 1 (Sub: minus the pixel to the left)."""
    lines = np.empty((band.shape[0], 1 + band.shape[1]), np.uint8)
    lines[:, 0] = 1
    lines[:, 1 : 1 + bpp] = band[:, :bpp]
    np.subtract(band[:, bpp:], band[:, :-bpp], out=lines[:, 1 + bpp :])  # modulo 256, as PNG says
    return lines.tobytes()


def write_png16(handle: BinaryIO, array: np.ndarray, text: str | None = None) -> None:
    """Write (H, W, 2 | 3 | 4) uint16 ``array`` to ``handle`` as a 16-bit PNG; ``text`` in its iTXt chunk.

    ValueError for another shape or dtype, or an empty image.
    """
    if (
        array.ndim != 3
        or array.shape[-1] not in COLOUR_TYPES
        or array.dtype.kind != "u"
        or array.itemsize != 2
    ):
        raise ValueError(
            f"a 16-bit colour PNG needs (H, W, 2, 3 or 4) uint16, not {array.shape} {array.dtype}"
        )
    height, width, samples = array.shape
    if height < 1 or width < 1:
        raise ValueError(f"an empty image ({width}×{height} px) cannot be a PNG")
    header = struct.pack(">IIBBBBB", width, height, 16, COLOUR_TYPES[samples], 0, 0, 0)
    handle.write(PNG_SIGNATURE + _chunk(b"IHDR", header))
    if text is not None:
        handle.write(_chunk(b"iTXt", itxt_data(text)))
    bpp = 2 * samples
    rows = max(1, BAND_BYTES // (width * bpp))
    deflater = zlib.compressobj(LEVEL)
    for start in range(0, height, rows):
        band = np.ascontiguousarray(array[start : start + rows], ">u2").view(np.uint8)
        data = deflater.compress(_sub_filtered(band.reshape(band.shape[0], width * bpp), bpp))
        if data:
            handle.write(_chunk(b"IDAT", data))
    handle.write(_chunk(b"IDAT", deflater.flush()) + _chunk(b"IEND", b""))


__all__ = ["BAND_BYTES", "COLOUR_TYPES", "write_png16"]
