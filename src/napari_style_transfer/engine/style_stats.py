"""Style statistics, one kind per ``StyleConfig.style_loss``: how targets are gathered and compared.

Each kind does the same five things, so that the targets (``objective.StyleTargets``) and
the loss (``objective.Objective``) need not know which kind they hold:

- ``part``: the statistic's sums over one piece of a style image's features (a tile, with
  its mask if the style has one); ``add`` accumulates pieces and ``finish`` normalises, so a
  style too large for one forward pass gets the statistics of the whole image;
- ``blend``: several styles' statistics with blend weights, as the *mixture* of their
  feature distributions (a weighted sum of Gram matrices is the mixture's second moment);
- ``target``: what the loss compares with, computed once per output size and cached;
- ``loss``: the relative distance of the features being optimised to a target, over the
  whole image or one region of a label mask.

Kinds: :class:`GramStatistic` (second moments), :class:`GaussianStatistic` (means and
covariances: closed-form W2) and :class:`SlicedStatistic` (whole distributions: sliced W2);
:class:`CombinedStatistic` mixes two of them (``style_loss="gram+sliced"`` and the like).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .losses import (
    flat_features,
    gram,
    random_directions,
    relative_sq_distance,
    sliced_loss,
    wasserstein_loss,
)
from .masks import Region, guided_gram, layer_stride, resize_mask, weighted_gram

_EPS = 1e-12
#: Eigenvalues of a target covariance below this fraction of the largest count as 0 (rank-deficient
#: targets: a deep layer of a small style image has fewer pixels than channels).
EIG_RTOL = 1e-6
#: A pixel belongs to a region (or a style mask) for the sliced loss when its layer mask is at least this.
SELECT_THRESHOLD = 0.5
#: At most so many target samples (feature pixels) per layer are kept for the sliced loss.
MAX_SAMPLES = 2**18

FeaturesFn = Callable[[torch.Tensor, tuple[str, ...]], dict[str, torch.Tensor]]


class GramStatistic:
    """Spatially normalised Gram matrices (second moments), guided by masks (Gatys et al. 2017)."""

    name = "gram"

    def part(self, features: torch.Tensor, mask: torch.Tensor | None, pixels: int) -> Any:
        return weighted_gram(features, mask)

    def add(self, acc: Any, part: Any) -> Any:
        return part if acc is None else tuple(a + b for a, b in zip(acc, part))

    def finish(self, acc: Any) -> Any:
        total, energy = acc
        return total / energy.clamp_min(_EPS)

    def blend(self, raws: Sequence[Any], weights: Sequence[float]) -> Any:
        if len(raws) == 1 and weights[0] == 1.0:
            return raws[0]
        return sum(r * w for r, w in zip(raws, weights))

    def target(self, raw: Any) -> Any:
        return raw

    def loss(self, features: torch.Tensor, target: Any, region: Region | None = None) -> torch.Tensor:
        if region is None:
            return relative_sq_distance(gram(features), target)
        mask = region.at(tuple(features.shape[-2:]))[0]
        return relative_sq_distance(guided_gram(features, mask.to(features.device)), target)


@dataclass(frozen=True)
class GaussianTarget:
    """A target Gaussian: its mean, ``V Λ^½`` of its covariance (non-zero eigenvalues), tr Σ, E‖f‖²."""

    mean: torch.Tensor  # (C,)
    basis: torch.Tensor  # (C, r)
    trace: torch.Tensor  # ()
    energy: torch.Tensor  # ()


class GaussianStatistic(GramStatistic):
    """Means and covariances; the loss is the closed-form W2 distance between Gaussians.

    Raw statistics are the mean and the second raw moment, which blend linearly (as in
    crowsonkb/style-transfer-pytorch); the target's covariance is eigendecomposed once, in
    float64 on the host, when the target is made. Each step then needs only matrix products.
    """

    name = "wasserstein"

    def part(self, features: torch.Tensor, mask: torch.Tensor | None, pixels: int) -> Any:
        second, energy = weighted_gram(features, mask)
        weights = None if mask is None else mask.float().pow(2)
        first = (features.float() if weights is None else features * weights).sum(dim=(-2, -1))
        return first.sum(0), second.sum(0), energy

    def finish(self, acc: Any) -> Any:
        first, second, energy = acc
        energy = energy.clamp_min(_EPS)
        return first / energy, second / energy

    def blend(self, raws: Sequence[Any], weights: Sequence[float]) -> Any:
        if len(raws) == 1 and weights[0] == 1.0:
            return raws[0]
        return tuple(sum(r[k] * w for r, w in zip(raws, weights)) for k in range(2))

    def target(self, raw: Any) -> GaussianTarget:
        mean, second = raw
        device = mean.device
        mean64, second64 = mean.cpu().double(), second.cpu().double()  # MPS has no float64
        cov = second64 - torch.outer(mean64, mean64)
        values, vectors = torch.linalg.eigh((cov + cov.mT) / 2)
        keep = values > EIG_RTOL * values.max().clamp_min(_EPS)
        basis = vectors[:, keep] * values[keep].sqrt()
        return GaussianTarget(
            mean.float(),
            basis.float().to(device),
            values[keep].sum().float().to(device),
            torch.diagonal(second64).sum().float().to(device),
        )

    def loss(self, features: torch.Tensor, target: Any, region: Region | None = None) -> torch.Tensor:
        mask = None if region is None else region.at(tuple(features.shape[-2:]))[0].to(features.device)
        return wasserstein_loss(features, target.mean, target.basis, target.trace, target.energy, mask)


class SlicedStatistic(GramStatistic):
    """Whole feature distributions; the loss is the sliced Wasserstein distance (Heitz et al. 2021).

    Targets are samples of the style's feature vectors (all of them, or at most
    :data:`MAX_SAMPLES` drawn at random). Each evaluation draws as many random directions as
    the layer has channels, on the device, from a generator seeded with ``seed``. With a mask,
    the pixels whose mask is at least :data:`SELECT_THRESHOLD` are the region's samples (or
    the most covered ones, where a small mask covers no pixel of a coarse layer that much).
    """

    name = "sliced"

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}
        self._sampler = torch.Generator().manual_seed(0)  # target subsampling: the same every run

    def part(self, features: torch.Tensor, mask: torch.Tensor | None, pixels: int) -> Any:
        flat = flat_features(features).float()  # (N, C, K)
        samples = flat.permute(0, 2, 1).reshape(-1, flat.shape[1])  # (N·K, C)
        if mask is not None:
            weights = mask.reshape(-1)
            cut = min(SELECT_THRESHOLD, float(weights.max())) if weights.numel() else SELECT_THRESHOLD
            inside = ((weights >= cut) & (weights > 0)).repeat(flat.shape[0])
            samples = samples[inside.to(samples.device)]
        keep = min(1.0, MAX_SAMPLES / max(1, pixels * flat.shape[0]))
        return [self._subsample(samples, round(keep * samples.shape[0]))]

    def _subsample(self, samples: torch.Tensor, count: int, replace: bool = False) -> torch.Tensor:
        k = samples.shape[0]
        if count == k and not replace:
            return samples
        if replace and count > k and k > 0:
            index = torch.randint(k, (count,), generator=self._sampler)
        else:
            index = torch.randperm(k, generator=self._sampler)[:count]
        return samples[index.to(samples.device)]

    def add(self, acc: Any, part: Any) -> Any:
        return part if acc is None else acc + part

    def finish(self, acc: Any) -> Any:
        samples = torch.cat(acc) if len(acc) > 1 else acc[0]
        return self._subsample(samples, min(samples.shape[0], MAX_SAMPLES)).contiguous()

    def blend(self, raws: Sequence[Any], weights: Sequence[float]) -> Any:
        """The mixture: each style's share of the samples in proportion to its weight."""
        if len(raws) == 1:
            return raws[0]
        total, count = sum(weights), max(r.shape[0] for r in raws)
        shares = [self._subsample(r, round(count * w / total), replace=True) for r, w in zip(raws, weights)]
        return torch.cat([s for s in shares if s.shape[0]]).contiguous()

    def generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            g = torch.Generator(device=device)
            if self.seed is None:
                g.seed()
            else:
                g.manual_seed(self.seed)
            self._generators[device] = g
        return self._generators[device]

    def loss(self, features: torch.Tensor, target: Any, region: Region | None = None) -> torch.Tensor:
        flat = flat_features(features)
        if not target.shape[0]:  # no style pixel at this layer (a style mask too small for it)
            return features.new_zeros((), dtype=torch.float32)
        if region is not None:
            selection = region.selection(tuple(features.shape[-2:]), SELECT_THRESHOLD)
            if not selection.numel():
                return features.new_zeros((), dtype=torch.float32)
            flat = flat[..., selection]
        channels = flat.shape[1]
        directions = random_directions(channels, channels, self.generator(flat.device), flat.device)
        return sliced_loss(flat, target, directions)


