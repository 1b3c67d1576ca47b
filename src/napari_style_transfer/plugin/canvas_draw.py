"""How the canvas draws its layers: each layer's look (colormap, contrast limits, gamma, opacity,
blending), napari's blendings, and the virtual array that composites a canvas slice row by row.

No Qt here; nothing reads a layer. A :class:`Part` is one layer's array (a pyramid level, or the
full-resolution data), the slice it takes and where its pixels lie on the grid the canvas is
composited on; :class:`CanvasPlane` blends its parts when rows are indexed (in the worker). What
goes into them is planned in ``composite.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import STRIP_BYTES
from .faults import UserError
from .geometry import GRID_TOLERANCE, AxisMap

TRANSLUCENT = ("translucent", "translucent_no_depth")
#: The blendings drawn as napari draws them (any other one is drawn as translucent).
BLENDINGS = (*TRANSLUCENT, "additive", "minimum", "opaque")


def colormap_record(colormap: Any) -> dict[str, Any]:
    """A napari colormap as plain JSON values (a result's metadata is saved with it)."""
    record: dict[str, Any] = {}
    for key, value in colormap.model_dump().items():
        value = getattr(value, "value", value)  # the interpolation mode
        record[key] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
    return record


@dataclass(frozen=True)
class LayerLook:
    """How a layer is drawn: what the compositor needs of it, and what a result records."""

    name: str
    rgb: bool
    contrast_limits: tuple[float, float]
    gamma: float = 1.0
    opacity: float = 1.0
    blending: str = "translucent"
    interpolation: str = "nearest"
    #: A napari ``Colormap`` (single-channel layers; None for RGB).
    colormap: Any = None

    @classmethod
    def of(cls, layer: Any) -> LayerLook:
        """The layer's display settings now (attributes only, no pixels)."""
        rgb = bool(layer.rgb)
        low, high = (float(v) for v in layer.contrast_limits)
        return cls(
            name=str(layer.name),
            rgb=rgb,
            contrast_limits=(low, high),
            gamma=float(layer.gamma),
            opacity=float(layer.opacity),
            blending=str(getattr(layer.blending, "value", layer.blending)),
            interpolation=str(getattr(layer.interpolation2d, "value", layer.interpolation2d)),
            colormap=None if rgb else layer.colormap,
        )

    def record(self) -> dict[str, Any]:
        """Plain JSON values: the layer's name and display settings (its fields)."""
        record = dataclasses.asdict(self)
        record.update(contrast_limits=list(self.contrast_limits), colormap=None)
        if self.colormap is not None:
            record["colormap"] = colormap_record(self.colormap)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LayerLook:
        """The look a result recorded (:meth:`record`); UserError when the record is damaged."""
        from napari.utils.colormaps import Colormap

        try:
            values = dict(record)
            cmap = values.pop("colormap", None)
            values["contrast_limits"] = tuple(float(v) for v in values["contrast_limits"])
            colormap = None if cmap is None else Colormap(**{k: v for k, v in cmap.items() if v is not None})
            return cls(**values, colormap=colormap)
        except Exception as exc:  # noqa: BLE001 - a hand-edited or damaged record
            raise UserError(f"This result's record of the canvas is damaged ({exc}); run it again.") from exc

    def colours(self, values: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """(RGB in [0, 1], alpha) of raw ``values`` ((h, w) or (h, w, C) floats of ``dtype``)."""
        low, high = self.contrast_limits
        span = high - low if high != low else 1.0
        with np.errstate(invalid="ignore"):
            if not self.rgb:
                level = np.clip((values - low) / span, 0.0, 1.0) ** self.gamma
                rgba = np.asarray(self.colormap.map(level), dtype=np.float64)
                return rgba[..., :3], rgba[..., 3] * self.opacity
            colour = np.clip((values[..., :3] - low) / span, 0.0, 1.0) ** self.gamma
        alpha = np.ones(values.shape[:2])
        if values.shape[-1] > 3:
            scale = float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0
            alpha = np.clip(values[..., 3] / scale, 0.0, 1.0)
        missing = np.isnan(colour).any(axis=-1)
        alpha = np.where(missing | np.isnan(alpha), 0.0, alpha)
        return np.nan_to_num(colour), alpha * self.opacity


def blend(out: np.ndarray, colour: np.ndarray, alpha: np.ndarray, blending: str) -> None:
    """Draw ``colour`` with ``alpha`` over ``out`` (in place) as napari's ``blending`` does."""
    if blending == "additive":
        out += colour * alpha[..., None]
    elif blending == "minimum":
        np.minimum(out, colour, out=out)
    elif blending == "opaque":
        out[...] = colour
    else:  # translucent, translucent_no_depth
        a = alpha[..., None]
        out[...] = colour * a + out * (1.0 - a)
    np.clip(out, 0.0, 1.0, out=out)


def axis_samples(
    coords: np.ndarray, n: int, linear: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per coordinate: the two pixels to read along one axis and the weight of the second
    (None: nearest neighbour, the two are the same); clamped to the edge like a texture."""
    if not linear:
        index = np.clip(np.floor(coords + 0.5), 0, n - 1).astype(np.int64)
        return index, index, None
    low = np.floor(coords)
    first, second = (np.clip(low + k, 0, n - 1).astype(np.int64) for k in (0, 1))
    return first, second, coords - low


def resample(block: np.ndarray, axis: int, first: np.ndarray, second: np.ndarray, weight: Any) -> np.ndarray:
    """``block`` sampled along ``axis`` (0 or 1) at the pixels of :func:`axis_samples`."""
    near = np.take(block, first, axis=axis)
    if weight is None:
        return near
    shape = [1] * block.ndim
    shape[axis] = -1
    w = np.asarray(weight).reshape(shape)
    return near * (1.0 - w) + np.take(block, second, axis=axis) * w


@dataclass(frozen=True)
class Part:
    """One layer's share in a canvas slice: its array and slice, where its pixels lie, how it is drawn."""

    look: LayerLook
    source: Any
    index: tuple[int, ...]
    size: tuple[int, int]
    rows: AxisMap
    cols: AxisMap

    def draw(self, out: np.ndarray, row0: int) -> None:
        """Blend this layer into ``out``: the canvas's rows ``row0 …`` (all its columns), in place."""
        found = [
            self._coordinates(out.shape[0], row0, self.rows, self.size[0]),
            self._coordinates(out.shape[1], 0, self.cols, self.size[1]),
        ]
        if any(coords.size == 0 for _, coords in found):
            return  # the layer lies beside these rows
        (rows_at, ys), (cols_at, xs) = found
        linear = self.look.interpolation != "nearest"
        y0, y1, ty = axis_samples(ys, self.size[0], linear)
        x0, x1, tx = axis_samples(xs, self.size[1], linear)
        r_lo, r_hi, c_lo, c_hi = int(y0.min()), int(y1.max()) + 1, int(x0.min()), int(x1.max()) + 1
        dtype = np.dtype(self.source.dtype)
        block = np.asarray(self.source[(*self.index, slice(r_lo, r_hi), slice(c_lo, c_hi))], dtype=np.float64)
        values = resample(block, 0, y0 - r_lo, y1 - r_lo, ty)
        values = resample(values, 1, x0 - c_lo, x1 - c_lo, tx)
        colour, alpha = self.look.colours(values, dtype)
        region = out[rows_at[0] : rows_at[-1] + 1, cols_at[0] : cols_at[-1] + 1]
        blend(region, colour, alpha, self.look.blending)

    @staticmethod
    def _coordinates(count: int, offset: int, axis_map: AxisMap, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(the ``count`` pixels from canvas pixel ``offset`` whose centres lie on the layer, counted
        from ``offset``; their coordinates in the layer's pixels)."""
        a, b = axis_map
        local = np.arange(count)
        coords = a * (local + offset) + b
        inside = (coords >= -0.5 - GRID_TOLERANCE) & (coords < n - 0.5 - GRID_TOLERANCE)
        return local[inside], coords[inside]


class CanvasPlane:
    """One slice of the canvas as a virtual (H, W, 3) float32 array: indexing rows composites them."""

    def __init__(self, parts: Sequence[Part], hw: tuple[int, int]):
        self.parts = tuple(parts)
        self.shape = (int(hw[0]), int(hw[1]), 3)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The canvas's rows ``start:stop`` (float32 RGB in [0, 1]): every layer read and blended."""
        out = np.zeros((max(0, stop - start), self.shape[1], 3))
        if out.shape[0]:
            for part in self.parts:
                part.draw(out, start)
        return out.astype(np.float32)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(self.shape[0])
            return self.rows(start, stop)
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, np.float32)
        step = max(1, STRIP_BYTES // max(1, self.shape[1] * 3 * 8 * (1 + len(self.parts))))
        for start in range(0, self.shape[0], step):
            out[start : start + step] = self.rows(start, min(self.shape[0], start + step))
        return out if dtype is None else out.astype(dtype)
