"""The inputs of a run beyond content, styles and config, grouped in two typed objects.

``Guidance`` holds what steers one 2D run spatially or by value (masks, label → style
mapping, feathering, value ranges, a pull toward an image); ``StackOptions`` says how an
nD content is cut into slices and how the slices are tied together. Both are validated at
construction, like :class:`~.config.StyleConfig`, with one message per bad value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import ConfigError, StyleConfig

#: How a stack slice's starting image follows the previous slice's result.
MOTIONS = ("shift", "none")


def _finite_nonneg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}: must be a finite number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}: must be a finite number >= 0, got {value!r}")
    return float(value)


def _region(index: int, region: Any) -> tuple[float, float, float, float] | None:
    """One style region checked: None or four finite numbers x0 < x1, y0 < y1 (x0, y0 >= 0)."""
    if region is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in region)
    except (TypeError, ValueError):
        x0 = y0 = x1 = y1 = math.nan
    if not all(map(math.isfinite, (x0, y0, x1, y1))) or not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise ConfigError(
            f"style_regions[{index}]: must be None or (x0, y0, x1, y1) in the style's pixels with "
            f"0 <= x0 < x1 and 0 <= y0 < y1, got {region!r}"
        )
    return x0, y0, x1, y1


@dataclass(frozen=True)
class Guidance:
    """Spatial and value-range guidance for one 2D run (every field optional).

    ``content_mask``: an (H, W) label image of the content (nD runs: one for every slice, or
    one per slice). ``label_styles``: label value → style index; labels left out keep the
    content (None: every non-zero label gets the blend of all styles). ``style_masks``: per
    style an (H, W) mask (or None) of the part its statistics come from. ``mask_feather``:
    the Gaussian feather (output pixels) of the keep-content blend; None: about 1 % of the
    long side. ``style_regions``: per style None or a rectangle (x0, y0, x1, y1) in its pixels
    (columns x, rows y, the far edges excluded; fractions allowed) that its statistics come
    from — the texture of one area (with a style mask too: where both are set).
    ``style_contrast_limits`` / ``init_contrast_limits``: value ranges of the
    styles and of ``config.init_image`` (None: their own). ``consistency_image`` (in the
    content's format) with ``consistency_weight`` > 0 pulls the result toward that image.
    """

    content_mask: np.ndarray | None = field(default=None, repr=False)
    label_styles: Mapping[int, int] | None = None
    style_masks: Sequence[np.ndarray | None] | None = field(default=None, repr=False)
    mask_feather: float | None = None
    style_regions: Sequence[tuple[float, float, float, float] | None] | None = None
    style_contrast_limits: Sequence[tuple[float, float] | None] | None = None
    init_contrast_limits: tuple[float, float] | None = None
    consistency_image: np.ndarray | None = field(default=None, repr=False)
    consistency_weight: float = 0.0
    #: The content mask is one slice of a stack's mask, checked as a whole: labels this slice
    #: lacks are no error (the slice keeps its content where nothing is mapped).
    partial_mask: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "consistency_weight", _finite_nonneg("consistency_weight", self.consistency_weight))
        if self.mask_feather is not None:
            set_(self, "mask_feather", _finite_nonneg("mask_feather", self.mask_feather))
        if self.consistency_weight > 0 and self.consistency_image is None:
            raise ConfigError(
                "consistency_image: must be an image array when consistency_weight > 0, got None"
            )
        if self.style_regions is not None:
            set_(self, "style_regions", tuple(_region(i, r) for i, r in enumerate(self.style_regions)))
        if self.label_styles is not None and self.content_mask is None:
            raise ConfigError("label_styles: needs a content_mask (label image) to map labels to styles")

    @property
    def masked(self) -> bool:
        """Whether any mask steers the run (guided Gram matrices)."""
        return (
            self.content_mask is not None
            or any(m is not None for m in self.style_masks or ())
            or any(r is not None for r in self.style_regions or ())
        )


@dataclass(frozen=True)
class StackOptions:
    """How an nD content is stylised slice by slice.

    ``rgb``: whether the last axis is colour (None: napari's guess, a last axis of 3 or 4).
    ``spatial_axes``: the (H, W) axes among the non-colour axes. ``slices``: which slices
    (flat numbers in C order over the leading axes, or index tuples); None: all.
    ``coherence``: start each slice from its finished neighbour's result. ``consistency_weight``:
    with coherence, a loss pulling each slice toward that result. ``motion``: 'shift' moves
    the neighbour's result by the global shift between the two content slices; 'none' not.
    """

    rgb: bool | None = None
    spatial_axes: tuple[int, int] = (-2, -1)
    slices: Sequence[int | tuple[int, ...]] | None = None
    coherence: bool = True
    consistency_weight: float = 0.0
    motion: str = "shift"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "consistency_weight", _finite_nonneg("consistency_weight", self.consistency_weight)
        )
        if self.motion not in MOTIONS:
            raise ConfigError(f"motion: must be one of {', '.join(MOTIONS)}, got {self.motion!r}")
        if not isinstance(self.coherence, bool):
            raise ConfigError(f"coherence: must be True or False, got {self.coherence!r}")
        if self.rgb is not None:
            if not isinstance(self.rgb, (bool, np.bool_)):
                raise ConfigError(f"rgb: must be None, True or False, got {self.rgb!r}")
            object.__setattr__(self, "rgb", bool(self.rgb))


_GUIDANCE_FIELDS = tuple(f.name for f in dataclasses.fields(Guidance))


def take_guidance(guidance: Guidance | None, overrides: dict[str, Any]) -> Guidance:
    """Guidance given as loose keyword arguments (the old interface) moves into one object."""
    loose = {k: overrides.pop(k) for k in _GUIDANCE_FIELDS if k in overrides}
    if guidance is None:
        return Guidance(**loose)
    return dataclasses.replace(guidance, **loose) if loose else guidance


def with_overrides(config: StyleConfig | None, overrides: dict[str, Any]) -> StyleConfig:
    """``config`` (default: the defaults) with ``overrides`` applied and validated."""
    config = config or StyleConfig()
    return config.replace(**overrides) if overrides else config


__all__ = ["MOTIONS", "Guidance", "StackOptions", "take_guidance", "with_overrides"]
