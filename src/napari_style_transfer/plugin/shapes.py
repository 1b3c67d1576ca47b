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

An nD Shapes layer gives what napari shows (``shape_slices``): a mask or a style region takes the
shapes in the slice shown at the viewer's point; a mask for every slice of a stack is one label
image per slice, each with the shapes that lie in that slice (a slice without any keeps the
content). Shape i keeps label i + 1 whichever slice it lies in, so the mask table stays the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .faults import UserError
from .geometry import plane_matrix
from .layers import base_shape, layer_kind, lead_shape, read_layer
from .shape_slices import lead_count, shapes_per_slice, shown_shapes
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


def check_shapes(layer: Any, role: str, picked: Sequence[int] | None = None) -> None:
    """Raise UserError unless ``layer`` is a Shapes layer with shapes that enclose an area (of its
    shapes, those ``picked``: the ones a run takes; None: all)."""
    if not is_shapes_layer(layer):
        raise UserError(
            f"Layer '{layer.name}' is a {layer_kind(layer)} layer; choose a Shapes layer as the {role}."
        )
    if int(layer.nshapes) == 0:
        raise UserError(
            f"The Shapes layer '{layer.name}' has no shapes; draw rectangles, polygons or ellipses on it "
            f"to use it as the {role}."
        )
    kinds = list(layer.shape_type)
    for i in range(len(kinds)) if picked is None else picked:
        if kinds[i] not in SHAPE_KINDS:
            raise UserError(
                f"Shape {i + 1} of '{layer.name}' is a {kinds[i]}, which encloses no area; use rectangles, "
                f"polygons or ellipses in the {role} (delete the {kinds[i]})."
            )


def picked_shapes(layer: Any, role: str, point: Sequence[float] | None) -> list[int]:
    """Check a Shapes layer and take the shapes napari shows at the world ``point`` (an nD layer's
    slice shown; all of a 2D layer's); UserError when that slice has none."""
    check_shapes(layer, role, ())
    picked = shown_shapes(layer, point)
    if not picked:
        raise UserError(
            f"The Shapes layer '{layer.name}' has no shapes in the slice shown; draw rectangles, polygons "
            f"or ellipses on this slice (or move to a slice with shapes) to use it as the {role}."
        )
    check_shapes(layer, role, picked)
    return picked


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


def outlines_on(
    shapes: Any, target: Any, grid_hw: Sequence[int], picked: Sequence[int] | None = None
) -> tuple[np.ndarray, ...]:
    """Each shape's outline (of those ``picked``; None: all), (N, 2) row/column coordinates in the
    pixels read of ``target``."""
    matrix = plane_map(shapes, target, grid_hw)
    data, kinds = list(shapes.data), list(shapes.shape_type)
    found = []
    for i in range(len(data)) if picked is None else picked:
        plane = np.asarray(data[i], dtype=float)[:, -2:]
        mapped = (matrix @ np.c_[plane, np.ones(len(plane))].T).T[:, :2]
        found.append(ellipse_outline(mapped) if kinds[i] == "ellipse" else mapped)
    return tuple(found)


def overlaps(outline: np.ndarray, hw: Sequence[int]) -> bool:
    """Whether an outline's bounding box reaches into a grid of ``hw`` pixels (centres at 0 … n − 1)."""
    low, high = outline.min(axis=0), outline.max(axis=0)
    return bool(np.all(high >= -0.5) and low[0] <= hw[0] - 0.5 and low[1] <= hw[1] - 0.5)


def rasterise(
    outlines: Sequence[np.ndarray], hw: Sequence[int], labels: Sequence[int] | None = None
) -> np.ndarray:
    """An (H, W) int32 label image: 0 outside every shape, ``labels[i]`` (None: i + 1) inside
    outline i (later shapes on top)."""
    from skimage.draw import polygon

    image = np.zeros((int(hw[0]), int(hw[1])), dtype=np.int32)
    for i, outline in enumerate(outlines):
        rows, cols = polygon(outline[:, 0], outline[:, 1], shape=image.shape)
        image[rows, cols] = i + 1 if labels is None else labels[i]
    return image


@dataclass(frozen=True)
class ShapesMaskRead:
    """A Shapes layer to rasterise as the run's label image (``size``: the content's read (H, W)).

    ``labels``: the label of each outline (empty: 1, 2, … in order). For every slice of a stack,
    ``lead`` is its leading axes' sizes and ``members``, per slice (C order), the outlines that lie
    in it: one label image per slice is read.
    """

    outlines: tuple[np.ndarray, ...]
    size: tuple[int, int]
    name: str
    labels: tuple[int, ...] = ()
    lead: tuple[int, ...] = ()
    members: tuple[tuple[int, ...], ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.lead, *self.size)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int32)

    def read(self) -> np.ndarray:
        """The label image (shape i → label i + 1, 0 outside the shapes), or one per slice."""
        labels = self.labels or tuple(range(1, len(self.outlines) + 1))
        if not self.lead:
            return rasterise(self.outlines, self.size, labels)
        out = np.zeros(self.shape, dtype=np.int32)
        drawn: dict[tuple[int, ...], np.ndarray] = {}
        for index, members in zip(np.ndindex(*self.lead), self.members):
            if members not in drawn:  # slices with the same shapes share one drawing
                drawn[members] = rasterise(
                    [self.outlines[j] for j in members], self.size, [labels[j] for j in members]
                )
            out[index] = drawn[members]
        return out

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


