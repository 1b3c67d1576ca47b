"""A run's mask, planned for what the run covers: a Labels layer (``label_masks``) or a Shapes layer
(``shapes``), whose nD shapes are taken as napari shows them (the slice shown, or each slice of a
stack run: ``shape_slices``).

No Qt here, and nothing is read: this only picks the planner, on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .label_masks import MaskRead, plan_mask_read
from .shapes import ShapesMaskRead, is_shapes_layer, plan_shapes_mask


def plan_run_mask(
    layer: Any, content: Any, slice_hw: Sequence[int], point: Sequence[float] | None, all_slices: bool
) -> MaskRead | ShapesMaskRead:
    """How to read ``layer`` as the mask of a run over ``content`` at the run's (H, W) ``slice_hw``.

    ``point``: the viewer's world point (an nD Shapes layer gives the shapes of the slice shown);
    ``all_slices``: the run covers every slice of an nD content (an nD Shapes layer then gives one
    label image per slice; a 2D mask is one label image for every slice).
    """
    if is_shapes_layer(layer):
        return plan_shapes_mask(layer, content, slice_hw, point, all_slices)
    return plan_mask_read(layer, content, slice_hw)


__all__ = ["plan_run_mask"]
