"""Loss terms. Content and style terms are squared *relative* distances.

``content = ‖F − F_c‖² / ‖F_c‖²`` and ``style = ‖G − G_s‖² / ‖G_s‖²`` with
``G = F Fᵀ / (H·W)`` (spatially normalised Gram matrix). Dividing by the target's own
energy makes each term dimensionless: independent of image size, of a layer's channel
count and activation scale, and of the weight source's input convention. So one set of
default weights balances content and style at any output size, and every layer counts
about equally without hand-tuned per-layer factors. Total variation is a mean over pixels
of the [0, 1] image and is also size-independent.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def gram(features: torch.Tensor) -> torch.Tensor:
    """Spatially normalised Gram matrix (N, C, C) of (N, C, H, W) features, in fp32."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def relative_sq_distance(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖value − target‖² / ‖target‖², computed in fp32."""
    value, target = value.float(), target.float()
    return (value - target).pow(2).sum() / target.pow(2).sum().clamp_min(_EPS)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared feature distance at one content layer."""
    return relative_sq_distance(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Relative squared Gram distance at one style layer."""
    return relative_sq_distance(gram(features), target_gram)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (both directions, summed)."""
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx = image[..., :, 1:] - image[..., :, :-1]
    zero = image.new_zeros(())
    return (dy.pow(2).mean() if dy.numel() else zero) + (dx.pow(2).mean() if dx.numel() else zero)
