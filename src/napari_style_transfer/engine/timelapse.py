"""Time-lapse helpers: the global motion between two slices, moving an image by it, and flicker.

The stack driver moves the previous slice's result by the drift between the two content
slices before starting the next slice from it, so texture travels with a drifting scene;
:func:`flicker` measures how much a stylised stack changes from slice to slice.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def guess_rgb(shape: tuple[int, ...]) -> bool:
    """napari's rule: a last axis of 3 or 4 on an array of 3+ dimensions is colour."""
    return len(shape) >= 3 and shape[-1] in (3, 4)


#: Estimated shifts smaller than this (pixels, both axes) are taken as no motion.
MIN_SHIFT = 0.1


def luma(data: np.ndarray, rgb: bool) -> np.ndarray:
    values = np.asarray(data, dtype=np.float64)
    if rgb:
        values = values[..., :3].mean(-1)
    return values


def estimate_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Global motion between two 2D images by phase correlation: ``m`` with ``b(p) ≈ a(p + m)``.

    Sub-pixel by a parabola through the correlation peak. Shifts beyond a quarter of the
    image, or a flat correlation (no structure), give (0, 0).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    h, w = a.shape
    window = np.outer(np.hanning(h), np.hanning(w)) if min(h, w) > 2 else np.ones((h, w))
    fa = np.fft.fft2((a - a.mean()) * window)
    fb = np.fft.fft2((b - b.mean()) * window)
    cross = fa * np.conj(fb)
    magnitude = np.abs(cross)
    if magnitude.max() <= 0:
        return 0.0, 0.0
    r = np.fft.ifft2(cross / np.maximum(magnitude, 1e-12 * magnitude.max())).real
    iy, ix = np.unravel_index(int(np.argmax(r)), r.shape)
    if r[iy, ix] < 5 * r.std():  # no clear peak
        return 0.0, 0.0

    def refine(m1: float, m0: float, p1: float) -> float:
        denom = m1 - 2 * m0 + p1
        return 0.0 if denom == 0 else float(np.clip(0.5 * (m1 - p1) / denom, -0.5, 0.5))

    dy = iy + refine(r[iy - 1, ix], r[iy, ix], r[(iy + 1) % h, ix])
    dx = ix + refine(r[iy, ix - 1], r[iy, ix], r[iy, (ix + 1) % w])
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    if abs(dy) > h / 4 or abs(dx) > w / 4:
        return 0.0, 0.0
    return float(dy), float(dx)


def shift_image(image: np.ndarray, motion: tuple[float, float], fill: np.ndarray) -> np.ndarray:
    """``image(p + motion)`` (bilinear), in ``image``'s dtype; pixels from outside come from ``fill``.

    Motions below ``MIN_SHIFT`` px on both axes leave the image as it is (no resampling blur).
    """
    dy, dx = motion
    if abs(dy) < MIN_SHIFT and abs(dx) < MIN_SHIFT:
        return image
    planes = np.asarray(image, dtype=np.float32)
    planes = planes[..., None] if planes.ndim == 2 else planes
    h, w = planes.shape[:2]
    t = torch.from_numpy(np.ascontiguousarray(planes)).permute(2, 0, 1)[None]
    ys = (torch.arange(h, dtype=torch.float32) + dy + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + dx + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
    moved = F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    valid = F.grid_sample(
        torch.ones(1, 1, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    out = moved[0].permute(1, 2, 0).numpy()
    v = valid[0, 0].numpy()[..., None]
    filler = np.asarray(fill, dtype=np.float32)
    filler = filler[..., None] if filler.ndim == 2 else filler
    out = np.where(v > 0.5, out / np.maximum(v, 1e-6), filler)
    out = out if np.asarray(image).ndim == 3 else out[..., 0]
    dtype = np.asarray(image).dtype
    if dtype == np.bool_:
        return out >= 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(dtype)
    return out.astype(dtype)


def temporal_difference(stack: np.ndarray, axis: int = 0, rgb: bool | None = None) -> float:
    """Mean absolute difference between consecutive slices along ``axis`` (in the array's units)."""
    stack = np.asarray(stack)
    if rgb is None:
        rgb = guess_rgb(stack.shape) and stack.ndim >= 4
    if rgb and stack.shape[-1] == 4:
        stack = stack[..., :3]
    if stack.shape[axis] < 2:
        raise ValueError(f"need at least two slices along axis {axis}, got shape {stack.shape}")
    return float(np.abs(np.diff(stack.astype(np.float64), axis=axis)).mean())


def flicker(result: np.ndarray, content: np.ndarray, axis: int = 0, rgb: bool | None = None) -> float:
    """Temporal flicker of a stylised stack: its mean absolute slice-to-slice difference
    relative to the content's (1.0: changes as much as the content does; both arrays in the
    same value units, as a result is in its content's range)."""
    moving = temporal_difference(content, axis, rgb)
    changing = temporal_difference(result, axis, rgb)
    if moving == 0:
        return 1.0 if changing == 0 else float("inf")
    return changing / moving


__all__ = [
    "MIN_SHIFT",
    "estimate_shift",
    "flicker",
    "guess_rgb",
    "luma",
    "shift_image",
    "temporal_difference",
]
