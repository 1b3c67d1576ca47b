"""Reading TIFF files with tifffile, turned into the engine's layouts as a viewer shows them.

Samples go last (planar files), singleton leading axes go (a (1, H, W) page), palettes are
looked up, min-is-white is inverted, CMYK becomes RGB, padding samples are dropped and an
alpha sample is kept (gray + alpha becomes RGBA); the orientation tag is applied. What
tifffile cannot decode without optional codecs (LZW, JPEG, CCITT fax…) or colour models
it leaves raw (YCbCr, CIELAB) is read by Pillow instead (``pil_read.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arrays import block_mean
from .pil_read import Decoded, read_pil
from .reduce import orient, oriented_shape, reduction_factor, subsample

MINISWHITE, MINISBLACK, RGB, PALETTE, SEPARATED = 0, 1, 2, 3, 5
#: Photometric interpretations read here; others go to Pillow.
HANDLED = (MINISWHITE, MINISBLACK, RGB, PALETTE, SEPARATED)
ALPHA_SAMPLES = (1, 2)  # TIFF ExtraSamples: associated / unassociated alpha


class UsePillow(Exception):
    """tifffile leaves this file's colour model raw: Pillow reads it."""


def samples_last(array: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Move a planar file's sample axis ('S') last."""
    if len(axes) == array.ndim and "S" in axes and not axes.endswith("S"):
        i = axes.index("S")
        array = np.moveaxis(array, i, -1)
        axes = axes[:i] + axes[i + 1 :] + "S"
    return array, axes


def squeeze_leading(array: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Drop size-1 axes before the image's rows (a (1, H, W) page or an ImageJ TZCYX with one of each)."""
    while array.ndim > 2 and array.shape[0] == 1 and (len(axes) != array.ndim or axes[0] not in "YXS"):
        array = array[0]
        axes = axes[1:]
    return array, axes


def _palette(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    rgb = np.moveaxis(colormap, 0, -1)[indices]
    if colormap.max() <= 255:
        return rgb.astype(np.uint8)
    for step in (256, 257):  # 8-bit palettes are stored scaled by 256 (Pillow, libtiff) or 257
        if not np.any(colormap % step):
            return (rgb // step).astype(np.uint8)
    return rgb


def _invert(values: np.ndarray, bits: int) -> np.ndarray:
    if values.dtype == np.bool_:
        return ~values
    if values.dtype.kind == "u":
        top = min((1 << bits) - 1, int(np.iinfo(values.dtype).max))
        return (top - values).astype(values.dtype)
    if values.dtype.kind == "i":
        return ~values
    return values.max() + values.min() - values  # floats: mirrored within their range


def _cmyk(values: np.ndarray, bits: int) -> np.ndarray:
    top = min((1 << bits) - 1, int(np.iinfo(values.dtype).max))
    data = values.astype(np.int64)
    white = top - data[..., 3:4]
    rgb = ((top - data[..., :3]) * white + top // 2) // top
    return rgb.astype(values.dtype)


def _matching_alpha(alpha: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An alpha sample in the colour's dtype (an 8-bit alpha beside a 16-bit palette colour is scaled)."""
    if alpha.dtype == dtype:
        return alpha
    if alpha.dtype == np.uint8 and dtype == np.uint16:
        return alpha.astype(np.uint16) * 257
    return alpha.astype(dtype)


def fix_photometric(array: np.ndarray, page: PageInfo, labels: bool = False) -> np.ndarray:
    """An array read by tifffile (samples last) in the engine's layouts; see the module doc.

    1-bit images become 8-bit gray (0 and 255); ``labels`` (a mask) stay bool, and a palette
    mask gives its indices.
    """
    photometric = page.photometric
    if photometric not in HANDLED or (photometric == SEPARATED and page.inkset != 1):
        raise UsePillow
    spp = page.samplesperpixel
    extras = page.extrasamples
    has_samples = spp > 1 and array.shape[-1] == spp
    n_colour = spp - len(extras) if has_samples else 1
    colour = array[..., :n_colour] if has_samples else array[..., None]
    alpha_at = next((n_colour + i for i, e in enumerate(extras) if e in ALPHA_SAMPLES), None)
    alpha = array[..., alpha_at] if has_samples and alpha_at is not None else None
    if extras and alpha is None and n_colour == 1:
        return array  # gray + unspecified samples (e.g. 2 channels): left for the engine to explain
    bits = page.bitspersample
    if photometric == PALETTE and page.colormap is not None and not labels:
        colour = _palette(colour[..., 0], page.colormap)
    elif photometric == MINISWHITE:
        colour = _invert(colour, bits)
    elif photometric == SEPARATED:
        if colour.shape[-1] != 4 or colour.dtype.kind != "u":
            raise UsePillow
        colour = _cmyk(colour, bits)
    if colour.dtype == np.bool_ and not labels:  # 1-bit: 8-bit gray, as from any other format
        colour = colour.astype(np.uint8) * np.uint8(255)
    if alpha is not None and not labels:
        if colour.shape[-1] == 1:
            colour = np.repeat(colour, 3, axis=-1)
        return np.concatenate([colour, _matching_alpha(alpha, colour.dtype)[..., None]], axis=-1)
    return colour[..., 0] if colour.shape[-1] == 1 else colour


@dataclass(frozen=True)
class PageInfo:
    """What the first page's tags say about its colours (read while the file is open)."""

    photometric: int
    samplesperpixel: int
    extrasamples: tuple[int, ...]
    bitspersample: int
    colormap: np.ndarray | None
    inkset: int
    orientation: int


def _page_info(page) -> PageInfo:
    tags = page.tags
    orientation, inkset = (tags.get(code) for code in (274, 332))
    try:
        turn = int(orientation.value) if orientation is not None else 1
    except (TypeError, ValueError):
        turn = 1
    return PageInfo(
        int(page.photometric),
        int(page.samplesperpixel),
        tuple(int(e) for e in (page.extrasamples or ())),
        int(page.bitspersample),
        None if page.colormap is None else np.asarray(page.colormap),
        int(inkset.value) if inkset is not None else 1,
        turn if 1 <= turn <= 8 else 1,
    )


def _read(path: Path) -> tuple[np.ndarray, str, PageInfo]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        array = np.asarray(series.asarray())
        axes = getattr(series, "axes", "") or ""
        info = _page_info(series.keyframe if hasattr(series, "keyframe") else tif.pages[0])
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array, axes, info


def read_tiff(
    path: Path, long_side: int | None = None, factor: int | None = None, labels: bool = False
) -> Decoded:
    """Read a TIFF's first series as one image (a stack of pages stays a stack for the engine to refuse)."""
    try:
        array, axes, page = _read(path)
        array, axes = samples_last(array, axes)
        if (
            len(axes) != array.ndim
            and array.ndim == 3
            and array.shape[0] in (3, 4)
            and array.shape[-1] not in (1, 3, 4)
        ):
            array = np.moveaxis(array, 0, -1)  # planar colour without axes metadata
        array, axes = squeeze_leading(array, axes)
        array = fix_photometric(array, page, labels)
    except UsePillow:
        return read_pil(path, long_side, factor, labels)
    except Exception as exc:  # noqa: BLE001 - a codec tifffile lacks: Pillow (libtiff) may have it
        try:
            return read_pil(path, long_side, factor, labels)
        except Exception:  # noqa: BLE001 - report tifffile's reason, the more specific one
            raise exc from None
    if array.ndim > 3 or (array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4)):
        return Decoded(array, 1, tuple(array.shape[-2:]), int(np.prod(array.shape[:-2])))  # a stack
    orientation = page.orientation
    shape = oriented_shape(array.shape[:2], orientation)
    k = factor if factor is not None else reduction_factor(shape, long_side)
    array = subsample(array, k) if labels else block_mean(array, k)
    return Decoded(orient(array, orientation), k, shape, 1)


def read_tiff_stack(path: Path, labels: bool = False) -> tuple[np.ndarray, bool | None]:
    """A TIFF stack as stored (colour samples last, photometric applied); whether its last axis is colour."""
    try:
        array, axes, page = _read(path)
        array, axes = samples_last(array, axes)
        array = fix_photometric(array, page, labels)
    except UsePillow:
        decoded = read_pil(path, labels=labels)
        return decoded.array, decoded.array.ndim >= 3 and decoded.array.shape[-1] in (3, 4)
    except Exception as exc:  # noqa: BLE001
        try:
            decoded = read_pil(path, labels=labels)
        except Exception:  # noqa: BLE001
            raise exc from None
        return decoded.array, decoded.array.ndim >= 3 and decoded.array.shape[-1] in (3, 4)
    spp, palette = page.samplesperpixel, page.photometric == PALETTE and not labels
    if spp == 1 and not palette and len(axes) != array.ndim:
        return array, None  # nothing says whether the last axis is colour: let the engine guess
    return array, (spp > 1 or palette) and array.shape[-1] in (3, 4)


__all__ = ["fix_photometric", "read_tiff", "read_tiff_stack", "samples_last", "squeeze_leading"]
