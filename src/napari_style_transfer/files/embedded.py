"""Text carried inside result images: a PNG text chunk, or the TIFF ImageDescription.

The CLI and the napari writer put a run's settings (JSON) there, so a result image says how it
was made and ``--config result.png`` can run it again. This module only moves the text; what
it means is ``settings/values.py``'s business.
"""

from __future__ import annotations

import os
import zlib

from .errors import ImageFileError, reason, shown
from .paths import check_input_file

#: The key of the PNG text chunk (iTXt) that holds the text.
TEXT_KEY = "napari-style-transfer"


def png_info(text: str) -> object:
    """Pillow's PngInfo holding ``text`` in a compressed iTXt chunk under :data:`TEXT_KEY`."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt(TEXT_KEY, text, zip=True)
    return info


def itxt_data(text: str) -> bytes:
    """The data of a compressed iTXt chunk holding ``text`` under :data:`TEXT_KEY`, as :func:`png_info`
    writes it (for the PNGs written here rather than by Pillow: 16-bit colour, ``png16_write.py``)."""
    return TEXT_KEY.encode("latin-1") + b"\0\x01\0\0\0" + zlib.compress(text.encode("utf-8"))


def read_description(path: str | os.PathLike) -> str | None:
    """The text a PNG (its :data:`TEXT_KEY` chunk) or a TIFF (its first ImageDescription) carries.

    None when the file has none; ImageFileError when it cannot be read.
    """
    from .read import is_tiff

    path = check_input_file(path)
    try:
        if is_tiff(path):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                return tif.pages.first.description or None
        from PIL import Image

        with Image.open(path) as image:
            text = getattr(image, "text", {}).get(TEXT_KEY)  # .text also reads chunks after the pixels
        return None if text is None else str(text)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "unreadable"
        raise ImageFileError(f"cannot read {shown(path)}: {reason(exc)}") from exc


__all__ = ["TEXT_KEY", "itxt_data", "png_info", "read_description"]
