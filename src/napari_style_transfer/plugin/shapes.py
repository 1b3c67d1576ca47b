"""Shapes layers as regions: the part of a style image its statistics come from (a style region),
and a mask whose shapes say which style goes where (shape i is label i + 1, later shapes on top).

No Qt here. The shapes' vertices are taken on the GUI thread (:func:`plan_style_region`,
:func:`plan_shapes_mask`: a Shapes layer's vertices are in memory, so this is cheap) and mapped
from the Shapes layer's data coordinates through world coordinates into the pixels the run reads
of the other layer (its full-resolution pixels, then the possibly reduced grid read: pixel ``j``
covers full-resolution coordinate ``f·(j + ½) − ½``), so a Shapes layer with another scale,
translation or even rotation than that layer works. They are rasterised in the worker
(``.read()``, with scikit-image): a pixel belongs to a shape when its centre lies inside.
Rectangles, polygons and ellipses select an area; a path or a line is refused in one sentence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .faults import UserError
from .geometry import plane_matrix
from .layers import base_shape, layer_kind
from .sources import is_source

#: The shape types that enclose an area.
SHAPE_KINDS = ("rectangle", "polygon", "ellipse")
#: An ellipse is drawn as a polygon of about one vertex per pixel of its outline (at least this many).
ELLIPSE_POINTS = 32


def is_shapes_layer(layer: Any) -> bool:
    from napari.layers import Shapes

    return isinstance(layer, Shapes)


def shape_names(layer: Any) -> list[str]:
    """'shape 1 (rectangle)', 'shape 2 (ellipse)', … in the layer's order (for the mask table)."""
    return [f"shape {i + 1} ({kind})" for i, kind in enumerate(layer.shape_type)]


def shape_labels(layer: Any) -> dict[int, str]:
    """The label values a Shapes mask gives, with their names: 0 outside the shapes, i + 1 for shape i."""
    return {0: "outside the shapes", **{i + 1: name for i, name in enumerate(shape_names(layer))}}


def check_shapes(layer: Any, role: str) -> None:
    """Raise UserError unless ``layer`` is a Shapes layer with shapes that enclose an area."""
    if not is_shapes_layer(layer):
        raise UserError(
            f"Layer '{layer.name}' is a {layer_kind(layer)} layer; choose a Shapes layer as the {role}."
        )
    if int(layer.nshapes) == 0:
        raise UserError(
            f"The Shapes layer '{layer.name}' has no shapes; draw rectangles, polygons or ellipses on it "
            f"to use it as the {role}."
        )
    for i, kind in enumerate(layer.shape_type):
        if kind not in SHAPE_KINDS:
            raise UserError(
                f"Shape {i + 1} of '{layer.name}' is a {kind}, which encloses no area; use rectangles, "
                f"polygons or ellipses in the {role} (delete the {kind})."
            )


def plane_map(shapes: Any, target: Any, grid_hw: Sequence[int]) -> np.ndarray:
    """The 3 × 3 map from the Shapes layer's last two data axes to the pixels (``grid_hw``) read of
    ``target``'s slices (through world coordinates); UserError when a layer's plane is tilted."""
    source_plane, target_plane = plane_matrix(shapes), plane_matrix(target)
    if source_plane is None or target_plane is None:
        tilted = shapes if source_plane is None else target
        raise UserError(
            f"Layer '{tilted.name}' is rotated out of its slices' plane in the viewer; the shapes of "
            f"'{shapes.name}' cannot be laid on '{target.name}'."
        )
    try:
        to_target = np.linalg.solve(target_plane, source_plane)
    except np.linalg.LinAlgError:
        raise UserError(f"Layer '{target.name}' has a flat (singular) transform in the viewer.") from None
    full = np.asarray(base_shape(target), dtype=float)
    factor = np.asarray(grid_hw[:2], dtype=float) / full  # grid = (full + ½)·g/F − ½
    to_grid = np.array(
        [[factor[0], 0, 0.5 * factor[0] - 0.5], [0, factor[1], 0.5 * factor[1] - 0.5], [0, 0, 1]]
    )
    return to_grid @ to_target


def ellipse_outline(corners: np.ndarray) -> np.ndarray:
    """The polygon of the ellipse inscribed in the parallelogram ``corners`` (napari's 4 box vertices)."""
    centre = corners.mean(axis=0)
    first, second = (corners[1] - corners[0]) / 2, (corners[3] - corners[0]) / 2
    count = max(ELLIPSE_POINTS, int(np.ceil(2 * np.pi * max(np.linalg.norm(first), np.linalg.norm(second)))))
    t = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return centre + np.cos(t)[:, None] * first + np.sin(t)[:, None] * second


