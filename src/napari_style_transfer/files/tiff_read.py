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

from ..arrays import STRIP_BYTES, block_mean, reduced_shape
from .bands import BAND_BYTES, mapped, reduce_bands, streamable, tiff_page_bands
from .limits import Declared, Refused, check_declared
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


def tiff_declared(series, axes: str, shape: tuple[int, ...]) -> Declared:
    """What a TIFF series decodes to, from its tags: rows, columns, planes (all other axes), samples."""
    key = series.keyframe
    if len(axes) == len(shape) and "Y" in axes and "X" in axes:
        height, width = shape[axes.index("Y")], shape[axes.index("X")]
    else:
        height, width = int(key.imagelength), int(key.imagewidth)
    samples = shape[axes.index("S")] if "S" in axes and len(axes) == len(shape) else int(key.samplesperpixel)
    total = int(np.prod(shape, dtype=np.int64))
    planes = max(1, total // max(1, height * width * samples))
    return Declared(width, height, planes, samples, np.dtype(series.dtype).itemsize, "planes")


def _metadata(tif) -> str:
    return "OME" if tif.is_ome else "ImageJ" if tif.is_imagej else "TIFF"


def channels_first(
    axes: str, shape: tuple[int, ...], metadata: str = "TIFF", refuse: bool = True
) -> int | None:
    """The index of a channel axis ('C', as OME and ImageJ files name it) to move last, or None.

    3 or 4 channels give their index (they become colour). A single 2D image whose 2 or more
    than 4 channels come first is refused (:class:`Refused` says what to do) when ``refuse``;
    a stack's other channel counts stay planes.
    """
    if "C" not in axes or len(axes) != len(shape) or ("S" in axes and shape[axes.index("S")] > 1):
        return None
    index = axes.index("C")
    channels = shape[index]
    if channels == 1:
        return None
    if channels in (3, 4):
        return index
    others = [n for a, n in zip(axes, shape) if a not in "CYXS"]
    if not refuse or any(n > 1 for n in others):
        return None  # a stack: the engine explains (and --stack reads its planes)
    layout = "×".join(a for a in axes if a in "CYX")
    sizes = "×".join(str(n) for a, n in zip(axes, shape) if a in "CYX")
    raise Refused(
        f"it holds {layout} = {sizes} ({channels} channels first, from its {metadata} metadata); "
        "style transfer takes 1, 3 or 4 channels: save it with 1, 3 or 4 channels last (Y×X×C), "
        "or each channel as a separate image"
    )


def _whole(
    tif, series, axes: str, shape: tuple[int, ...], info: PageInfo, stack: bool = False
) -> tuple[np.ndarray, str]:
    """The whole series, decoded at once (after checking its size): 3 or 4 channels and samples last."""
    size = tiff_declared(series, axes, shape)
    plain = info.photometric in (MINISBLACK, RGB) and not info.extrasamples and tif.byteorder in ("<", "=")
    check_declared(size, size.nbytes * (1 if plain else 2))
    array = np.asarray(series.asarray())
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    index = channels_first(axes, shape, _metadata(tif), refuse=not stack)
    if index is not None and len(axes) == array.ndim:
        array = np.moveaxis(array, index, -1)
        axes = axes[:index] + axes[index + 1 :] + "C"
    return samples_last(array, axes)


def _series(tif) -> tuple[object, str, tuple[int, ...], PageInfo]:
    series = tif.series[0]
    return (
        series,
        getattr(series, "axes", "") or "",
        tuple(int(n) for n in series.shape),
        _page_info(series.keyframe),
    )


def _planes(series, axes: str, shape: tuple[int, ...], metadata: str) -> list | None:
    """The pages that make one 2D image, read one at a time: the image's page, or one page per channel."""
    if len(axes) != len(shape):
        return None
    index = channels_first(axes, shape, metadata)
    if len(series.pages) != (1 if index is None else shape[index]):
        return None  # a stack of pages (the engine explains), or channels stored otherwise
    pages = list(series.pages)
    if any(page is None or not streamable(page) for page in pages):
        return None
    lead = next((i for i, n in enumerate(shape) if n != 1), len(shape))
    if index is None and len(pages) == 1 and tuple(pages[0].shape) == shape[lead:]:
        return pages  # (1, …, 1, H, W[, S]): as the whole read gives it, leading ones dropped
    per_channel = index is not None and len(pages) == shape[index] and all(len(p.shape) == 2 for p in pages)
    if per_channel and int(np.prod(shape)) == len(pages) * int(np.prod(pages[0].shape)):
        return pages
    return None


def _band_bytes(page) -> int:
    key = page.keyframe
    rows = int(key.tilelength) if key.is_tiled else int(key.rowsperstrip or key.imagelength)
    rows = min(rows, int(key.imagelength))
    if page.is_final:
        rows = max(
            1, BAND_BYTES // max(1, int(key.imagewidth) * int(key.samplesperpixel) * key.dtype.itemsize)
        )
    return rows * int(key.imagewidth) * int(key.samplesperpixel) * int(key.dtype.itemsize)


def _read_planes(tif, pages: list, size: Declared, k: int, info: PageInfo, labels: bool) -> np.ndarray:
    """The image read a band of rows at a time (one page per channel in turn), reduced as the rows come."""
    palette = info.photometric == PALETTE
    out_channels = max(size.channels, 3 if palette else 1, len(pages))
    itemsize = max(size.itemsize, 2 if palette else 1)
    reduced = int(np.prod(reduced_shape((size.height, size.width), k))) * out_channels * itemsize
    check_declared(size, reduced + 6 * max(_band_bytes(page) for page in pages) + 2 * STRIP_BYTES)

    def photometric(band: np.ndarray) -> np.ndarray:
        return fix_photometric(band, info, labels)

    arrays = [
        reduce_bands(mapped(tiff_page_bands(tif, page), photometric), size.height, k, labels)
        for page in pages
    ]
    return arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=-1)


