"""Conversions between user arrays (any dtype, range, 1/3/4 channels) and RGB float in [0, 1].

The engine works on RGB in [0, 1]; :func:`to_rgb01` records what it needs in an
:class:`ImageInfo` so that :func:`from_rgb01` can return a result in the content's
dtype, channel count and value range.

Accepted arrays: (H, W) grayscale, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA, of dtype
bool, uint8/16/32/64, int8/16/32/64 or float16/32/64. Anything else (complex, object,
2 or more than 4 channels, channel-first, nD) raises :class:`ImageError` with one sentence
saying what to do instead; nothing is guessed.

The value range ``[low, high]`` that maps to [0, 1] is (see :func:`value_range`): the given
contrast limits; else 0-255 for uint8, 0-1 for bool and for floats already in [0, 1]; else
the 0.1 and 99.9 percentiles of the finite values (so a few hot pixels do not wash the
image out). Values outside ``[low, high]`` are clipped to it; NaN and -inf become ``low``,
+inf becomes ``high``. A constant image gets ``high = low + 1`` (more beyond 2**53).

Precision of a round trip ``from_rgb01(*to_rgb01(x))`` (the RGB values are float32), for
values ``v`` inside ``[low, high]`` (values outside come back as the nearest bound):

* uint8 (no contrast limits) and bool: exact.
* other integers: exact when ``high - low <= 2**22`` and ``|v| < 2**52`` (so every
  uint16 image and most 32-bit ones); otherwise within ``(high - low) * 2**-24 + 0.5``.
* floats: within ``(high - low) * 2**-23``, plus the output dtype's own rounding of the
  value (float16: 2**-11 relative; float32: 2**-24 relative).
* grayscale stays grayscale (its three equal channels are averaged back, exactly);
  an RGBA input's alpha channel is returned unchanged (resized if the shape changed).
* transparency: where an RGBA input's alpha is 0 its pixels come back byte for byte, colour
  included, when the result has the input's shape (:attr:`ImageInfo.transparent`); the
  alpha as a loss weight is :func:`alpha_weights`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..arrays import cast_to_dtype, pil_array

#: Percentiles that define the value range of images that are neither uint8 nor in [0, 1].
ROBUST_PERCENTILES = (0.1, 99.9)
SUPPORTED_DTYPES = "bool, uint8/16/32/64, int8/16/32/64, float16/32/64"


class ImageError(ValueError):
    """An image array the engine cannot use; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    """What is needed to turn an RGB [0, 1] result back into the user's format."""

    dtype: np.dtype
    channels: int  # 1 (grayscale), 3 (RGB) or 4 (RGBA)
    squeeze: bool  # grayscale given as (H, W) rather than (H, W, 1)
    low: float
    high: float
    alpha: np.ndarray | None  # the RGBA input's alpha channel, unchanged values
    #: The colour values (N, 3) of the fully transparent pixels (alpha == 0), as given; None: none.
    transparent: np.ndarray | None = None

    def describe(self) -> str:
        kind = {1: "grayscale", 3: "RGB", 4: "RGBA"}[self.channels]
        return f"{kind} {self.dtype}, range [{self.low:g}, {self.high:g}]"


def value_range(array: np.ndarray, contrast_limits: tuple[float, float] | None = None) -> tuple[float, float]:
    """The (low, high) values that map to 0 and 1.

    Given contrast limits win; uint8 uses 0-255, bool 0-1, floats already in [0, 1] keep
    it; anything else uses robust percentiles so that a few hot pixels do not wash it out.
    """
    if contrast_limits is not None:
        low, high = float(contrast_limits[0]), float(contrast_limits[1])
    elif array.dtype == np.bool_:
        low, high = 0.0, 1.0
    elif array.dtype == np.uint8:
        low, high = 0.0, 255.0
    else:
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        if finite.size == 0:
            return 0.0, 1.0
        lo, hi = float(finite.min()), float(finite.max())
        if array.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
            low, high = 0.0, 1.0
        else:
            low, high = _percentiles(finite, lo, hi)
            if high <= low:
                low, high = lo, hi
    if not high > low:
        step = max(1.0, abs(low) * 2.0**-40)  # + 1.0 alone vanishes in float64 beyond 2**53
        high = low + step
        if not math.isfinite(high):  # a constant image at the float64 maximum
            low, high = low - step, low
    return low, high


