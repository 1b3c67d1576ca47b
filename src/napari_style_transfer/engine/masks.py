"""Spatial control (Gatys et al. 2017, "Controlling perceptual factors"): guided Gram matrices.

A label image says which style goes where. For each region the Gram matrix is computed on
features weighted by the region's mask (downsampled to each layer's resolution) and
normalised by the mask's energy, ``G_r = (F∘m)(F∘m)ᵀ / Σm²``; with ``m ≡ 1`` this is the
plain spatially normalised Gram matrix of ``losses.gram``. A style image may have its own
mask, so that its statistics come only from that part of it. Pixels whose label maps to no
style keep the content: the result is blended with the content through a Gaussian-feathered
mask at the end. The other style statistics (``style_stats.py``) use the same masks: masked
means and covariances, or the pixels a region covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .config import ConfigError
from .images import ImageError, resize
from .losses import gram
from .vgg import LAYER_INDEX, LAYER_NAMES

#: A region whose (downsampled) mask covers less than this fraction of a layer is skipped there.
MIN_REGION_FRACTION = 1e-4
#: Device types without antialiased bilinear resizing (Apple MPS): masks are resized on the host there.
HOST_RESIZE_DEVICES = frozenset({"mps"})


def resize_mask(mask: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A (1, 1, H, W) mask resized to ``shape`` (antialiased when shrinking), on its own device.

    MPS has no antialiased bilinear mode: there the mask is resized on the host and copied
    back (masks are single-channel and resized once per layer size).
    """
    if mask.device.type in HOST_RESIZE_DEVICES:
        return resize(mask.cpu(), shape).to(mask.device)
    return resize(mask, shape)


