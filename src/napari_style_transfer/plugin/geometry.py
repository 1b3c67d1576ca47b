"""Where layers lie in the viewer: a layer's data→world matrix, and how a Labels mask's pixels
map onto a content's pixels.

No Qt here. A layer's data→world transform is its ``affine`` after its scale, translate,
rotate and shear (napari's order); :func:`world_matrix` gives it as one homogeneous matrix
from the layer's public properties. A mask is used on the content's pixel grid: when the two
layers lie on different grids that differ only by scale and translation (axis-aligned),
:func:`mask_grid` gives, per axis, the linear map from a content pixel coordinate to a mask
pixel coordinate (the mask is then resampled, nearest neighbour); a mask rotated or sheared
against the content is refused with one sentence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .faults import UserError

#: Below this (in mask pixels per content pixel, or mask pixels) two grids count as the same.
GRID_TOLERANCE = 1e-6

#: Per axis (rows, columns): mask coordinate = a · content coordinate + b, as (a, b).
AxisMap = tuple[float, float]


def world_matrix(layer: Any) -> np.ndarray:
    """The layer's data→world transform as an (n + 1) × (n + 1) homogeneous matrix (n = ``layer.ndim``)."""
    from napari.utils.transforms import CompositeAffine

    n = int(layer.ndim)
    physical = CompositeAffine(
        scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear, ndim=n
    )
    return np.asarray(layer.affine.affine_matrix, dtype=float) @ np.asarray(
        physical.affine_matrix, dtype=float
    )


def plane_matrix(layer: Any) -> np.ndarray | None:
    """The 3 × 3 map from a layer's last two data axes to its last two world axes; None when
    those world axes also depend on the leading (slice) axes (a stack rotated out of its plane)."""
    matrix = world_matrix(layer)
    n = matrix.shape[0] - 1
    rows = matrix[n - 2 : n]
    if n > 2 and not np.allclose(rows[:, : n - 2], 0.0, atol=GRID_TOLERANCE):
        return None
    return np.vstack([rows[:, n - 2 :], [0.0, 0.0, 1.0]])


def mask_grid(mask: Any, content: Any) -> tuple[AxisMap, AxisMap] | None:
    """How a 2D mask's pixels lie over the content's (H, W) pixels in the viewer.

    None when both share one grid (the mask is used pixel for pixel); else, per axis, the map
    from a content pixel coordinate to a mask pixel coordinate. Raises :class:`UserError`
    when the mask is rotated or sheared against the content (no nearest-neighbour resampling
    keeps labels honest there: the mask must be placed like the content).
    """
    relative = aligned_relative(mask, content)  # content pixel → mask pixel
    if relative is None:
        raise UserError(
            f"The mask '{mask.name}' is rotated or sheared against '{content.name}' in the viewer; "
            "give the mask the content's rotation and shear (its scale and translation may differ: "
            "it is then resampled onto the content's pixels)."
        )
    if np.allclose(relative, np.eye(3), atol=GRID_TOLERANCE):
        return None
    return (float(relative[0, 0]), float(relative[0, 2])), (float(relative[1, 1]), float(relative[1, 2]))


def aligned_relative(layer: Any, base: Any) -> np.ndarray | None:
    """The 3 × 3 map from ``base``'s pixel coordinates to ``layer``'s (last two axes), or None
    when the two are rotated or sheared against each other (or a stack is turned out of its plane)."""
    mine, theirs = plane_matrix(layer), plane_matrix(base)
    if mine is None or theirs is None:
        return None
    try:
        relative = np.linalg.solve(mine, theirs)
    except np.linalg.LinAlgError:
        return None
    return relative if axis_aligned(relative) else None


def axis_aligned(relative: np.ndarray) -> bool:
    """True when a 3 × 3 map scales and moves each axis on its own (no rotation, shear or swap)."""
    linear = relative[:2, :2]
    return bool(
        abs(linear[0, 1]) <= GRID_TOLERANCE
        and abs(linear[1, 0]) <= GRID_TOLERANCE
        and abs(linear[0, 0]) > GRID_TOLERANCE
        and abs(linear[1, 1]) > GRID_TOLERANCE
        and np.all(np.isfinite(relative))
    )


def nearest_pixels(
    count: int, content_side: int, axis_map: AxisMap, mask_side: int
) -> tuple[np.ndarray, np.ndarray]:
    """For ``count`` run pixels along one side of a content ``content_side`` pixels long: the
    nearest mask pixel (clipped into the mask) and whether the run pixel's centre lies on the mask.

    Run pixel ``j`` is content coordinate ``c = f·(j + ½) − ½`` (``f = content_side / count``),
    mask coordinate ``a·c + b``; its nearest mask pixel is ``⌊a·c + b + ½⌋``.
    """
    a, b = axis_map
    edges = (np.arange(count) + 0.5) * content_side / count  # c + ½
    index = np.floor(a * edges + (b + 0.5 - 0.5 * a))
    inside = (index >= 0) & (index < mask_side)
    return np.clip(index, 0, max(mask_side - 1, 0)).astype(np.int64), inside
