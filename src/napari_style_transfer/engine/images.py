"""Conversions between user arrays (any dtype, range, 1/3/4 channels) and RGB float in [0, 1].

The engine works on RGB in [0, 1]; :func:`to_rgb01` records what it needs in an
:class:`ImageInfo` so that :func:`from_rgb01` can return a result in the content's
dtype, channel count and value range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

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
            low, high = (float(v) for v in np.percentile(finite, ROBUST_PERCENTILES))
            if high <= low:
                low, high = lo, hi
    if not high > low:
        high = low + 1.0
    return low, high


def check_image(array: object, name: str = "image") -> np.ndarray:
    """Return ``array`` as a numpy array the engine accepts, or raise ImageError saying why."""
    if hasattr(array, "__array__") and not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if not isinstance(array, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array, got {type(array).__name__}")
    if array.dtype.kind == "c":
        raise ImageError(f"{name}: complex images are not supported (take .real or abs() first)")
    if array.dtype.kind not in "biuf":
        raise ImageError(f"{name}: dtype {array.dtype} is not supported ({SUPPORTED_DTYPES})")
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        raise ImageError(
            f"{name}: shape {array.shape} has {array.shape[-1]} channels on the last axis; "
            "expected (H, W) grayscale, (H, W, 3) RGB or (H, W, 4) RGBA"
        )
    if array.ndim not in (2, 3):
        raise ImageError(
            f"{name}: shape {array.shape} is not a 2D image; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    if min(array.shape[:2]) < 1:
        raise ImageError(f"{name}: shape {array.shape} is empty")
    return array


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
    rgb = (color.astype(np.float64) - low) / (high - low)
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0)
    rgb = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    if channels == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    alpha = data[..., 3].copy() if channels == 4 else None
    info = ImageInfo(array.dtype, channels, squeeze, low, high, alpha)
    return np.ascontiguousarray(rgb), info


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (..., 3) RGB array."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.bool_:
        return values >= 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def from_rgb01(rgb: np.ndarray, info: ImageInfo) -> np.ndarray:
    """Turn an (H, W, 3) RGB [0, 1] result into the content's dtype, channels and range."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    if info.dtype == np.bool_:
        values = luminance(rgb)[..., None] if info.channels == 1 else rgb
        out = values >= 0.5
        return out[..., 0] if info.squeeze else out
    color = luminance(rgb)[..., None] if info.channels == 1 else rgb
    out = _cast(color * (info.high - info.low) + info.low, info.dtype)
    if info.channels == 4 and info.alpha is not None:
        alpha = info.alpha
        if alpha.shape != out.shape[:2]:
            alpha = resize_plane(alpha.astype(np.float32), out.shape[:2])
        out = np.concatenate([out, _cast(alpha, info.dtype)[..., None]], axis=-1)
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


def fit_long_side(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(H, W) scaled so that the longer side is ``long_side`` (each side at least 1)."""
    h, w = shape
    factor = long_side / max(h, w)
    return max(1, round(h * factor)), max(1, round(w * factor))


def to_tensor(rgb: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) numpy → (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None].to(device)


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor → (H, W, 3) float32 numpy in [0, 1]."""
    return image.detach()[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy()
