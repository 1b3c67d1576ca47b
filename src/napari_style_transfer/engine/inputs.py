"""Stage 1, inputs: user arrays → RGB [0, 1] images, colour handling and mask planning.

Styles are converted once per :class:`~.stylizer.Stylizer` (they do not depend on the
content); each content is converted when its run starts. Everything here is checked
before anything heavy (the network, the targets) is built, so bad input fails at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import color
from .config import ConfigError, StyleConfig
from .guidance import Guidance
from .images import ImageInfo, alpha_weights, colour_result_info, is_single_image, to_rgb01, to_tensor
from .masks import RegionPlan, check_labels, plan_regions, region_plane, to_plane_tensor


def as_style_list(styles: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One style array or a sequence of them → a non-empty list."""
    if is_single_image(styles):
        return [styles]  # type: ignore[list-item]
    styles = list(styles)
    if not styles:
        raise ConfigError("styles: at least one style image is required")
    return styles


@dataclass
class StyleImages:
    """The style images as RGB [0, 1], their normalised blend weights and optional masks."""

    rgbs: list[np.ndarray]
    blend: list[float]
    mask_planes: list[torch.Tensor | None]  # (1, 1, H, W) 0/1 per style, None: the whole image

    @property
    def pixels(self) -> list[int]:
        return [s.shape[0] * s.shape[1] for s in self.rgbs]

    def largest_pixels(self, config: StyleConfig, output_long_side: int) -> int:
        """Pixels of the largest style image once resized for an output of ``output_long_side``."""
        return max(
            (
                round(
                    s.shape[0] * s.shape[1] * (config.style_scale * output_long_side / max(s.shape[:2])) ** 2
                )
                for s in self.rgbs
            ),
            default=0,
        )


def convert_styles(
    styles: np.ndarray | Sequence[np.ndarray], config: StyleConfig, guidance: Guidance
) -> StyleImages:
    """Check and convert the style images (and their masks) once."""
    style_list = as_style_list(styles)
    blend = list(config.style_blend_weights or [1.0] * len(style_list))
    if len(blend) != len(style_list):
        raise ConfigError(
            f"style_blend_weights: must have one weight per style image ({len(style_list)}), got {len(blend)}"
        )
    total = sum(blend)
    limits = guidance.style_contrast_limits
    rgbs = []
    for i, style in enumerate(style_list):
        name = f"style {i + 1}" if len(style_list) > 1 else "style"
        rgbs.append(to_rgb01(style, limits[i] if limits else None, name=name)[0])
    planes = _style_mask_planes(guidance, rgbs)
    return StyleImages(rgbs, [w / total for w in blend], planes)


def _style_mask_planes(guidance: Guidance, rgbs: list[np.ndarray]) -> list[torch.Tensor | None]:
    """Per style, the part its statistics come from: its mask, its region, both (where both are set)."""
    planes: list[torch.Tensor | None] = [None] * len(rgbs)
    for name, given in (("style_masks", guidance.style_masks), ("style_regions", guidance.style_regions)):
        if given is not None and len(given) != len(rgbs):
            raise ConfigError(
                f"{name}: must have one entry (or None) per style image ({len(rgbs)}), got {len(given)}"
            )
    masks = list(guidance.style_masks or [None] * len(rgbs))
    regions = list(guidance.style_regions or [None] * len(rgbs))
    for i, (mask, region, rgb) in enumerate(zip(masks, regions, rgbs)):
        if mask is None and region is None:
            continue
        keep = np.ones(rgb.shape[:2], dtype=bool)
        if mask is not None:
            keep &= check_labels(mask, rgb.shape[:2], name=f"style_masks[{i}]") != 0
            if not keep.any():
                raise ConfigError(
                    f"style_masks[{i}]: must mark part of the style image (non-zero), got an empty mask"
                )
        if region is not None:
            keep &= region_mask(region, rgb.shape[:2], i)
            if not keep.any():
                raise ConfigError(
                    f"style_regions[{i}]: the region and the style mask do not overlap; nothing of style "
                    f"{i + 1} is left"
                )
        planes[i] = to_plane_tensor(keep.astype(np.float32))
    return planes


def region_mask(region: Sequence[float], shape: tuple[int, int], index: int = 0) -> np.ndarray:
    """The pixels whose centres lie in the rectangle (x0, y0, x1, y1) (at least one); refused off the image."""
    x0, y0, x1, y1 = region
    h, w = shape
    if x0 >= w or y0 >= h:
        raise ConfigError(
            f"style_regions[{index}]: must overlap the style image ({w}×{h} px), got {tuple(region)!r}"
        )
    rows = np.arange(h) + 0.5
    cols = np.arange(w) + 0.5
    inside_y = (rows >= y0) & (rows < y1)
    inside_x = (cols >= x0) & (cols < x1)
    if not inside_y.any():  # thinner than a pixel: the pixel it is in
        inside_y[min(h - 1, int(y0))] = True
    if not inside_x.any():
        inside_x[min(w - 1, int(x0))] = True
    return inside_y[:, None] & inside_x[None, :]


