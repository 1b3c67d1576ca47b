"""A Labels layer as a run's mask: its label values, and how to read it on the content's grid.

No Qt here. Labels keep their values and their integer type, whatever it is (int8 with
negative labels, uint64 labels above 2**63, bool): the engine's ``check_labels`` takes them
as they are, and the label → style table is keyed by Python ints. A mask is checked on the
GUI thread from its shape and its place in the viewer (:func:`plan_mask_read`) and read in
the worker (:meth:`MaskRead.read`), nearest neighbour (labels are never averaged). A mask
on another grid than the content (scale, translation) is resampled onto the content's
pixels; content pixels beyond the mask get label 0. A Shapes layer is a mask too: its shapes are
rasterised onto the content's pixels in the worker, shape i as label i + 1 (``shapes.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .faults import UserError
from .geometry import AxisMap, mask_grid, nearest_pixels
from .layers import base_shape, full_data, full_shape, layer_kind
from .shapes import ShapesMaskRead, is_shapes_layer, plan_shapes_mask

#: A map that keeps coordinates (the mask on the content's grid).
SAME_GRID: AxisMap = (1.0, 0.0)


def label_values(layer: Any, limit: int | None = None) -> list[int]:
    """The label values present in a Labels layer as Python ints (sorted; at most ``limit``)."""
    values = [int(v) for v in np.unique(np.asarray(full_data(layer)))]
    return values if limit is None else values[:limit]


def lazy_label_values(layer: Any) -> list[int]:
    """The label values of a lazy (dask, zarr) Labels layer, found chunk by chunk (slow: not on the GUI thread)."""
    import dask.array as da

    data = full_data(layer)
    array = data if isinstance(data, da.Array) else da.from_array(data, chunks="auto")
    return [int(v) for v in np.asarray(da.unique(array).compute()).tolist()]


@dataclass(frozen=True)
class MaskRead:
    """A 2D Labels layer to read as a label image of ``size`` on the content's grid, in the worker.

    ``content_hw``: the (H, W) of the content's full-resolution slices (None: the mask's own
    shape); ``rows`` / ``cols``: content pixel coordinate → mask pixel coordinate per axis.
    """

    source: Any
    size: tuple[int, int]
    content_hw: tuple[int, int] | None = None
    rows: AxisMap = SAME_GRID
    cols: AxisMap = SAME_GRID

    def pixels(
        self, shape: Sequence[int]
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """(mask row of each run row, on the mask?), (mask column of each run column, on the mask?)."""
        content = self.content_hw or (int(shape[0]), int(shape[1]))
        h, w = self.size
        return (
            nearest_pixels(h, content[0], self.rows, int(shape[0])),
            nearest_pixels(w, content[1], self.cols, int(shape[1])),
        )

    def read(self) -> np.ndarray:
        """A private copy of the labels at ``size``, in the mask's own dtype (0 beyond the mask)."""
        shape = tuple(int(s) for s in self.source.shape)
        (rows, rows_in), (cols, cols_in) = self.pixels(shape)
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        block = np.asarray(self.source[r0:r1, c0:c1])  # only the part the run covers
        labels = block[np.ix_(rows - r0, cols - c0)]  # a copy (fancy indexing)
        if not (rows_in.all() and cols_in.all()):
            labels[~(rows_in[:, None] & cols_in[None, :])] = 0
        return labels


def plan_mask_read(layer: Any, content: Any, slice_hw: Sequence[int]) -> MaskRead | ShapesMaskRead:
    """Check a mask layer and say how to read it for ``content`` at the run's (H, W) ``slice_hw``.

    Raises :class:`UserError` unless the layer is a 2D Labels layer lying over the content:
    on its grid with its (H, W), or on a grid that differs only by scale and translation and
    overlaps it (resampled then); a mask rotated or sheared against the content is refused.
    A Shapes layer is rasterised on the content's pixels (:func:`~.shapes.plan_shapes_mask`).
    """
    from napari.layers import Labels

    if is_shapes_layer(layer):
        return plan_shapes_mask(layer, content, slice_hw)
    if not isinstance(layer, Labels):
        raise UserError(
            f"Layer '{layer.name}' is a {layer_kind(layer)} layer; choose a Labels or Shapes layer as the mask."
        )
    shape = full_shape(layer)
    h, w = base_shape(content)
    grid = mask_grid(layer, content) if len(shape) == 2 else None
    if len(shape) != 2 or (grid is None and shape != (h, w)):
        raise UserError(
            f"The mask '{layer.name}' has shape {shape}; it must be a 2D Labels layer of the same size as "
            f"'{content.name}' ({h}×{w} px, height × width), or one scaled or moved over it in the viewer."
        )
    size = (int(slice_hw[0]), int(slice_hw[1]))
    if grid is None:
        return MaskRead(full_data(layer), size)
    plan = MaskRead(full_data(layer), size, (h, w), *grid)
    (_, rows_in), (_, cols_in) = plan.pixels(shape)
    if not (rows_in.any() and cols_in.any()):
        raise UserError(
            f"The mask '{layer.name}' does not overlap '{content.name}' in the viewer; "
            "move it over the content, or choose another mask."
        )
    return plan


__all__ = ["MaskRead", "label_values", "lazy_label_values", "plan_mask_read"]
