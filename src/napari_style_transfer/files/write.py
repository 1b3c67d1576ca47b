"""Writing results: PNG, JPEG and TIFF (any dtype), every file atomically (see ``atomic.py``).

A stack written to ``.mp4``, ``.gif`` or ``.webp`` becomes a movie (``movie.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_target
from .embedded import png_info
from .errors import ImageFileError, as_path, reason, shown
from .movie import MOVIE_WRITE_SUFFIXES, write_movie
from .paths import TIFF_SUFFIXES, WRITABLE_SUFFIXES, write_target


def to_uint8(array: np.ndarray) -> np.ndarray:
    """8-bit values for PNG and JPEG: uint16 scaled by 1/257, other dtypes stretched to their range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    data = array.astype(np.float64)
    finite = data[np.isfinite(data)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    scaled = (data / 2 - low / 2) / max(
        high / 2 - low / 2, 1e-300
    )  # halves: no overflow near the float64 max
    return np.clip(np.nan_to_num(scaled, nan=0.0) * 255, 0, 255).round().astype(np.uint8)


def _write_pil(path: Path, array: np.ndarray, suffix: str, description: str | None = None) -> None:
    """PNG (8-bit, or 16-bit gray) or JPEG (8-bit, no alpha) through a file we open and close ourselves.

    ``description`` goes into a PNG text chunk (JPEG leaves it out).
    """
    from PIL import Image

    if suffix == ".png" and array.dtype == np.uint16 and array.ndim == 2:
        data = array
    else:
        data = to_uint8(array)
        if data.ndim == 3 and data.shape[-1] == 1:
            data = data[..., 0]
        if suffix in (".jpg", ".jpeg") and data.ndim == 3 and data.shape[-1] == 4:
            data = data[..., :3]  # JPEG has no alpha
    image = Image.fromarray(np.ascontiguousarray(data))
    extra = {"pnginfo": png_info(description)} if suffix == ".png" and description is not None else {}
    with open(path, "wb") as handle:  # a full disk raises here, not later in a writer's finaliser
        image.save(handle, format="PNG" if suffix == ".png" else "JPEG", **extra)


def _target(path: str | os.PathLike, suffixes: tuple[str, ...], what: str) -> Path:
    path = as_path(path)
    if path.suffix.lower() not in suffixes:
        raise ImageFileError(f"cannot write {shown(path)}: {what}")
    target = write_target(path)
    if not target.parent.exists():
        raise ImageFileError(f"cannot write {shown(path)}: folder {shown(target.parent)} does not exist")
    return target


def write_image(path: str | os.PathLike, array: np.ndarray, description: str | None = None) -> Path:
    """Write ``array`` atomically; TIFF keeps any dtype, PNG keeps uint8 and 16-bit grayscale, JPEG is 8-bit.

    ``description`` (e.g. the run's settings as JSON) is carried by a PNG text chunk or the
    TIFF ImageDescription (see ``embedded.py``); JPEG leaves it out.
    """
    target = _target(path, WRITABLE_SUFFIXES, f"use one of {', '.join(WRITABLE_SUFFIXES)}")
    suffix = target.suffix.lower()
    try:
        with atomic_target(target) as temp:
            if suffix in TIFF_SUFFIXES:
                import tifffile

                photometric = "rgb" if array.ndim == 3 and array.shape[-1] in (3, 4) else "minisblack"
                tifffile.imwrite(temp, array, photometric=photometric, description=description)
            else:
                _write_pil(temp, array, suffix, description)
    except ImageFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a full disk, a writer's refusal…: the old file is kept
        raise ImageFileError(f"cannot write {shown(path)}: {reason(exc)}") from exc
    return as_path(path)


def write_stack(
    path: str | os.PathLike, array: np.ndarray, rgb: bool, description: str | None = None
) -> Path:
    """Write an nD stack atomically as a TIFF (any dtype); ``rgb``: the last axis is colour.

    ``description``: text for the TIFF ImageDescription (e.g. the run's settings as JSON).
    A (T, H, W[, 3]) stack to ``.mp4``, ``.gif`` or ``.webp`` is a movie (8-bit, at the default
    frame rate: ``movie.write_movie`` takes another).
    """
    if as_path(path).suffix.lower() in MOVIE_WRITE_SUFFIXES:
        return write_movie(path, to_uint8(np.asarray(array)), description=description)
    target = _target(path, TIFF_SUFFIXES, "a stack needs a .tif or .tiff file")
    try:
        import tifffile

        with atomic_target(target) as temp:
            tifffile.imwrite(temp, array, photometric="rgb" if rgb else "minisblack", description=description)
    except Exception as exc:  # noqa: BLE001
        raise ImageFileError(f"cannot write {shown(path)}: {reason(exc)}") from exc
    return as_path(path)


__all__ = ["to_uint8", "write_image", "write_stack"]
