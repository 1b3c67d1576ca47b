"""Which array the canvas reads of each layer, and on which grid it composites them: for a multiscale
(pyramid) layer the coarsest level whose pixels are still no larger than a pixel of what the run
needs, so that a small run over a large pyramid never reads its level 0.

No Qt here, and no pixel is read. A level's pixel ``j`` covers level-0 coordinate ``d·(j + ½) − ½``
per axis (``d``: its downsample factor, level 0's size over its size), as for a reduced read of a
single layer (``layers.result_geometry``), so a block-mean pyramid lies where its level 0 does. The
canvas keeps its first layer's level-0 grid as its reference; it is composited on that grid reduced
by ``g`` (pixel ``j`` at first-layer coordinate ``g·(j + ½) − ½``), the largest divisor of the run's
block-mean factor ``k`` whose pixels are no larger than the finest layer read, and the rest,
``k / g``, is block means as for any layer. A canvas without pyramids (or read for all slices)
has ``g = 1`` and reads every layer's level 0: it is composited at full resolution as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .geometry import GRID_TOLERANCE, AxisMap
from .layers import base_shape, lead_shape


@dataclass(frozen=True)
class LayerSource:
    """One layer as the canvas reads it: an array (a pyramid level, or the layer's data), the
    (H, W) of its slices, per axis the map from a composite-grid pixel to one of its pixels,
    and level 0's slice counts (a level may have fewer slices)."""

    source: Any
    size: tuple[int, int]
    rows: AxisMap
    cols: AxisMap
    full_lead: tuple[int, ...] = ()

    def index(self, full_index: Sequence[int]) -> tuple[int, ...]:
        """A slice in level-0 numbers as a slice of this array (its nearest one on a coarser level)."""
        lead = tuple(int(n) for n in self.source.shape[: len(full_index)])
        return tuple(min(int(i) * n // int(f), n - 1) for i, n, f in zip(full_index, lead, self.full_lead))


def layer_levels(layer: Any) -> list[Any]:
    """A layer's arrays, largest first: a pyramid's levels, or its one data array."""
    return list(layer.data) if getattr(layer, "multiscale", False) else [layer.data]


def level_hw(layer: Any, level: Any) -> tuple[int, int]:
    """(H, W) of a level's slices (its last two spatial axes, before an RGB axis)."""
    n = int(layer.ndim)
    return int(level.shape[n - 2]), int(level.shape[n - 1])


def level_factors(layer: Any, level: Any) -> tuple[float, float]:
    """A level's downsample factors (rows, columns): level-0 pixels per pixel of ``level``."""
    full, mine = base_shape(layer), level_hw(layer, level)
    return full[0] / max(mine[0], 1), full[1] / max(mine[1], 1)


def pixel_sizes(factors: Sequence[float], maps: Sequence[AxisMap]) -> tuple[float, float]:
    """A level's pixel in first-layer level-0 pixels per axis (``maps``: first → layer level 0)."""
    return factors[0] / abs(maps[0][0]), factors[1] / abs(maps[1][0])


def pick_level(layer: Any, maps: Sequence[AxisMap], step: Sequence[float] | None) -> Any:
    """The coarsest level whose pixels are at most ``step`` first-layer pixels per axis (what the
    run needs: a pixel of its read); level 0 when none is (or ``step`` is None: full resolution)."""
    options = layer_levels(layer)
    if step is None or len(options) == 1:
        return options[0]
    fine = [
        level
        for level in options
        if all(
            size <= limit * (1 + GRID_TOLERANCE)
            for size, limit in zip(pixel_sizes(level_factors(layer, level), maps), step)
        )
    ]
    return max(fine, key=lambda level: float(np.prod(level_factors(layer, level))), default=options[0])


def grid_map(axis_map: AxisMap, factor: float, g: int) -> AxisMap:
    """Composite-grid pixel → level pixel along one axis, from first-layer pixel → layer level-0
    pixel (``axis_map``), the level's downsample ``factor`` and the grid's reduction ``g``."""
    a, b = axis_map
    return a * g / factor, (a * (g - 1) / 2 + b + 0.5) / factor - 0.5


def grid_factor(k: int, finest: float) -> int:
    """The largest divisor of the block-mean factor ``k`` no larger than ``finest`` (the finest
    layer's pixel, in first-layer pixels): the canvas is composited that much coarser."""
    return max(g for g in range(1, max(k, 1) + 1) if k % g == 0 and (g == 1 or g <= finest + GRID_TOLERANCE))


def canvas_sources(
    layers: Sequence[Any], maps: Sequence[tuple[AxisMap, AxisMap]], step: Sequence[float] | None, k: int
) -> tuple[tuple[LayerSource, ...], int]:
    """(each layer's :class:`LayerSource` on the composite grid, that grid's reduction ``g``) for a
    read that needs pixels of ``step`` first-layer pixels and block-means the canvas by ``k``."""
    picked = [pick_level(layer, axis_maps, step) for layer, axis_maps in zip(layers, maps)]
    factors = [level_factors(layer, level) for layer, level in zip(layers, picked)]
    finest = min(min(pixel_sizes(f, axis_maps)) for f, axis_maps in zip(factors, maps))
    g = grid_factor(k, finest)
    sources = tuple(
        LayerSource(
            level,
            level_hw(layer, level),
            grid_map(axis_maps[0], f[0], g),
            grid_map(axis_maps[1], f[1], g),
            lead_shape(layer),
        )
        for layer, level, f, axis_maps in zip(layers, picked, factors, maps)
    )
    return sources, g


__all__ = ["LayerSource", "canvas_sources", "grid_factor", "grid_map", "layer_levels", "pick_level"]