def _read_tiff(path: Path, long_side: int | None, factor: int | None, labels: bool) -> Decoded:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series, axes, shape, info = _series(tif)
        pages = _planes(series, axes, shape, _metadata(tif))
        if pages is not None:
            size = tiff_declared(series, axes, shape)
            upright = oriented_shape((size.height, size.width), info.orientation)
            k = factor if factor is not None else reduction_factor(upright, long_side)
            array = _read_planes(tif, pages, size, k, info, labels)
            return Decoded(orient(array, info.orientation), k, upright, 1)
        array, axes = _whole(tif, series, axes, shape, info)
    if (
        len(axes) != array.ndim
        and array.ndim == 3
        and array.shape[0] in (3, 4)
        and array.shape[-1] not in (1, 3, 4)
    ):
        array = np.moveaxis(array, 0, -1)  # planar colour without axes metadata
    array, axes = squeeze_leading(array, axes)
    array = fix_photometric(array, info, labels)
    if array.ndim > 3 or (array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4)):
        return Decoded(array, 1, tuple(array.shape[-2:]), int(np.prod(array.shape[:-2])))  # a stack
    shape2 = oriented_shape(array.shape[:2], info.orientation)
    k = factor if factor is not None else reduction_factor(shape2, long_side)
    array = subsample(array, k) if labels else block_mean(array, k)
    return Decoded(orient(array, info.orientation), k, shape2, 1)


def read_tiff(
    path: Path, long_side: int | None = None, factor: int | None = None, labels: bool = False
) -> Decoded:
    """Read a TIFF's first series as one image (a stack of pages stays a stack for the engine to refuse).

    Its declared size is checked first (``limits.py``); one page (or one page per channel of
    an OME / ImageJ C×Y×X image) is read a band of rows at a time and reduced as the rows come.
    """
    try:
        return _read_tiff(path, long_side, factor, labels)
    except Refused:
        raise
    except UsePillow:
        return read_pil(path, long_side, factor, labels)
    except Exception as exc:  # noqa: BLE001 - a codec tifffile lacks: Pillow (libtiff) may have it
        try:
            return read_pil(path, long_side, factor, labels)
        except Refused:
            raise
        except Exception:  # noqa: BLE001 - report tifffile's reason, the more specific one
            raise exc from None


def _read_stack(path: Path, labels: bool) -> tuple[np.ndarray, bool | None]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series, axes, shape, info = _series(tif)
        array, axes = _whole(tif, series, axes, shape, info, stack=True)
    array = fix_photometric(array, info, labels)
    if axes.endswith("C"):
        return array, array.shape[-1] in (3, 4)  # 3 or 4 channels, moved last by the axes metadata
    spp, palette = info.samplesperpixel, info.photometric == PALETTE and not labels
    if spp == 1 and not palette and len(axes) != array.ndim:
        return array, None  # nothing says whether the last axis is colour: let the engine guess
    return array, (spp > 1 or palette) and array.shape[-1] in (3, 4)


def read_tiff_stack(path: Path, labels: bool = False) -> tuple[np.ndarray, bool | None]:
    """A TIFF stack as stored (colour samples last, photometric applied); whether its last axis is colour.

    An OME / ImageJ stack with 3 or 4 channels ('C') has them moved last, as colour.
    """
    try:
        return _read_stack(path, labels)
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - UsePillow, or a codec tifffile lacks
        try:
            decoded = read_pil(path, labels=labels)
        except Refused:
            raise
        except Exception:  # noqa: BLE001
            if isinstance(exc, UsePillow):
                raise
            raise exc from None
        return decoded.array, decoded.array.ndim >= 3 and decoded.array.shape[-1] in (3, 4)


__all__ = [
    "channels_first",
    "fix_photometric",
    "read_tiff",
    "read_tiff_stack",
    "samples_last",
    "squeeze_leading",
    "tiff_declared",
]
