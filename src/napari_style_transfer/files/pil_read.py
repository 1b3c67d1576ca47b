"""Reading PNG, JPEG, GIF, WebP, BMP… (and TIFFs tifffile cannot decode) with Pillow.

Every Pillow mode becomes one of the engine's layouts, the way a viewer shows the file:
palettes are looked up (with their transparency), CMYK, YCbCr, LAB and HSV become RGB,
gray + alpha becomes RGBA, 1-bit becomes 8-bit gray, 16-bit gray stays uint16, 32-bit
integer and float stay as they are. The EXIF orientation is applied. Animations and
multi-page files give every frame (a stack); a camera's MPO gives its main picture.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arrays import block_mean, pil_array, pil_mode
from .reduce import orient, oriented_shape, reduction_factor, subsample

#: Modes Pillow's ``reduce`` averages (others are averaged in numpy).
PIL_REDUCE_MODES = ("L", "RGB", "RGBA", "I", "F")
#: Formats whose extra frames are not an animation (a camera's multi-picture JPEG: previews, depth).
SINGLE_PICTURE_FORMATS = ("MPO",)


@dataclass
class Decoded:
    """An image as read: the array, the k×k reduction applied, the file's (upright) size and frame count."""

    array: np.ndarray
    factor: int = 1
    shape: tuple[int, int] = (0, 0)
    frames: int = 1


def _orientation(image) -> int:
    try:
        value = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - broken EXIF: show the image as stored
        return 1
    return value if 1 <= value <= 8 else 1


def label_array(image) -> np.ndarray:
    """A Pillow image holding labels: 1-bit stays 0/1, a palette image gives its indices, gray its values."""

    if image.mode == "PA":
        image = image.getchannel(0)
    if image.mode in ("1", "P") or image.mode.startswith(("L", "I")) and image.mode != "LA":
        array = np.asarray(image)
        return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))
    return pil_array(image)  # colour: the caller refuses it


def _frames(image, labels: bool = False) -> list[np.ndarray]:
    """Every frame of an animation or multi-page file, in one mode (RGBA when any is transparent)."""
    from PIL import ImageSequence

    convert = label_array if labels else pil_array
    frames = [convert(frame.copy()) for frame in ImageSequence.Iterator(image)]
    shapes = {f.shape[:2] for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"its {len(frames)} frames have different sizes {sorted(shapes)}")
    channels = max(f.shape[-1] if f.ndim == 3 else 1 for f in frames)
    if channels > 1 and any((f.ndim == 2 or f.shape[-1] != channels) for f in frames):
        frames = [_to_channels(f, channels) for f in frames]
    return frames


def _to_channels(frame: np.ndarray, channels: int) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.shape[-1] == 3 and channels == 4:
        opaque = np.iinfo(frame.dtype).max if frame.dtype.kind in "iu" else 1.0
        alpha = np.full(frame.shape[:2] + (1,), opaque, frame.dtype)
        frame = np.concatenate([frame, alpha], axis=-1)
    return frame


def _reduced(image, k: int, labels: bool) -> np.ndarray:
    """The image's array after k×k block means (labels: every k-th pixel), in Pillow where it can."""

    if labels:
        return subsample(label_array(image), k)
    mode = pil_mode(image)
    if k > 1 and not labels and mode in PIL_REDUCE_MODES:
        if mode != image.mode:
            image = image.convert(mode)
        return pil_array(image.reduce(k))
    array = pil_array(image)
    return subsample(array, k) if labels else block_mean(array, k)


def read_pil(
    path: Path, long_side: int | None = None, factor: int | None = None, labels: bool = False
) -> Decoded:
    """Read ``path`` with Pillow; reduce it on reading for an output whose long side is ``long_side``.

    ``factor`` forces the reduction (a mask follows its content); ``labels`` subsamples
    instead of averaging. Raises whatever Pillow raises on an unreadable file.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", Image.DecompressionBombWarning
        )  # big photos are fine; bombs still raise
        with Image.open(path) as image:
            count = getattr(image, "n_frames", 1) if image.format not in SINGLE_PICTURE_FORMATS else 1
            if count > 1:
                frames = _frames(image, labels)
                return Decoded(np.stack(frames), 1, frames[0].shape[:2], len(frames))
            image.load()
            orientation = _orientation(image)
            shape = oriented_shape((image.height, image.width), orientation)
            k = factor if factor is not None else reduction_factor(shape, long_side)
            array = _reduced(image, k, labels)
    return Decoded(orient(array, orientation), k, shape, 1)


__all__ = ["Decoded", "label_array", "read_pil"]
