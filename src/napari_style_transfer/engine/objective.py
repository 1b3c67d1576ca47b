"""Stage 2, objective: network features, content and style targets, and the loss at one size.

:class:`StyleTargets` computes the style statistics (Gram matrices, Gaussians or feature
samples, see ``style_stats.py``; blended or per region)
for an output size once and keeps them, so the scales of a run, the tiles of a tiled run
and the slices of a stack or a batch all reuse them. :class:`Objective` is the loss of
one image size: content features of that size plus the shared style targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..arrays import fit_long_side
from .config import StyleConfig
from .images import resize
from .losses import content_loss, relative_sq_distance, tv_loss
from .masks import MIN_REGION_FRACTION, Region, RegionPlan
from .matting import MattingLaplacian
from .runtime import Runtime
from .style_stats import style_statistic, style_statistics
from .vgg import CompiledOrEager, InputConvention, VGGFeatures, preprocess

Features = dict[str, torch.Tensor]


class FeatureExtractor:
    """The network as the loss uses it: RGB [0, 1] image → activations, in the runtime's precision."""

    def __init__(self, net: VGGFeatures, convention: InputConvention, runtime: Runtime):
        self.net, self.convention, self.runtime = net, convention, runtime

    def __call__(self, image: torch.Tensor, layers: tuple[str, ...], autocast: bool = True) -> Features:
        """Activations of ``layers``; ``autocast=False`` (targets) runs fp32 and never compiled."""
        runtime = self.runtime
        x = preprocess(image, self.convention)
        if runtime.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        net = self.net
        dtype = runtime.autocast_dtype
        if autocast and dtype is not None:
            # What autocast would do for this conv/ReLU/pool stack, without re-casting the weights.
            net, x = net.cast(dtype), x.to(dtype)
        if runtime.compile and autocast:  # the optimisation loop's evaluations, not the one-off targets
            return net.compiled()(x, layers)
        return net(x, layers)

    def compiled(self) -> CompiledOrEager | None:
        """The compiled network the loop's evaluations run through (None: not compiling)."""
        if not self.runtime.compile:
            return None
        dtype = self.runtime.autocast_dtype
        return (self.net if dtype is None else self.net.cast(dtype)).compiled()


class StyleTargets:
    """Style targets per output size (and tile size), computed on first use and reused after.

    What a target is depends on ``config.style_loss`` (see ``style_stats.py``): Gram matrices,
    Gaussians (mean and covariance, eigendecomposed once) or feature samples.
    """

    def __init__(
        self,
        extract: FeatureExtractor,
        config: StyleConfig,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float],
        mask_planes: Sequence[torch.Tensor | None],
        device: torch.device,
    ):
        self.extract, self.config, self.device = extract, config, device
        self.styles, self.blend, self.mask_planes = list(styles), list(blend), list(mask_planes)
        self.statistic = style_statistic(config.style_loss)
        self._targets: dict[tuple[int, int | None, int | None, bool], Features] = {}
        self._per_style: dict[tuple[int, int | None, int], Features] = {}

    def resized(self, long_side: int) -> list[torch.Tensor]:
        """The style images resized so that their long side is ``style_scale × long_side``."""
        return [self._resized(s, long_side) for s in self.styles]

    def _resized(self, style: torch.Tensor, long_side: int) -> torch.Tensor:
        style_long = max(1, round(long_side * self.config.style_scale))
        return resize(style, fit_long_side(tuple(style.shape[-2:]), style_long)).to(self.device)

    def _features_fp32(self, image: torch.Tensor, layers: tuple[str, ...]) -> Features:
        return self.extract(image, layers, autocast=False)

    def _raw(self, index: int, long_side: int, tile: int | None, masked: bool) -> Features:
        """One style's raw statistics (with its mask if ``masked``); kept only for guided runs."""
        key = (long_side, tile, index)
        if masked and key in self._per_style:
            return self._per_style[key]
        mask = self.mask_planes[index] if masked else None
        raw = style_statistics(
            self._features_fp32,
            self._resized(self.styles[index], long_side),
            self.config.style_layers,
            self.statistic,
            mask=None if mask is None else mask.to(self.device),
            tile=tile,
        )
        if masked:
            self._per_style[key] = raw
        return raw

    def _target(self, long_side: int, tile: int | None, style: int | None, masked: bool) -> Features:
        """The targets of one style (``style``) or of the blend of all (None)."""
        key = (long_side, tile, style, masked)
        if key not in self._targets:
            stat = self.statistic
            indices = range(len(self.styles)) if style is None else [style]
            weights = self.blend if style is None else [1.0]
            with torch.no_grad():
                raws = [self._raw(i, long_side, tile, masked) for i in indices]
                self._targets[key] = {
                    name: stat.target(stat.blend([r[name] for r in raws], weights))
                    for name in self.config.style_layers
                }
            del raws
        return self._targets[key]

    def blended(self, long_side: int, tile: int | None = None) -> Features:
        """The targets of the blend of all styles for an output of ``long_side`` (optionally in tiles)."""
        return self._target(long_side, tile, None, masked=False)

    def for_regions(
        self, plan: Sequence[RegionPlan], long_side: int, tile: int | None = None
    ) -> list[Features]:
        """The targets of each planned region: its style's (masked) statistics, or the blend of all."""
        return [self._target(long_side, tile, r.style, masked=True) for r in plan]


