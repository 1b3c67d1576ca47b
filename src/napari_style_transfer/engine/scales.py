"""The sizes a run optimises at: coarse to fine, the last one the output size."""

from __future__ import annotations

from ..arrays import fit_long_side
from .config import StyleConfig

#: Smallest long side of the coarsest scale in multi-scale runs.
MIN_SCALE_SIDE = 200


def scale_sizes(content_shape: tuple[int, int], config: StyleConfig) -> list[tuple[int, int]]:
    """(H, W) of each scale, coarse to fine; the last is the output size."""
    long_side = config.size or max(content_shape)
    sides = [long_side]
    if config.multiscale:
        while sides[0] / 2 >= MIN_SCALE_SIDE:
            sides.insert(0, round(sides[0] / 2))
    return [fit_long_side(content_shape, side) for side in sides]


__all__ = ["MIN_SCALE_SIDE", "scale_sizes"]