@dataclass
class MaskPlan:
    """Which style goes where: one region plane per planned region, and where the content is kept."""

    regions: list[RegionPlan] | None = None  # None: no guidance, the plain Gatys loss
    region_planes: list[torch.Tensor] | None = None  # (1, 1, H, W) per region
    keep_plane: torch.Tensor | None = None  # 1 where stylised, 0 where the content is kept

    @property
    def guided(self) -> bool:
        return self.regions is not None


def plan_masks(
    guidance: Guidance,
    content_shape: tuple[int, int],
    styles: StyleImages,
    alpha: np.ndarray | None = None,
) -> MaskPlan:
    """Check the content mask against the content and plan the regions (guided Gram matrices).

    ``alpha`` (an (H, W) weight in [0, 1], from :func:`~.images.alpha_weights`) weighs every
    region: transparent pixels do not count in the style statistics (they are put back as
    they were when the result is rendered).
    """
    weight = None if alpha is None else alpha.astype(np.float32)
    if guidance.content_mask is not None:
        labels = check_labels(guidance.content_mask, content_shape, name="content_mask")
        regions = plan_regions(
            labels, guidance.label_styles, len(styles.rgbs), strict=not guidance.partial_mask
        )
        planes = [region_plane(labels, r.labels) for r in regions]
        if weight is not None:
            planes = [plane * weight for plane in planes]
        union = region_plane(labels, [v for r in regions for v in r.labels])
        keep = None if union.all() else to_plane_tensor(union)
        return MaskPlan(regions, [to_plane_tensor(p) for p in planes], keep)
    if weight is not None or any(p is not None for p in styles.mask_planes):
        plane = torch.ones((1, 1, *content_shape)) if weight is None else to_plane_tensor(weight)
        return MaskPlan([RegionPlan((), None)], [plane])
    return MaskPlan()


@dataclass
class ContentInputs:
    """One content converted: what the loss compares against and what the result is rendered from."""

    info: ImageInfo  # how to turn a result back into the content's format
    content_rgb: np.ndarray  # the content's own colours (kept regions, chroma)
    transfer_content: torch.Tensor  # (1, 3, H, W) what the content loss sees (luminance when keeping colours)
    init_rgb: np.ndarray | None
    consistency: torch.Tensor | None
    chroma_source: torch.Tensor | None  # luminance transfer: the colours put back on the result
    styles: list[torch.Tensor]  # (1, 3, h, w) per style, as used for this content
    styles_follow_content: bool  # colour-matched styles: their targets cannot be shared with other contents
    masks: MaskPlan

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.content_rgb.shape[:2])  # type: ignore[return-value]


def convert_content(
    content: np.ndarray,
    styles: StyleImages,
    style_tensors: list[torch.Tensor],
    config: StyleConfig,
    guidance: Guidance,
) -> ContentInputs:
    """Convert one content (and its start and consistency images); colour handling happens here, once."""
    content_rgb, info = to_rgb01(content, config.contrast_limits, name="content")
    init_rgb = None
    if config.init == "image":
        init_rgb = to_rgb01(config.init_image, guidance.init_contrast_limits, name="init_image")[0]
    consistency_rgb = None
    if guidance.consistency_image is not None and guidance.consistency_weight > 0:
        consistency_rgb = to_rgb01(
            guidance.consistency_image, config.contrast_limits, name="consistency_image"
        )[0]
    transfer_content = content_rgb
    style_rgbs = None
    if config.preserve_colors == "histogram":
        style_rgbs = [color.match_color_histogram(s, content_rgb) for s in styles.rgbs]
    elif config.preserve_colors == "luminance":
        style_rgbs = [color.match_luminance(s, content_rgb) for s in styles.rgbs]
        transfer_content = color.luminance_image(content_rgb)
        if init_rgb is not None:
            init_rgb = color.luminance_image(init_rgb)
        if consistency_rgb is not None:
            consistency_rgb = color.luminance_image(consistency_rgb)
    masks = plan_masks(guidance, tuple(content_rgb.shape[:2]), styles, alpha_weights(info))
    return ContentInputs(
        info=colour_result_info(info) if config.result_colour == "style" else info,
        content_rgb=content_rgb,
        transfer_content=to_tensor(transfer_content),
        init_rgb=init_rgb,
        consistency=to_tensor(consistency_rgb) if consistency_rgb is not None else None,
        chroma_source=to_tensor(content_rgb) if config.preserve_colors == "luminance" else None,
        styles=style_tensors if style_rgbs is None else [to_tensor(s) for s in style_rgbs],
        styles_follow_content=style_rgbs is not None,
        masks=masks,
    )


__all__ = [
    "ContentInputs",
    "MaskPlan",
    "StyleImages",
    "as_style_list",
    "convert_content",
    "convert_styles",
    "plan_masks",
]
