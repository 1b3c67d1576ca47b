"""Stage 2, objective: network features, content and style targets, and the loss at one size.

:class:`StyleTargets` computes the style statistics (Gram matrices, blended or per region)
for an output size once and keeps them, so the scales of a run, the tiles of a tiled run
and the slices of a stack or a batch all reuse them. :class:`Objective` is the loss of
one image size: content features of that size plus the shared style targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .config import StyleConfig
from .images import fit_long_side, resize
from .losses import content_loss, gram, relative_sq_distance, style_loss, tv_loss
from .masks import MIN_REGION_FRACTION, Region, RegionPlan, blend_grams, guided_gram, style_grams
from .runtime import Runtime
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
    """Style statistics per output size, computed on first use and reused after."""

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
        self._blended: dict[tuple[int, int | None], Features] = {}
        self._per_style: dict[tuple[int, int | None, int], Features] = {}

    def resized(self, long_side: int) -> list[torch.Tensor]:
        """The style images resized so that their long side is ``style_scale × long_side``."""
        style_long = max(1, round(long_side * self.config.style_scale))
        return [
            resize(s, fit_long_side(tuple(s.shape[-2:]), style_long)).to(self.device) for s in self.styles
        ]

    def _features_fp32(self, image: torch.Tensor, layers: tuple[str, ...]) -> Features:
        return self.extract(image, layers, autocast=False)

    def blended(self, long_side: int, tile: int | None = None) -> Features:
        """The blend of all styles' Gram matrices for an output of ``long_side`` (optionally in tiles)."""
        key = (long_side, tile)
        if key not in self._blended:
            layers = self.config.style_layers
            with torch.no_grad():
                if tile is None:
                    targets: Features = {}
                    for style, weight in zip(self.resized(long_side), self.blend):
                        feats = self._features_fp32(style, layers)
                        for name in layers:
                            targets[name] = targets.get(name, 0) + gram(feats[name]) * weight
                        del feats
                else:
                    grams = [
                        style_grams(self._features_fp32, s, layers, tile=tile)
                        for s in self.resized(long_side)
                    ]
                    targets = blend_grams(grams, self.blend)
            self._blended[key] = targets
        return self._blended[key]

    def _style(self, index: int, long_side: int, tile: int | None) -> Features:
        key = (long_side, tile, index)
        if key not in self._per_style:
            mask = self.mask_planes[index]
            self._per_style[key] = style_grams(
                self._features_fp32,
                self.resized(long_side)[index],
                self.config.style_layers,
                mask=None if mask is None else mask.to(self.device),
                tile=tile,
            )
        return self._per_style[key]

    def for_regions(
        self, plan: Sequence[RegionPlan], long_side: int, tile: int | None = None
    ) -> list[Features]:
        """Gram targets of each planned region: its style's (masked) Grams, or the blend of all."""
        n = len(self.styles)
        return [
            self._style(r.style, long_side, tile)
            if r.style is not None
            else blend_grams([self._style(i, long_side, tile) for i in range(n)], self.blend)
            for r in plan
        ]


class Objective:
    """The loss at one image size: content features, style targets (global or per region), extras.

    ``regions`` (guided Grams, one :class:`~.masks.Region` per region) replaces the global
    style term; ``consistency`` (an RGB [0, 1] image of the same size) pulls the result
    toward it with ``consistency_weight`` (relative squared pixel distance).
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
        self.regions = regions
        self.consistency = consistency
        self.consistency_weight = float(consistency_weight)
        with torch.no_grad():
            feats = extract(content, config.content_layers, autocast=False)
            self.content_targets = {k: v.detach().float().clone() for k, v in feats.items()}
        self.content_layer_weights = _normalised(config.content_layer_weights, len(config.content_layers))
        self.style_layer_weights = _normalised(config.style_layer_weights, len(config.style_layers))

    def _region_style_loss(self, feats: Features, zero: torch.Tensor) -> torch.Tensor:
        """Σ_layers w_l Σ_regions a_r ‖G_r − T_r‖²/‖T_r‖², a_r = the region's share of the layer."""
        assert self.regions is not None
        total = zero
        for name, weight in zip(self.config.style_layers, self.style_layer_weights):
            f = feats[name]
            for region in self.regions:
                mask, share = region.at(tuple(f.shape[-2:]))
                if share < MIN_REGION_FRACTION:
                    continue
                g = guided_gram(f, mask.to(f.device))
                total = total + weight * share * relative_sq_distance(g, region.targets[name])
        return total

    def loss(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its terms (content, style, and tv/consistency when they are on)."""
        cfg = self.config
        feats = self.extract(image, self.layers)
        c = sum(
            w * content_loss(feats[n], self.content_targets[n])
            for n, w in zip(cfg.content_layers, self.content_layer_weights)
        )
        if self.regions is None:
            s = sum(
                w * style_loss(feats[n], self.style_targets[n])
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
