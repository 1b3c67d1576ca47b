"""Writing results: PNG, JPEG and TIFF (any dtype), every file atomically (see ``atomic.py``).

TIFF keeps any dtype, PNG keeps uint8 and uint16 (gray, gray + alpha, RGB, RGBA: 16 bits),
JPEG and movies are 8-bit (:func:`to_uint8`).

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
from .png16_write import COLOUR_TYPES, write_png16

#: A uint16 image that 1/257 would leave fewer 8-bit levels than this is stretched to its own range.
FEW_LEVELS = 64
JPEG_SUFFIXES = (".jpg", ".jpeg")


def _stretched(data: np.ndarray, low: float, high: float) -> np.ndarray:
    """``data`` (float64) from ``low`` → 0 to ``high`` → 255; NaN → 0."""
    span = max(high / 2 - low / 2, 1e-300)  # halves: no overflow near the float64 max
    scaled = (data / 2 - low / 2) / span
    return np.clip(np.nan_to_num(scaled, nan=0.0) * 255, 0, 255).round().astype(np.uint8)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """8-bit values for JPEG, movies and 8-bit PNG; uint8 as it is, bool as 0 / 255.

    uint16 is scaled by 1/257, unless that would leave it fewer than :data:`FEW_LEVELS` grey
    levels (a micrograph's 100–3000 would be 0–12, nearly black): then it is stretched from
    its lowest to its highest value, like other dtypes (floats within 0–1 are kept as 0–255).
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype.kind == "u" and array.itemsize == 2:
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if not 0 < high - low < FEW_LEVELS * 257:
            return (array.astype(np.float64) / 257.0).round().astype(np.uint8)
        return _stretched(array.astype(np.float64), low, high)
    data = array.astype(np.float64)
    finite = data[np.isfinite(data)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    return _stretched(data, low, high)


def _deep_png(array: np.ndarray) -> bool:
    """Whether a PNG keeps every bit of ``array``: uint16 (any byte order), gray or with 2–4 samples."""
    deep = array.dtype.kind == "u" and array.itemsize == 2
    return deep and (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in COLOUR_TYPES))


def _alpha8(alpha: np.ndarray) -> np.ndarray:
    """An alpha channel in 8 bits, read as the engine reads one (``alpha_weights``): integers from 0 to
    their dtype's maximum, floats from 0 to 1 (above: opaque), never stretched with the colours."""
    if alpha.dtype == np.bool_:
        return alpha.astype(np.uint8) * 255
    if alpha.dtype.kind in "iu":
        weights = alpha.astype(np.float64) / float(np.iinfo(alpha.dtype).max)
    else:
        weights = np.nan_to_num(alpha.astype(np.float64), nan=0.0)
    return (np.clip(weights, 0.0, 1.0) * 255).round().astype(np.uint8)


def _eight_bit(array: np.ndarray, suffix: str) -> np.ndarray:
    """``array`` as 8-bit PNG or JPEG pixels; the colours are scaled without the alpha (a JPEG has none)."""
    if array.ndim == 3 and array.shape[-1] in (2, 4):
        if suffix in JPEG_SUFFIXES:
            array = array[..., :-1]  # JPEG has no alpha
        elif array.dtype != np.uint8:
            return np.concatenate([to_uint8(array[..., :-1]), _alpha8(array[..., -1:])], axis=-1)
    data = to_uint8(array)
    return data[..., 0] if data.ndim == 3 and data.shape[-1] == 1 else data


def _write_pil(path: Path, array: np.ndarray, suffix: str, description: str | None = None) -> None:
    """PNG or JPEG through a file we open and close ourselves; ``description`` in a PNG text chunk.

    A PNG keeps uint16 at 16 bits (gray by Pillow, colour by ``png16_write.py``); anything else
    is 8-bit (:func:`to_uint8`). JPEG is 8-bit, without alpha, and leaves ``description`` out.
    """
    from PIL import Image

    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    deep = suffix == ".png" and _deep_png(array)
    if deep and array.ndim == 3:
        with open(path, "wb") as handle:  # a full disk raises here, not later
            write_png16(handle, array, description)
        return
    data = array.astype(np.uint16, copy=False) if deep else _eight_bit(array, suffix)  # native order: I;16
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
    """Write ``array`` atomically; TIFF keeps any dtype, PNG keeps uint8 and uint16 (16-bit, colour too), JPEG is 8-bit.

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