def plan_shapes_mask(
    layer: Any,
    content: Any,
    slice_hw: Sequence[int],
    point: Sequence[float] | None = None,
    all_slices: bool = False,
) -> ShapesMaskRead:
    """Check a Shapes mask and take its shapes' outlines on the content's read grid (``slice_hw``).

    An nD Shapes layer gives the shapes in the slice shown at the world ``point`` or, with
    ``all_slices`` over an nD content, one label image per slice of the content with its shapes.
    """
    size = (int(slice_hw[0]), int(slice_hw[1]))
    if all_slices and lead_count(layer) and lead_count(content):
        return plan_stack_mask(layer, content, size, point)
    picked = picked_shapes(layer, "mask", point)
    outlines = outlines_on(layer, content, size, picked)
    if not any(overlaps(outline, size) for outline in outlines):
        where = " in the slice shown" if lead_count(layer) and point is not None else ""
        raise UserError(
            f"The shapes of '{layer.name}'{where} do not lie over '{content.name}' in the viewer; "
            "draw them over the content, or choose another mask."
        )
    return ShapesMaskRead(outlines, size, str(layer.name), tuple(i + 1 for i in picked))


def plan_stack_mask(
    layer: Any, content: Any, size: tuple[int, int], point: Sequence[float] | None
) -> ShapesMaskRead:
    """An nD Shapes mask for every slice of an nD content: per slice, the shapes that lie in it."""
    check_shapes(layer, "mask", ())
    per_slice = shapes_per_slice(layer, content, point)
    used = sorted({i for shapes in per_slice for i in shapes})
    if not used:
        raise UserError(
            f"None of the shapes of '{layer.name}' lies in a slice of '{content.name}'; draw them on the "
            "content's slices (or choose another mask)."
        )
    check_shapes(layer, "mask", used)
    outlines = outlines_on(layer, content, size, used)
    if not any(overlaps(outline, size) for outline in outlines):
        raise UserError(
            f"The shapes of '{layer.name}' do not lie over '{content.name}' in the viewer; "
            "draw them over the content, or choose another mask."
        )
    position = {shape: j for j, shape in enumerate(used)}
    members = tuple(tuple(position[i] for i in shapes) for shapes in per_slice)
    labels = tuple(i + 1 for i in used)
    return ShapesMaskRead(outlines, size, str(layer.name), labels, lead_shape(content), members)


@dataclass(frozen=True)
class RegionRead:
    """A style region: a Shapes layer to rasterise as a boolean mask of the style image read (``size``).

    ``bounds``: the box around its shapes in the style's full-resolution pixels (:func:`region_bounds`),
    what a saved result tells the CLI's ``--style-region``; ``exact``: the region is that box.
    """

    outlines: tuple[np.ndarray, ...]
    size: tuple[int, int]
    name: str
    style_name: str
    bounds: tuple[float, float, float, float] | None = None
    exact: bool = False

    def read(self) -> np.ndarray:
        """True where the style's statistics come from; UserError when the region covers no pixel."""
        mask = rasterise(self.outlines, self.size) != 0
        if not mask.any():
            raise UserError(
                f"The style region '{self.name}' covers no pixel of the style '{self.style_name}' "
                "(its shapes are too small or beside it); draw larger shapes over that image."
            )
        return mask


def plan_style_region(
    layer: Any, style: Any, style_hw: Sequence[int], point: Sequence[float] | None = None
) -> RegionRead:
    """Check a style region and take its outlines on the pixels read of ``style`` (``style_hw``);
    an nD Shapes layer gives the shapes in the slice shown at the world ``point``."""
    if is_source(style):
        raise UserError(
            f"The style region '{layer.name}' needs a style layer, and '{style.name}' is not one; "
            "open that image as a layer (or clear the region)."
        )
    picked = picked_shapes(layer, "style region", point)
    size = (int(style_hw[0]), int(style_hw[1]))
    outlines = outlines_on(layer, style, size, picked)
    if not any(overlaps(outline, size) for outline in outlines):
        raise UserError(
            f"The style region '{layer.name}' does not lie over the style '{style.name}' in the viewer; "
            "draw its shapes over the part of that image to take the look from."
        )
    bounds, exact = region_bounds(layer, style, picked)
    return RegionRead(outlines, size, str(layer.name), str(style.name), bounds, exact)


