"""Shrinking an image while it is read, in its own dtype, so that memory follows the output size.

A 8192² photo stylised at 48 px need not be converted to float at 8192²: it is reduced on
reading by an integer factor ``k`` (k×k block means, computed a strip of ``k`` rows at a
time in the file's dtype) to the smallest size the run can use, and the engine does the
final antialiased resize. ``k`` is chosen so that the engine's working size is exactly what
it would have been from the full image (:func:`reduction_factor`).
"""

from __future__ import annotations

import numpy as np

from ..arrays import fit_long_side, reduced_shape

#: EXIF / TIFF orientation (1-8) → the numpy operations that show the image upright,
#: as a viewer (and PIL's ``ImageOps.exif_transpose``) does.
ORIENTATIONS = (1, 2, 3, 4, 5, 6, 7, 8)


def reduction_factor(shape: tuple[int, int], long_side: int | None) -> int:
    """The largest k whose k×k block means leave the engine the same working size as the full image.

    The engine resizes to ``fit_long_side(shape, long_side)``; a reduced image must give the
    very same (H, W), and neither side may drop below what the engine will use (a thin side
    that the engine stretches to 16 px is kept at its full resolution).
    """
    if not long_side or long_side <= 0 or min(shape) < 1:
        return 1
    target = fit_long_side(shape, long_side)
    k = max(shape) // long_side
    while k > 1:
        small = reduced_shape(shape, k)
        if fit_long_side(small, long_side) == target and all(
            s >= min(full, t) for s, full, t in zip(small, shape, target)
        ):
            return k
        k -= 1
    return 1


def subsample(labels: np.ndarray, k: int) -> np.ndarray:
    """Every k-th label in each direction (labels are not averaged): the shape of :func:`~napari_style_transfer.arrays.block_mean`."""
    return labels if k <= 1 else np.ascontiguousarray(labels[::k, ::k])


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Show an (H, W, ...) array upright according to its EXIF / TIFF orientation (1-8)."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.swapaxes(0, 1)
    elif orientation == 6:
        array = array[::-1].swapaxes(0, 1)
    elif orientation == 7:
        array = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        array = array[:, ::-1].swapaxes(0, 1)
    return np.ascontiguousarray(array)


def oriented_shape(shape: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(H, W) once shown upright (orientations 5-8 swap the sides)."""
    return (shape[1], shape[0]) if orientation in (5, 6, 7, 8) else (shape[0], shape[1])


__all__ = [
    "ORIENTATIONS",
    "orient",
    "oriented_shape",
    "reduction_factor",
    "subsample",
]