class CombinedStatistic(GramStatistic):
    """Two statistics of the same features; the loss is ``(1 − mix)·first + mix·second``.

    Gram matrices alone miss the shape of the feature distributions (flat colour areas come
    out washed out), the sliced loss alone keeps less of the large structures: the mixture
    trades one against the other with one number. Both parts are computed from the features
    of the one forward pass (nothing extra runs through the network); gathering, blending and
    targets go pairwise (tuples), so masks, tiles, stacks and style blends work as for each.

    Scale: each part's loss is already a squared *relative* distance (divided by the target's
    own energy: ‖G_s‖², Σ sorted target projections², E‖f_s‖²), so both are dimensionless and
    of comparable size (the sample pair, content start, mean over the five default layers:
    Gram 0.8, sliced 0.3), and the default ``style_weight`` keeps its meaning. Losses are fp32.
    """

    def __init__(self, first: GramStatistic, second: GramStatistic, mix: float = 0.5):
        if not 0.0 < mix < 1.0:
            raise ValueError(f"mix must be strictly between 0 and 1, got {mix!r}")
        self.parts = (first, second)
        self.weights = (1.0 - float(mix), float(mix))
        self.name = f"{first.name}+{second.name}"

    def part(self, features: torch.Tensor, mask: torch.Tensor | None, pixels: int) -> Any:
        return tuple(s.part(features, mask, pixels) for s in self.parts)

    def add(self, acc: Any, part: Any) -> Any:
        accs = (None,) * len(self.parts) if acc is None else acc
        return tuple(s.add(a, p) for s, a, p in zip(self.parts, accs, part))

    def finish(self, acc: Any) -> Any:
        return tuple(s.finish(a) for s, a in zip(self.parts, acc))

    def blend(self, raws: Sequence[Any], weights: Sequence[float]) -> Any:
        return tuple(s.blend([r[k] for r in raws], weights) for k, s in enumerate(self.parts))

    def target(self, raw: Any) -> Any:
        return tuple(s.target(r) for s, r in zip(self.parts, raw))

    def part_losses(
        self, features: torch.Tensor, target: Any, region: Region | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Each part's own (unweighted, fp32) loss: for reports and tests of the mixture."""
        return tuple(s.loss(features, t, region).float() for s, t in zip(self.parts, target))

    def loss(self, features: torch.Tensor, target: Any, region: Region | None = None) -> torch.Tensor:
        first, second = self.part_losses(features, target, region)
        return self.weights[0] * first + self.weights[1] * second


STATISTICS = {"gram": GramStatistic, "wasserstein": GaussianStatistic, "sliced": SlicedStatistic}
#: The share of the second statistic of a combination when none is given (``StyleConfig.style_loss_mix``).
DEFAULT_MIX = 0.5


def style_statistic(name: str, seed: int | None = None, mix: float = DEFAULT_MIX) -> GramStatistic:
    """The statistic of ``StyleConfig.style_loss`` ``name`` (``seed``: the sliced loss's directions).

    ``"a+b"`` combines two kinds, ``mix`` being ``b``'s share of the loss (``style_loss_mix``).
    """
    if "+" in name:
        first, second = name.split("+", 1)
        return CombinedStatistic(style_statistic(first, seed), style_statistic(second, seed), mix)
    if name == "sliced":
        return SlicedStatistic(seed)
    return STATISTICS[name]()


def style_statistics(
    features: FeaturesFn,
    image: torch.Tensor,
    layers: tuple[str, ...],
    statistic: GramStatistic,
    mask: torch.Tensor | None = None,
    tile: int | None = None,
    margin: int = 64,
) -> dict[str, Any]:
    """The raw statistics (``statistic.finish``) of an image's features, guided by ``mask``, without grad.

    With ``tile`` the image is processed in tiles of about that many pixels (plus ``margin``
    on each side for context) and the sums are accumulated, so an image too large for one
    forward pass still gets the statistics of the whole image.
    """
    h, w = image.shape[-2:]
    with torch.no_grad():
        if tile is None or max(h, w) <= tile + 2 * margin:
            feats = features(image, layers)
            out = {}
            for name in layers:
                f = feats[name]
                m = None if mask is None else resize_mask(mask, tuple(f.shape[-2:])).clamp(0, 1).to(f.device)
                out[name] = statistic.finish(
                    statistic.add(None, statistic.part(f, m, f.shape[-2] * f.shape[-1]))
                )
            return out
        return _tiled_statistics(features, image, layers, statistic, mask, tile, margin)


def _tiled_statistics(
    features: FeaturesFn,
    image: torch.Tensor,
    layers: tuple[str, ...],
    statistic: GramStatistic,
    mask: torch.Tensor | None,
    tile: int,
    margin: int,
) -> dict[str, Any]:
    h, w = image.shape[-2:]
    tile = max(16, tile // 16 * 16)
    margin = max(16, margin // 16 * 16)
    acc: dict[str, Any] = dict.fromkeys(layers)
    layer_masks: dict[str, torch.Tensor | None] = {}
    pixels: dict[str, int] = {}
    for name in layers:
        s = layer_stride(name)
        shape = (max(1, h // s), max(1, w // s))
        pixels[name] = shape[0] * shape[1]
        layer_masks[name] = None if mask is None else resize_mask(mask, shape).clamp(0, 1)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            cy0, cx0 = max(0, y0 - margin), max(0, x0 - margin)
            cy1, cx1 = min(h, y1 + margin), min(w, x1 + margin)
            feats = features(image[..., cy0:cy1, cx0:cx1], layers)
            for name in layers:
                s = layer_stride(name)
                f = feats[name]
                fy0, fx0 = (y0 - cy0) // s, (x0 - cx0) // s
                fy1 = min(f.shape[-2], fy0 + max(1, (y1 - y0) // s))
                fx1 = min(f.shape[-1], fx0 + max(1, (x1 - x0) // s))
                part = f[..., fy0:fy1, fx0:fx1]
                m = None
                lm = layer_masks[name]
                if lm is not None:
                    gy0, gx0 = y0 // s, x0 // s
                    m = lm[..., gy0 : gy0 + part.shape[-2], gx0 : gx0 + part.shape[-1]].to(f.device)
                    if tuple(m.shape[-2:]) != tuple(part.shape[-2:]):
                        part = part[..., : m.shape[-2], : m.shape[-1]]
                acc[name] = statistic.add(acc[name], statistic.part(part, m, pixels[name]))
            del feats
    return {name: statistic.finish(acc[name]) for name in layers}


def style_grams(
    features: FeaturesFn,
    image: torch.Tensor,
    layers: tuple[str, ...],
    mask: torch.Tensor | None = None,
    tile: int | None = None,
    margin: int = 64,
) -> dict[str, torch.Tensor]:
    """Gram matrices (fp32) of an image's features, optionally guided by a mask and in tiles."""
    return style_statistics(features, image, layers, GramStatistic(), mask, tile, margin)


__all__ = [
    "DEFAULT_MIX",
    "EIG_RTOL",
    "MAX_SAMPLES",
    "SELECT_THRESHOLD",
    "STATISTICS",
    "CombinedStatistic",
    "GaussianStatistic",
    "GaussianTarget",
    "GramStatistic",
    "SlicedStatistic",
    "style_grams",
    "style_statistic",
    "style_statistics",
]