def outlines_on(shapes: Any, target: Any, grid_hw: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Each shape's outline, (N, 2) row/column coordinates in the pixels read of ``target``."""
    matrix = plane_map(shapes, target, grid_hw)
    found = []
    for vertices, kind in zip(shapes.data, shapes.shape_type):
        plane = np.asarray(vertices, dtype=float)[:, -2:]
        mapped = (matrix @ np.c_[plane, np.ones(len(plane))].T).T[:, :2]
        found.append(ellipse_outline(mapped) if kind == "ellipse" else mapped)
    return tuple(found)


def overlaps(outline: np.ndarray, hw: Sequence[int]) -> bool:
    """Whether an outline's bounding box reaches into a grid of ``hw`` pixels (centres at 0 … n − 1)."""
    low, high = outline.min(axis=0), outline.max(axis=0)
    return bool(np.all(high >= -0.5) and low[0] <= hw[0] - 0.5 and low[1] <= hw[1] - 0.5)


def rasterise(outlines: Sequence[np.ndarray], hw: Sequence[int]) -> np.ndarray:
    """An (H, W) int32 label image: 0 outside every shape, i + 1 inside shape i (later shapes on top)."""
    from skimage.draw import polygon

    labels = np.zeros((int(hw[0]), int(hw[1])), dtype=np.int32)
    for i, outline in enumerate(outlines):
        rows, cols = polygon(outline[:, 0], outline[:, 1], shape=labels.shape)
        labels[rows, cols] = i + 1
    return labels


@dataclass(frozen=True)
class ShapesMaskRead:
    """A Shapes layer to rasterise as the run's label image (``size``: the content's read (H, W))."""

    outlines: tuple[np.ndarray, ...]
    size: tuple[int, int]
    name: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.size

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int32)

    def read(self) -> np.ndarray:
        """The label image (shape i → label i + 1, 0 outside the shapes)."""
        return rasterise(self.outlines, self.size)

    def label_styles(self, labels: np.ndarray, label_styles: Mapping[int, int]) -> dict[int, int]:
        """The table's entries for the shapes that cover content pixels; UserError when none of the
        shapes mapped to a style does (one beside the content keeps nothing from running)."""
        present = {int(v) for v in np.unique(labels)}
        kept = {int(k): int(v) for k, v in label_styles.items() if int(k) in present}
        if label_styles and not kept:
            raise UserError(
                f"None of the shapes of '{self.name}' that are mapped to a style covers a pixel of the "
                "content; draw them over the content (or map another shape to a style)."
            )
        return kept


def plan_shapes_mask(layer: Any, content: Any, slice_hw: Sequence[int]) -> ShapesMaskRead:
    """Check a Shapes mask and take its shapes' outlines on the content's read grid (``slice_hw``)."""
    check_shapes(layer, "mask")
    size = (int(slice_hw[0]), int(slice_hw[1]))
    outlines = outlines_on(layer, content, size)
    if not any(overlaps(outline, size) for outline in outlines):
        raise UserError(
            f"The shapes of '{layer.name}' do not lie over '{content.name}' in the viewer; "
            "draw them over the content, or choose another mask."
        )
    return ShapesMaskRead(outlines, size, str(layer.name))


@dataclass(frozen=True)
class RegionRead:
    """A style region: a Shapes layer to rasterise as a boolean mask of the style image read (``size``)."""

    outlines: tuple[np.ndarray, ...]
    size: tuple[int, int]
    name: str
    style_name: str

    def read(self) -> np.ndarray:
        """True where the style's statistics come from; UserError when the region covers no pixel."""
        mask = rasterise(self.outlines, self.size) != 0
        if not mask.any():
            raise UserError(
                f"The style region '{self.name}' covers no pixel of the style '{self.style_name}' "
                "(its shapes are too small or beside it); draw larger shapes over that image."
            )
        return mask


def plan_style_region(layer: Any, style: Any, style_hw: Sequence[int]) -> RegionRead:
    """Check a style region and take its outlines on the pixels read of ``style`` (``style_hw``)."""
    if is_source(style):
        raise UserError(
            f"The style region '{layer.name}' needs a style layer, and '{style.name}' is not one; "
            "open that image as a layer (or clear the region)."
        )
    check_shapes(layer, "style region")
    size = (int(style_hw[0]), int(style_hw[1]))
    outlines = outlines_on(layer, style, size)
    if not any(overlaps(outline, size) for outline in outlines):
        raise UserError(
            f"The style region '{layer.name}' does not lie over the style '{style.name}' in the viewer; "
            "draw its shapes over the part of that image to take the look from."
        )
    return RegionRead(outlines, size, str(layer.name), str(style.name))


def picked_regions(styles: Sequence[tuple[Any, float]], regions: Sequence[Any] | None) -> list[Any] | None:
    """The regions of the style rows that name a style (rows without one left out); None: no region."""
    given = list(regions or ())
    if not any(region is not None for region in given):
        return None
    given += [None] * (len(styles) - len(given))
    return [region for (style, _), region in zip(styles, given) if style is not None]


def plan_region_reads(
    styles: Sequence[Any], regions: Sequence[Any] | None, reads: Sequence[Any]
) -> list[RegionRead | None] | None:
    """How to rasterise each style's region on the pixels read of that style (None: no regions);
    ``reads``: the styles' read plans (a file or gallery style cannot take a region)."""
    if regions is None:
        return None
    return [
        None if region is None else plan_style_region(region, style, getattr(read, "shape", (0, 0))[:2])
        for style, region, read in zip(styles, regions, reads)
    ]


__all__ = [
    "SHAPE_KINDS",
    "RegionRead",
    "ShapesMaskRead",
    "check_shapes",
    "is_shapes_layer",
    "outlines_on",
    "picked_regions",
    "plan_region_reads",
    "plan_shapes_mask",
    "plan_style_region",
    "rasterise",
    "shape_labels",
    "shape_names",
]
