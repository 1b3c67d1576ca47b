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
from .limits import Declared, check_declared
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


#: Pillow mode (as converted by ``pil_mode``) → (channels, bytes per sample) of its array.
MODE_LAYOUTS = {"L": (1, 1), "RGB": (3, 1), "RGBA": (4, 1), "I": (1, 4), "F": (1, 4)}


def declared(image, frames: int = 1) -> Declared:
    """What an opened (not loaded) Pillow image will decode to, from its header."""
    mode = pil_mode(image)
    channels, itemsize = MODE_LAYOUTS.get(mode, (1, 2) if mode.startswith("I;16") else (4, 1))
    return Declared(image.width, image.height, frames, channels, itemsize)


def _with_channels(frames: np.ndarray, gray: bool, channels: int) -> np.ndarray:
    """Frames (n, H, W) when ``gray`` else (n, H, W, C) → (n, H, W, channels): gray repeated, alpha opaque."""
    if gray:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.shape[-1] == 3 and channels == 4:
        opaque = np.iinfo(frames.dtype).max if frames.dtype.kind in "iu" else 1.0
        alpha = np.full(frames.shape[:-1] + (1,), opaque, frames.dtype)
        frames = np.concatenate([frames, alpha], axis=-1)
    return frames


def _put(out: np.ndarray | None, i: int, frame: np.ndarray, count: int) -> np.ndarray:
    """Frame ``i`` into the stack ``out`` (made for ``count`` frames at the first); widened when a frame needs more."""
    if out is None:
        out = np.empty((count,) + frame.shape, frame.dtype)
    if frame.shape[:2] != out.shape[1:3]:
        (h, w), (fh, fw) = out.shape[1:3], frame.shape[:2]
        raise ValueError(
            f"its frames have different sizes (frame 1 is {w}×{h} px, frame {i + 1} {fw}×{fh} px)"
        )
    channels = max(out.shape[3] if out.ndim == 4 else 1, frame.shape[2] if frame.ndim == 3 else 1)
    dtype = np.result_type(out.dtype, frame.dtype)
    if dtype != out.dtype or (channels > 1 and out.ndim == 3) or (out.ndim == 4 and channels > out.shape[3]):
        wide = np.empty(out.shape[:3] + ((channels,) if channels > 1 else ()), dtype)
        wide[:i] = _with_channels(out[:i], out.ndim == 3, channels) if channels > 1 else out[:i]
        out = wide
    if channels > 1 and (frame.ndim == 2 or frame.shape[-1] != channels):
        frame = _with_channels(frame[None], frame.ndim == 2, channels)[0]
    out[i] = frame
    return out


def read_frames(image, count: int, labels: bool = False) -> np.ndarray:
    """Every frame of an animation or multi-page file as one (n, H, W[, C]) array, filled frame by frame.

    One mode for all (RGBA when any frame is transparent); the stack is allocated once, so
    reading peaks at the stack plus a frame or two, not at twice the stack.
    """
    from PIL import ImageSequence

    convert = label_array if labels else pil_array
    out: np.ndarray | None = None
    done = 0
    for frame in ImageSequence.Iterator(image):
        if done == count:
            break
        out = _put(out, done, convert(frame), count)
        done += 1
    if out is None:
        raise ValueError("it holds no frame")
    return out if done == count else out[:done]


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
            size = declared(image, count)
            if count > 1:
                check_declared(size, size.nbytes + 3 * size.nbytes // count)
                frames = read_frames(image, count, labels)
                return Decoded(frames, 1, frames.shape[1:3], len(frames))
            check_declared(size, 2 * size.nbytes + (0 if pil_mode(image) == image.mode else size.nbytes))
            image.load()
            orientation = _orientation(image)
            shape = oriented_shape((image.height, image.width), orientation)
            k = factor if factor is not None else reduction_factor(shape, long_side)
            array = _reduced(image, k, labels)
    return Decoded(orient(array, orientation), k, shape, 1)


__all__ = ["MODE_LAYOUTS", "Decoded", "declared", "label_array", "read_frames", "read_pil"]
