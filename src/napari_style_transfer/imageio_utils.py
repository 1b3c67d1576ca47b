"""Reading and writing image files for the CLI and benchmarks (PNG, JPEG, TIFF incl. 16-bit)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff")
WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class ImageFileError(OSError):
    """An image file could not be read or written; the message says which and why."""


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (readers add multi-line hints)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG, JPEG or TIFF file as a numpy array (dtype preserved, e.g. uint16 TIFF)."""
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"file not found: {path}")
    if path.is_dir():
        raise ImageFileError(f"{path} is a directory, not an image file")
    axes = ""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                array = series.asarray()
                axes = getattr(series, "axes", "") or ""
        else:
            import imageio.v3 as iio

            array = iio.imread(path)
    except Exception as exc:  # noqa: BLE001 - every reader failure means "unreadable"
        raise ImageFileError(f"cannot read image {path}: {_reason(exc)}") from exc
    array = np.asarray(array)
    planar = axes.startswith("S") if len(axes) == array.ndim else array.shape[0] in (3, 4)
    if array.ndim == 3 and planar and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF (C, H, W); a stack of pages (Q/I/Z…) stays
    return array


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    data = array.astype(np.float64)
    low, high = (0.0, 1.0) if data.min() >= 0 and data.max() <= 1 else (data.min(), data.max())
    return np.clip((data - low) / max(high - low, 1e-12) * 255, 0, 255).round().astype(np.uint8)


def check_writable(path: str | Path) -> Path:
    """Raise ImageFileError unless an image can be written to ``path`` (checked before a long run).

    The folder must exist and take a new file (tried for real, so a read-only file system
    is caught too); ``path`` must not be a directory, nor an existing file we may not replace.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise ImageFileError(f"cannot write {path}: use one of {', '.join(WRITABLE_SUFFIXES)}")
    if path.is_dir():
        raise ImageFileError(f"cannot write {path}: it is a directory")
    folder = path.parent
    if not folder.exists():
        raise ImageFileError(f"cannot write {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise ImageFileError(f"cannot write {path}: {folder} is a file, not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise ImageFileError(f"cannot write {path}: the file exists and is read-only")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ImageFileError(f"cannot write {path}: folder {folder} is not writable ({_reason(exc)})") from exc
    return path


def write_image(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array``; TIFF keeps any dtype, PNG keeps uint8 and 16-bit grayscale, JPEG is 8-bit."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise ImageFileError(f"cannot write {path}: use one of {', '.join(WRITABLE_SUFFIXES)}")
    if not path.parent.exists():
        raise ImageFileError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            photometric = "rgb" if array.ndim == 3 and array.shape[-1] in (3, 4) else "minisblack"
            tifffile.imwrite(path, array, photometric=photometric)
            return path
        import imageio.v3 as iio

        if suffix == ".png" and array.dtype == np.uint16 and array.ndim == 2:
            iio.imwrite(path, array)
        else:
            data = _to_uint8(array)
            if suffix in (".jpg", ".jpeg") and data.ndim == 3 and data.shape[-1] == 4:
                data = data[..., :3]  # JPEG has no alpha
            iio.imwrite(path, data)
    except Exception as exc:  # noqa: BLE001
        raise ImageFileError(f"cannot write {path}: {_reason(exc)}") from exc
    return path


def read_stack(path: str | Path) -> tuple[np.ndarray, bool | None]:
    """Read an nD TIFF stack as it is stored (no planar-colour guess); also whether its last axis is colour.

    The colour flag comes from the TIFF's axes ('S' last: samples per pixel) when tifffile
    knows them, else None (let the caller guess).
    """
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"file not found: {path}")
    if path.suffix.lower() not in TIFF_SUFFIXES:
        array = read_image(path)
        return array, (array.ndim == 3 and array.shape[-1] in (3, 4))
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            array = np.asarray(series.asarray())
            axes = getattr(series, "axes", "") or ""
    except Exception as exc:  # noqa: BLE001
        raise ImageFileError(f"cannot read image {path}: {_reason(exc)}") from exc
    rgb = None
    if len(axes) == array.ndim:
        rgb = axes.endswith("S") and array.shape[-1] in (3, 4)
    return array, rgb


def write_stack(path: str | Path, array: np.ndarray, rgb: bool) -> Path:
    """Write an nD stack as a TIFF (any dtype); ``rgb``: the last axis is colour."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ImageFileError(f"cannot write {path}: a stack needs a .tif or .tiff file")
    if not path.parent.exists():
        raise ImageFileError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        import tifffile

        tifffile.imwrite(path, array, photometric="rgb" if rgb else "minisblack")
    except Exception as exc:  # noqa: BLE001
        raise ImageFileError(f"cannot write {path}: {_reason(exc)}") from exc
    return path