def check_labels(mask: object, shape: tuple[int, int], name: str = "content_mask") -> np.ndarray:
    """A label image (H, W) as int64; bool masks become labels 0/1."""
    if hasattr(mask, "__array__") and not isinstance(mask, np.ndarray):
        mask = np.asarray(mask)
    if not isinstance(mask, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array of integer labels, got {type(mask).__name__}")
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ImageError(f"{name}: shape {mask.shape} is not a 2D label image (H, W)")
    if tuple(mask.shape) != tuple(shape):
        raise ImageError(f"{name}: shape {mask.shape} does not match the image's (H, W) = {tuple(shape)}")
    if mask.dtype.kind == "b":
        return mask.astype(np.int64)
    if mask.dtype.kind in "iu":
        if (
            mask.dtype.kind == "u"
            and mask.dtype.itemsize == 8
            and mask.size
            and mask.max() > np.iinfo(np.int64).max
        ):
            return mask.astype(np.uint64)  # labels above 2**63 do not fit int64: kept as they are
        return mask.astype(np.int64)
    if mask.dtype.kind == "f" and np.all(np.isfinite(mask)) and np.all(mask == np.round(mask)):
        if mask.size and np.abs(mask).max() >= 2.0**63:
            raise ImageError(f"{name}: float labels must lie within ±2**63 (use an integer label image)")
        return mask.astype(np.int64)
    raise ImageError(
        f"{name}: dtype {mask.dtype} is not a label image (use integer labels or a boolean mask)"
    )


@dataclass(frozen=True)
class RegionPlan:
    """One guided region: the label values it covers and its style (None: the blend of all styles)."""

    labels: tuple[int, ...]
    style: int | None


def plan_regions(
    labels: np.ndarray, label_styles: Mapping[int, int] | None, n_styles: int, strict: bool = True
) -> list[RegionPlan]:
    """Group labels by their style (one region per style); unmapped labels keep the content.

    ``label_styles`` maps label value → 0-based style index. None: every non-zero label gets
    the blend of all styles (the mask marks where to stylise). ``strict``: a mapped label
    missing from ``labels``, or nothing to stylise, is an error; with ``strict=False`` (one
    slice of a stack whose whole mask was checked) such a slice just keeps its content.
    """
    present = [int(v) for v in np.unique(labels)]
    if label_styles is None:
        chosen = tuple(v for v in present if v != 0)
        if not chosen and not strict:
            return []
        if not chosen:
            raise ConfigError(
                "content_mask: holds no non-zero label, so nothing would be stylised; "
                "label the parts to stylise, or leave the mask out"
            )
        return [RegionPlan(chosen, None)]
    if not isinstance(label_styles, Mapping):
        raise ConfigError(
            f"label_styles: must be None or a mapping {{label value: style index}}, got {label_styles!r}"
        )
    by_style: dict[int, list[int]] = {}
    for label, style in label_styles.items():
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise ConfigError(
                f"label_styles: must map integer label values to style indices, got label {label!r}"
            )
        if isinstance(style, bool) or not isinstance(style, (int, np.integer)) or not 0 <= style < n_styles:
            raise ConfigError(
                f"label_styles: must map labels to style indices 0 to {n_styles - 1} "
                f"({n_styles} style image(s)), got {int(label)}: {style!r}"
            )
        if int(label) not in present:
            if not strict:
                continue
            raise ConfigError(
                f"label_styles: label {int(label)} is not in the mask (its labels: {_listed(present)})"
            )
        by_style.setdefault(int(style), []).append(int(label))
    if not by_style and not strict:
        return []
    if not by_style:
        raise ConfigError("label_styles: maps no label to a style, so nothing would be stylised")
    return [RegionPlan(tuple(sorted(v)), s) for s, v in sorted(by_style.items())]


def _listed(values: Sequence[int], most: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def region_plane(labels: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """(H, W) float32: 1 where the label is one of ``values``."""
    return np.isin(labels, np.asarray(values, dtype=labels.dtype)).astype(np.float32)


def to_plane_tensor(plane: np.ndarray) -> torch.Tensor:
    """(H, W) numpy → (1, 1, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))[None, None]


def gaussian_blur(plane: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (1, 1, H, W) tensor (reflecting borders)."""
    if sigma <= 0:
        return plane
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(plane.device)
    h, w = plane.shape[-2:]
    out = plane
    if w > 1:
        pad = min(radius, w - 1)
        out = F.conv2d(
            F.pad(out, (pad, pad, 0, 0), mode="reflect"),
            kernel[radius - pad : radius + pad + 1].view(1, 1, 1, -1),
        )
    if h > 1:
        pad = min(radius, h - 1)
        out = F.conv2d(
            F.pad(out, (0, 0, pad, pad), mode="reflect"),
            kernel[radius - pad : radius + pad + 1].view(1, 1, -1, 1),
        )
    return out


def feathered(plane: torch.Tensor, shape: tuple[int, int], sigma: float) -> torch.Tensor:
    """A binary (1, 1, H, W) mask resized to ``shape`` and Gaussian-feathered (values in [0, 1])."""
    return gaussian_blur(resize_mask(plane, shape), sigma).clamp(0, 1)


def default_feather(shape: tuple[int, int]) -> float:
    """Feather width (Gaussian sigma, pixels) for an output of ``shape``: about 1 % of the long side."""
    return max(1.0, max(shape) / 100)


def layer_stride(layer: str) -> int:
    """Input pixels per feature pixel at ``layer`` (2 per pooling layer before it)."""
    return 2 ** sum(1 for name in LAYER_NAMES[: LAYER_INDEX[layer]] if name.startswith("pool"))


def weighted_gram(features: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised guided Gram Σ (F∘m)(F∘m)ᵀ (N, C, C) and the mask energy Σm², in fp32."""
    n, c, h, w = features.shape
    if mask is not None:
        features = features * mask.float()  # fp32 from here on
        energy = mask.float().pow(2).sum()
    else:
        energy = features.new_tensor(float(h * w), dtype=torch.float32)
    return gram(features) * (h * w), energy


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gram matrix of ``features`` weighted by ``mask`` (1, 1, h, w), normalised by Σm²."""
    total, energy = weighted_gram(features, mask)
    return total / energy.clamp_min(1e-12)


@dataclass
class Region:
    """A region of the image being optimised: its mask at the image's size and its Gram targets."""

    mask: torch.Tensor  # (1, 1, H, W) float in [0, 1]
    targets: dict[str, torch.Tensor]
    _layer_masks: dict[tuple[int, int], tuple[torch.Tensor, float]] = field(default_factory=dict, repr=False)
    _selections: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, repr=False)

    def at(self, shape: tuple[int, int]) -> tuple[torch.Tensor, float]:
        """The mask resized to a feature map's (h, w), and the fraction of it that it covers."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._layer_masks:
            m = resize_mask(self.mask, key).clamp(0, 1)
            self._layer_masks[key] = (m, float(m.pow(2).mean()))
        return self._layer_masks[key]

    def selection(self, shape: tuple[int, int], threshold: float = 0.5) -> torch.Tensor:
        """Flat indices of the pixels of a feature map's (h, w) that the mask covers at least ``threshold``
        (or as much as it covers any: a small region keeps its most covered pixels at a coarse layer).

        Computed once per size (the one host synchronisation is at the first step).
        """
        key = (int(shape[0]), int(shape[1]))
        if key not in self._selections:
            flat = self.at(key)[0].reshape(-1)
            cut = min(threshold, float(flat.max())) if flat.numel() else threshold
            self._selections[key] = torch.nonzero((flat >= cut) & (flat > 0)).reshape(-1)
        return self._selections[key]


__all__ = [
    "HOST_RESIZE_DEVICES",
    "MIN_REGION_FRACTION",
    "Region",
    "RegionPlan",
    "check_labels",
    "default_feather",
    "feathered",
    "gaussian_blur",
    "guided_gram",
    "layer_stride",
    "plan_regions",
    "region_plane",
    "resize_mask",
    "weighted_gram",
]