#: Outline coordinates this close to a pixel centre count as on it (float noise of the transforms).
EDGE_TOLERANCE = 1e-6


def region_bounds(
    layer: Any, style: Any, picked: Sequence[int]
) -> tuple[tuple[float, float, float, float] | None, bool]:
    """The box (x0, y0, x1, y1) of the full-resolution pixels of ``style`` that the ``picked``
    shapes' outlines cover, as the CLI's ``--style-region`` takes it (columns x, rows y, pixel i
    spanning [i, i + 1)), clipped to the image (None: no pixel), and whether the region is exactly
    that box (one rectangle along the pixel axes). A pixel counts when its centre lies in the
    outlines' extent, edges included, as the rasteriser takes it (a rectangle from centre 10 to
    centre 80 covers 71 pixels: the box 10 to 81). From the outlines only: no pixel is read, so it
    is cheap on the GUI thread at plan time."""
    height, width = base_shape(style)
    outlines = outlines_on(layer, style, (height, width), picked)
    points = np.concatenate(outlines)
    first = np.ceil(points.min(axis=0) - EDGE_TOLERANCE)  # the first and last pixel centres inside
    last = np.floor(points.max(axis=0) + EDGE_TOLERANCE)
    x0, x1 = (float(np.clip(v, 0, width)) + 0.0 for v in (first[1], last[1] + 1))  # + 0.0: no −0
    y0, y1 = (float(np.clip(v, 0, height)) + 0.0 for v in (first[0], last[0] + 1))
    if not (x0 < x1 and y0 < y1):
        return None, False
    one_rectangle = len(outlines) == 1 and list(layer.shape_type)[picked[0]] == "rectangle"
    return (x0, y0, x1, y1), one_rectangle and along_axes(outlines[0])


def along_axes(outline: np.ndarray) -> bool:
    """Whether a rectangle's corners lie on its bounding box's edges (its sides along the pixel axes)."""
    low, high = outline.min(axis=0), outline.max(axis=0)
    on_edge = np.isclose(outline, low, atol=1e-6) | np.isclose(outline, high, atol=1e-6)
    return bool(on_edge.all())


def picked_regions(styles: Sequence[tuple[Any, float]], regions: Sequence[Any] | None) -> list[Any] | None:
    """The regions of the style rows that name a style (rows without one left out); None: no region."""
    given = list(regions or ())
    if not any(region is not None for region in given):
        return None
    given += [None] * (len(styles) - len(given))
    return [region for (style, _), region in zip(styles, given) if style is not None]


def plan_region_reads(
    styles: Sequence[Any],
    regions: Sequence[Any] | None,
    reads: Sequence[Any],
    point: Sequence[float] | None = None,
) -> list[RegionRead | None] | None:
    """How to rasterise each style's region on the pixels read of that style (None: no regions);
    ``reads``: the styles' read plans (a file or gallery style cannot take a region); ``point``:
    the viewer's world point (an nD region takes the shapes of the slice shown)."""
    if regions is None:
        return None
    return [
        None
        if region is None
        else plan_style_region(region, style, getattr(read, "shape", (0, 0))[:2], point)
        for style, region, read in zip(styles, regions, reads)
    ]


def plan_regions(
    choices_styles: Sequence[tuple[Any, float]],
    choices_regions: Sequence[Any] | None,
    picked: Sequence[Any],
    reads: Sequence[Any],
    point: Sequence[float] | None = None,
) -> tuple[list[RegionRead | None] | None, list[str | None] | None]:
    """The style rows' regions for a run or a batch (on the GUI thread, outlines only): per picked
    style how to rasterise its region, and its Shapes layer's name; (None, None) without regions."""
    regions = picked_regions(choices_styles, choices_regions)
    if regions is None:
        return None, None
    return plan_region_reads(picked, regions, reads, point), [None if r is None else r.name for r in regions]


def read_region_masks(reads: Sequence[RegionRead | None] | None) -> list[np.ndarray | None] | None:
    """Each style's region rasterised (call it in the worker thread), None for a style without one;
    None when the run has no regions."""
    masks = [None if plan is None else read_layer(plan, plan.name) for plan in reads or ()]
    return masks or None


__all__ = [
    "SHAPE_KINDS",
    "RegionRead",
    "ShapesMaskRead",
    "check_shapes",
    "is_shapes_layer",
    "outlines_on",
    "picked_regions",
    "picked_shapes",
    "plan_region_reads",
    "plan_regions",
    "plan_shapes_mask",
    "plan_stack_mask",
    "plan_style_region",
    "rasterise",
    "read_region_masks",
    "region_bounds",
    "shape_labels",
    "shape_names",
]