class Objective:
    """The loss at one image size: content features, style targets (global or per region), extras.

    ``regions`` (guided statistics, one :class:`~.masks.Region` per region) replaces the global
    style term; ``consistency`` (an RGB [0, 1] image of the same size) pulls the result
    toward it with ``consistency_weight`` (relative squared pixel distance). With
    ``structure_weight`` > 0, the matting Laplacian of ``content`` (this scale's, tile's or
    slice's: see ``matting.py``) keeps the result a local affine recolouring of it.
    """

    def __init__(
        self,
        extract: FeatureExtractor,
        config: StyleConfig,
        content: torch.Tensor,
        *,
        style_targets: Features | None = None,
        regions: list[Region] | None = None,
        consistency: torch.Tensor | None = None,
        consistency_weight: float = 0.0,
    ):
        self.extract, self.config = extract, config
        self.layers = config.all_layers
        self.style_targets = style_targets or {}
        self.statistic = style_statistic(config.style_loss, config.seed, config.style_loss_mix)
        self.regions = regions
        self.consistency = consistency
        self.consistency_weight = float(consistency_weight)
        with torch.no_grad():
            feats = extract(content, config.content_layers, autocast=False)
            self.content_targets = {k: v.detach().float().clone() for k, v in feats.items()}
        self.structure = MattingLaplacian(content) if config.structure_weight > 0 else None
        self.content_layer_weights = _normalised(config.content_layer_weights, len(config.content_layers))
        self.style_layer_weights = _normalised(config.style_layer_weights, len(config.style_layers))

    def _region_style_loss(self, feats: Features, zero: torch.Tensor) -> torch.Tensor:
        """Σ_layers w_l Σ_regions a_r d(region r's statistics, T_r), a_r = the region's share of the layer."""
        assert self.regions is not None
        total = zero
        for name, weight in zip(self.config.style_layers, self.style_layer_weights):
            f = feats[name]
            for region in self.regions:
                share = region.at(tuple(f.shape[-2:]))[1]
                if share < MIN_REGION_FRACTION:
                    continue
                total = total + weight * share * self.statistic.loss(f, region.targets[name], region)
        return total

    def loss(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its terms (content, style, and tv/structure/consistency when they are on)."""
        cfg = self.config
        feats = self.extract(image, self.layers)
        c = sum(
            w * content_loss(feats[n], self.content_targets[n])
            for n, w in zip(cfg.content_layers, self.content_layer_weights)
        )
        if self.regions is None:
            s = sum(
                w * self.statistic.loss(feats[n], self.style_targets[n])
                for n, w in zip(cfg.style_layers, self.style_layer_weights)
            )
        else:
            s = self._region_style_loss(feats, image.new_zeros((), dtype=torch.float32))
        total = cfg.content_weight * c + cfg.style_weight * s
        terms = {"content": c, "style": s}
        if cfg.tv_weight > 0:
            tv = tv_loss(image)
            total = total + cfg.tv_weight * tv
            terms["tv"] = tv
        if self.structure is not None:
            st = self.structure.energy(image)
            total = total + cfg.structure_weight * st
            terms["structure"] = st
        if self.consistency is not None and self.consistency_weight > 0:
            k = relative_sq_distance(image, self.consistency)
            total = total + self.consistency_weight * k
            terms["consistency"] = k
        terms["total"] = total
        return total, terms


def _normalised(weights: tuple[float, ...] | None, count: int) -> tuple[float, ...]:
    weights = weights or (1.0,) * count
    total = sum(weights)
    return tuple(w / total for w in weights)


__all__ = ["FeatureExtractor", "Features", "Objective", "StyleTargets"]
