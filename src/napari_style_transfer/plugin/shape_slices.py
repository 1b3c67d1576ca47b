"""Which shapes of an nD Shapes layer lie in a slice: the ones napari shows there.

No Qt here, and no private napari state: computed from the layer's vertices (``layer.data``) and its
data→world transform. napari shows a shape of an nD Shapes layer in a slice when, on each axis not
displayed (the leading axes: a run always takes the last two as the image plane), its vertices'
coordinates rounded to whole numbers lie within half a unit of the slice's point in the layer's
data coordinates; that point is the viewer's world point (``viewer.dims.point``) mapped through the
layer's world→data transform on those axes alone, as napari slices a layer. A 2D Shapes layer has
no slices: all of its shapes lie in every slice. Without a world point (a caller that does not know
what the viewer shows) every shape is taken, as before nD shapes were sliced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .geometry import world_matrix
from .layers import lead_shape


def lead_count(layer: Any) -> int:
    """The number of a layer's leading (slice) axes: 0 for a 2D layer."""
    return max(0, int(layer.ndim) - 2)


def full_point(world: Sequence[float] | None, ndim: int) -> np.ndarray:
    """A world point with at least ``ndim`` axes (zeros before those given; all zeros for None)."""
    given = np.asarray(tuple(world) if world is not None else (), dtype=float)
    return np.r_[np.zeros(max(0, ndim - given.size)), given]


def slice_point(layer: Any, world: Sequence[float]) -> np.ndarray:
    """The layer's leading data coordinates at the world point (its last ``layer.ndim`` axes),
    through the leading axes of its world→data transform only (napari's slicing)."""
    n = lead_count(layer)
    if n == 0:
        return np.zeros(0)
    ndim = int(layer.ndim)
    inverse = np.linalg.inv(world_matrix(layer))
    mine = full_point(world, ndim)[-ndim:]
    return inverse[:n, :n] @ mine[:n] + inverse[:n, ndim]


def slice_keys(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per shape, the lowest and highest of its vertices' leading coordinates, rounded (napari's
    slice key): two (N, leading axes) arrays."""
    n = lead_count(layer)
    keys = [np.rint(np.asarray(vertices, dtype=float)[:, :n]) for vertices in layer.data]
    if not keys:
        return np.zeros((0, n)), np.zeros((0, n))
    return np.array([k.min(axis=0) for k in keys]), np.array([k.max(axis=0) for k in keys])


def in_slice(keys: tuple[np.ndarray, np.ndarray], point: np.ndarray) -> list[int]:
    """The shapes (their indices) whose :func:`slice_keys` lie in the slice at leading data
    coordinates ``point``: within half a unit of it on every leading axis."""
    low, high = keys
    inside = np.all((np.abs(low - point) < 0.5) & (np.abs(high - point) < 0.5), axis=1)
    return [int(i) for i in np.flatnonzero(inside)]


def shown_shapes(layer: Any, world: Sequence[float] | None) -> list[int]:
    """The shapes napari shows at the viewer's world point (all of a 2D layer's; all without a point)."""
    if lead_count(layer) == 0 or world is None:
        return list(range(int(layer.nshapes)))
    return in_slice(slice_keys(layer), slice_point(layer, world))


def shapes_per_slice(layer: Any, grid: Any, world: Sequence[float] | None) -> list[list[int]]:
    """For each slice of the nD image ``grid`` (its leading axes, in C order), the shapes of
    ``layer`` that lie in it: the slice's world position (the other world axes at ``world``)
    mapped into the Shapes layer's data coordinates."""
    m, n = int(grid.ndim), lead_count(grid)
    matrix = world_matrix(grid)
    base = full_point(world, max(m, int(layer.ndim)))
    keys, found = slice_keys(layer), []
    for index in np.ndindex(*lead_shape(grid)):
        point = base.copy()
        start = point.size - m
        point[start : start + n] = matrix[:n, :n] @ np.asarray(index, dtype=float) + matrix[:n, m]
        found.append(in_slice(keys, slice_point(layer, point)))
    return found


__all__ = ["in_slice", "lead_count", "shapes_per_slice", "shown_shapes", "slice_keys", "slice_point"]