def _percentiles(values: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The robust range in float64 (numpy interpolates in the array's dtype, and int8 (84 - -44) overflows).

    Across most of the float64 range (hi - lo overflows) they are taken of the halved values
    and doubled, which is exact: interpolating between -1e308 and 1e308 would give inf or NaN.
    """
    data = values.astype(np.float64)
    halve = not math.isfinite(hi - lo)
    if halve:
        data *= 0.5
    low, high = (float(v) for v in np.percentile(data, ROBUST_PERCENTILES))
    return (low * 2.0, high * 2.0) if halve else (low, high)


def check_image(array: object, name: str = "image") -> np.ndarray:
    """Return ``array`` as a numpy array the engine accepts, or raise ImageError saying why.

    Besides numpy arrays it takes what a scientist may pass from Python (see :func:`as_array`):
    Pillow images, torch tensors (with autograd state too), masked arrays, memmaps, matrices.
    """
    array = as_array(array)
    if not isinstance(array, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array, got {type(array).__name__}")
    if array.dtype.kind == "c":
        raise ImageError(f"{name}: complex images are not supported (take .real or abs() first)")
    if array.dtype.kind not in "biuf":
        raise ImageError(f"{name}: dtype {array.dtype} is not supported ({SUPPORTED_DTYPES})")
    shape = tuple(array.shape)
    if array.ndim == 3 and shape[-1] not in (1, 3, 4):
        raise ImageError(f"{name}: {_channel_problem(shape)}")
    if array.ndim not in (2, 3):
        raise ImageError(
            f"{name}: shape {shape} is not a 2D image; expected (H, W) grayscale, (H, W, 3) RGB or "
            "(H, W, 4) RGBA (take one plane of a stack, e.g. image[0])"
        )
    if min(shape[:2]) < 1:
        raise ImageError(f"{name}: shape {shape} is empty")
    return array


def as_array(image: object) -> object:
    """A plain numpy array of an image given as any array-like (anything else is returned as it is).

    * a Pillow image: in the layout a viewer shows (see :func:`pil_array`);
    * a torch tensor: detached (autograd state dropped), on the CPU; bfloat16 becomes float32;
    * a masked array: masked pixels count as missing — NaN for floats (then the low end of
      the range, like any NaN), the lowest unmasked value for integers and bool;
    * numpy subclasses (memmap, matrix…) and anything with ``__array__``: a plain ndarray.
    """
    if isinstance(image, torch.Tensor):
        tensor = image.detach().resolve_conj().resolve_neg().cpu()
        if tensor.dtype.is_floating_point and tensor.dtype not in (
            torch.float16,
            torch.float32,
            torch.float64,
        ):
            tensor = tensor.float()  # bfloat16, float8: numpy has no such dtype
        return tensor.numpy()
    if isinstance(image, np.ma.MaskedArray):
        return _filled(image)
    if hasattr(image, "getbands") and hasattr(image, "__array_interface__"):
        return pil_array(image)
    if isinstance(image, np.ndarray) or hasattr(image, "__array__") or hasattr(image, "__array_interface__"):
        return np.asarray(image)
    return image


def is_single_image(obj: object) -> bool:
    """Whether ``obj`` is one image (an array, a tensor, a Pillow image…) rather than a list of them."""
    return (
        isinstance(obj, (np.ndarray, torch.Tensor))
        or hasattr(obj, "__array__")
        or hasattr(obj, "__array_interface__")
    )


def _filled(masked: np.ma.MaskedArray) -> np.ndarray:
    data = np.asarray(masked.data)
    hidden = np.ma.getmaskarray(masked)
    if not hidden.any() or data.dtype.kind not in "biuf":
        return data
    if data.dtype.kind == "f":
        return np.where(hidden, np.nan, data).astype(data.dtype, copy=False)
    shown_values = data[~hidden]
    fill = shown_values.min() if shown_values.size else np.zeros((), data.dtype)
    return np.where(hidden, fill, data).astype(data.dtype, copy=False)


def _channel_problem(shape: tuple[int, ...]) -> str:
    """Why an (A, B, C) array with C not in (1, 3, 4) is refused, and what to do instead."""
    channels = shape[-1]
    if shape[0] in (1, 3, 4) and shape[0] < min(shape[1:]):
        return (
            f"shape {shape} looks channel-first ({shape[0]} channels on axis 0); "
            "move them last, e.g. np.moveaxis(image, 0, -1)"
        )
    if channels == 2:
        return (
            f"shape {shape} has 2 channels; style transfer needs grayscale, RGB or RGBA, "
            "so use one channel (image[..., 0]) or add a third"
        )
    if channels < min(shape[:2]):
        return (
            f"shape {shape} has {channels} channels; style transfer needs grayscale, RGB or RGBA, "
            "so pick 1, 3 or 4 of them (e.g. image[..., :3])"
        )
    return (
        f"shape {shape} is not a 2D image (a stack of {shape[0]} planes?); expected (H, W) grayscale, "
        "(H, W, 3) RGB or (H, W, 4) RGBA (take one plane, e.g. image[0])"
    )


def to_rgb01(
    array: np.ndarray, contrast_limits: tuple[float, float] | None = None, name: str = "image"
) -> tuple[np.ndarray, ImageInfo]:
    """(H, W, 3) float32 RGB in [0, 1] and the info to convert a result back."""
    array = check_image(array, name)
    squeeze = array.ndim == 2
    data = array[..., None] if squeeze else array
    channels = data.shape[-1]
    color = data[..., :3] if channels >= 3 else data
    low, high = value_range(color, contrast_limits)
    rgb = np.empty(data.shape[:2] + (3,), dtype=np.float32)
    rows = max(1, STRIP_ELEMENTS // max(1, color.shape[1] * color.shape[2]))
    for top in range(
        0, color.shape[0], rows
    ):  # a strip at a time: float64 work follows the strip, not the image
        rgb[top : top + rows, :, : color.shape[2]] = _normalised(color[top : top + rows], low, high)
    if channels == 1:
        rgb[..., 1:] = rgb[..., :1]
    alpha = data[..., 3].copy() if channels == 4 else None
    transparent = None
    if alpha is not None and np.any(alpha == 0):
        transparent = data[..., :3][alpha == 0].copy()  # exact bytes, put back by from_rgb01
    info = ImageInfo(array.dtype, channels, squeeze, low, high, alpha, transparent)
    return rgb, info


def colour_result_info(info: ImageInfo) -> ImageInfo:
    """How to render an RGB result of a single-channel content (``result_colour='style'``).

    Three channels in the content's dtype and value range, so that a start image or a stack
    neighbour rendered this way converts back exactly; a boolean content gives uint8.
    """
    if info.channels != 1:
        return info
    if info.dtype == np.bool_:
        return ImageInfo(np.dtype(np.uint8), 3, False, 0.0, 255.0, None)
    return ImageInfo(info.dtype, 3, False, info.low, info.high, None)


def alpha_weights(info: ImageInfo) -> np.ndarray | None:
    """The RGBA input's alpha as an (H, W) float32 weight in [0, 1]; None without alpha or when it is uniform.

    Integers count from 0 (transparent) to their dtype's maximum (opaque), floats from 0 to
    1 (values above 1 are opaque); a uniform alpha weighs every pixel alike, so it gives None.
    """
    alpha = info.alpha
    if alpha is None or alpha.size == 0 or alpha.min() == alpha.max():
        return None
    if alpha.dtype.kind in "iu":
        weights = alpha.astype(np.float64) / float(np.iinfo(alpha.dtype).max)
    else:
        weights = np.nan_to_num(alpha.astype(np.float64), nan=0.0)
    return np.clip(weights, 0.0, 1.0).astype(np.float32)


#: Elements converted to float64 at a time by :func:`to_rgb01` (32 MiB).
STRIP_ELEMENTS = 1 << 22


def _normalised(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(values - low) / (high - low) clipped to [0, 1] in float64; NaN and -inf → 0, +inf → 1.

    When ``high - low`` overflows (a range across most of float64) both are halved first.
    """
    data = values.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(high - low):
            data = (data - low) / (high - low)
        else:
            data = (data * 0.5 - low * 0.5) / (high * 0.5 - low * 0.5)
    np.nan_to_num(data, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(data, 0.0, 1.0, out=data)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (..., 3) RGB array."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


def denormalised(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """[0, 1] → [low, high] in float64, also when ``high - low`` overflows (then as v·high + (1 - v)·low)."""
    if math.isfinite(high - low):
        return values * (high - low) + low
    return values * high + (1.0 - values) * low


def from_rgb01(rgb: np.ndarray, info: ImageInfo) -> np.ndarray:
    """Turn an (H, W, 3) RGB [0, 1] result into the content's dtype, channels and range."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    color = luminance(rgb)[..., None] if info.channels == 1 else rgb
    if info.dtype == np.bool_:
        out = color >= 0.5
    else:
        out = cast_to_dtype(denormalised(color, info.low, info.high), info.dtype)
    if info.channels == 4 and info.alpha is not None:
        alpha = info.alpha  # same shape: the original values, never through float (int64 > 2**53)
        if alpha.shape != out.shape[:2]:
            alpha = cast_to_dtype(resize_plane(alpha.astype(np.float32), out.shape[:2]), info.dtype)
        out = np.concatenate([out, alpha.astype(info.dtype, copy=False)[..., None]], axis=-1)
        if info.transparent is not None and alpha is info.alpha:  # same shape: transparent pixels as given
            out[..., :3][alpha == 0] = info.transparent
    if info.squeeze:
        out = out[..., 0]
    return out


def resize_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2D float array (bilinear, antialiased when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))[None, None]
    return resize(t, shape)[0, 0].numpy()


def resize(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Resize an (N, C, H, W) tensor to ``shape`` (bilinear; antialiased when shrinking)."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    shrink = shape[0] < image.shape[-2] or shape[1] < image.shape[-1]
    return F.interpolate(image, size=shape, mode="bilinear", align_corners=False, antialias=shrink)


def to_tensor(rgb: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) numpy → (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None].to(device)


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor → (H, W, 3) float32 numpy in [0, 1]."""
    return image.detach()[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy()
