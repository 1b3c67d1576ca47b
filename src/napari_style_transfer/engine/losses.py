"""Loss terms. Content and style terms are squared *relative* distances.

``content = ‖F − F_c‖² / ‖F_c‖²`` and ``style = ‖G − G_s‖² / ‖G_s‖²`` with
``G = F Fᵀ / (H·W)`` (spatially normalised Gram matrix). Dividing by the target's own
energy makes each term dimensionless: independent of image size, of a layer's channel
count and activation scale, and of the weight source's input convention. So one set of
default weights balances content and style at any output size, and every layer counts
about equally without hand-tuned per-layer factors. Total variation is a mean over pixels
of the [0, 1] image and is also size-independent.

Two more style statistics (``StyleConfig.style_loss``), each a squared *relative* distance
too, divided by the target's mean squared feature ``E‖f_s‖²``:

- ``wasserstein``: the closed-form W2 distance between the Gaussians with the features'
  means and covariances, ``‖μ − μ_s‖² + tr Σ + tr Σ_s − 2 tr (Σ_s^½ Σ Σ_s^½)^½``;
- ``sliced``: the sliced Wasserstein distance (Heitz et al., CVPR 2021): the features
  projected on random unit directions, sorted, against the sorted projected target.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

_EPS = 1e-12

#: The Gram's fp32 copy of half-precision features is kept for the backward pass (one cast a step
#: instead of two) when it is at most this large. Small images are bound by kernel launches, where
#: a cast saved counts; at large ones the copies would add to the peak that ``memory.py`` estimates
#: (it counts one fp32 copy, relu1_1's, made in the backward): five layers × 32 MiB stay within its
#: fixed slack.
GRAM_KEEP_FP32_BYTES = 32 * 2**20


class _SymmetricGram(torch.autograd.Function):
    """G = X Xᵀ / n, accumulated and returned in fp32, with a one-product backward.

    Autograd's own backward of ``bmm(x, x.mT)`` takes two products (one per operand), but
    the gradient of any scalar is dX = (dG + dGᵀ) X / n: one product, which halves the
    backward cost of every Gram. Both products are fp32 under mixed precision too (the
    gradient is rounded to the features' dtype only at the end): a bf16 backward product was
    6 % faster per step at 256 px but moved the final style distance by over 1 %.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, count: int) -> torch.Tensor:  # flat: (N, C, K), any float dtype
        wide = flat.float()  # the same strides as flat (a dense view keeps its layout)
        keep = wide is not flat and wide.numel() * wide.element_size() <= GRAM_KEEP_FP32_BYTES
        ctx.save_for_backward(wide if keep else flat)
        ctx.count, ctx.dtype = count, flat.dtype
        return torch.bmm(wide, wide.mT) / count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (saved,) = ctx.saved_tensors
        sym = (grad + grad.mT) / ctx.count
        wide = saved.float()  # no copy when the forward kept its fp32 copy
        if saved.stride(-2) == 1:
            # flat is the transposed view of a (N, K, C) channels-last buffer: answer in that layout.
            return torch.bmm(wide.mT, sym).mT.to(ctx.dtype), None
        return torch.bmm(sym, wide).to(ctx.dtype), None


def _flatten(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, C, H·W) without a copy, for either memory layout."""
    n, c, h, w = features.shape
    if not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(n, h * w, c).mT
    return features.reshape(n, c, h * w)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Spatially normalised Gram matrix (N, C, C) of (N, C, H, W) features, accumulated in fp32."""
    n, c, h, w = features.shape
    return _SymmetricGram.apply(_flatten(features), h * w)


#: id(target) → (weak reference, version, fp32 target, ‖target‖² clamped): see :func:`target_energy`.
_ENERGIES: dict[int, tuple[weakref.ref, int, torch.Tensor | None, torch.Tensor]] = {}


def target_energy(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``target`` in fp32 and its energy ‖target‖² (≥ 1e-12), computed once per target tensor.

    Targets are constants of a run, but every loss evaluation used to recompute their energy
    (three kernels per layer and step). Kept until the target is freed, and recomputed if it
    was changed in place; a target that needs a gradient is never cached.
    """
    cacheable = not target.requires_grad and not torch.is_inference_mode_enabled()
    key = id(target)
    hit = _ENERGIES.get(key) if cacheable else None
    if hit is not None and hit[0]() is target and hit[1] == target._version:
        return (target if hit[2] is None else hit[2]), hit[3]
    wide = target.float()
    energy = wide.pow(2).sum().clamp_min(_EPS)
    if cacheable:
        ref = weakref.ref(target, lambda _ref, key=key: _ENERGIES.pop(key, None))
        # An fp32 target is its own fp32 copy: holding it here would keep it alive for ever.
        _ENERGIES[key] = (ref, target._version, None if wide is target else wide, energy)
    return wide, energy


def relative_sq_distance(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖value − target‖² / ‖target‖², computed in fp32 (the target's energy computed once)."""
    target, energy = target_energy(target)
    if value.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        value = value.float()
    # Half-precision values are widened exactly by type promotion, without a copy of their own.
    return (value - target).pow(2).sum() / energy


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared feature distance at one content layer."""
    return relative_sq_distance(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Relative squared Gram distance at one style layer."""
    return relative_sq_distance(gram(features), target_gram)


def flat_features(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, C, H·W) view, for either memory layout (no copy)."""
    return _flatten(features)


class _TraceSqrtm(torch.autograd.Function):
    """tr A^½ of symmetric positive semi-definite A (N, r, r) by the coupled Newton–Schulz iteration.

    The iteration gives A^½ and A^-½ together, and the gradient of the trace is ½ A^-½, so
    the backward costs nothing more; all of it is matrix products on the device (no
    eigendecomposition, no host synchronisation per step).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, iterations: int) -> torch.Tensor:
        norm = torch.linalg.matrix_norm(a).clamp_min(_EPS)[..., None, None]  # Frobenius: eigenvalues ≤ 1
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)
        three_halves = 1.5 * eye
        y, z = a / norm, eye
        for _ in range(iterations):  # three kernels an iteration
            t = torch.baddbmm(three_halves, z, y, alpha=-0.5)  # (3I − z y) / 2
            y, z = torch.bmm(y, t), torch.bmm(t, z)
        root = norm.sqrt()
        ctx.save_for_backward(z, root)
        return y.diagonal(dim1=-2, dim2=-1).sum(-1) * root[..., 0, 0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        z, root = ctx.saved_tensors
        inv_root = 0.25 * (z + z.mT) / root  # ½ A^-½, symmetrised
        return grad[..., None, None] * inv_root, None


#: Newton–Schulz iterations of the W2 loss's matrix square root.
SQRTM_ITERATIONS = 16


def trace_sqrtm(a: torch.Tensor, iterations: int = SQRTM_ITERATIONS) -> torch.Tensor:
    """tr A^½ of each symmetric PSD matrix in ``a`` (N, r, r), differentiable, fp32."""
    return _TraceSqrtm.apply(a.float(), iterations)


def gaussian_moments(
    features: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (N, C) and covariance (N, C, C) of the features, in fp32, weighted by ``mask``² if given.

    The mask weights pixels as the guided Gram matrix does (features times mask).
    """
    n, c, h, w = features.shape
    if mask is None:
        mean = features.float().mean(dim=(-2, -1))
        second = gram(features)
    else:
        m = mask.float()
        weighted = features * m  # fp32
        energy = m.pow(2).sum().clamp_min(_EPS)
        mean = (weighted * m).sum(dim=(-2, -1)) / energy
        second = gram(weighted) * (h * w) / energy
    return mean, second - mean[:, :, None] * mean[:, None, :]


def wasserstein_loss(
    features: torch.Tensor,
    target_mean: torch.Tensor,
    target_basis: torch.Tensor,
    target_trace: torch.Tensor,
    target_energy: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Relative squared W2 distance between the features' Gaussian and the target's.

    ``target_basis`` (C, r) is ``V Λ^½`` of the target covariance ``Σ_s = V Λ Vᵀ`` (eigenvalues
    that are not ≈ 0 only), so ``Bᵀ Σ B`` (r, r) has the eigenvalues of ``Σ_s^½ Σ Σ_s^½``;
    ``target_trace`` is ``tr Σ_s`` and ``target_energy`` ``E‖f_s‖²``.
    """
    mean, cov = gaussian_moments(features, mask)
    inner = target_basis.mT @ cov @ target_basis
    w2 = (
        (mean - target_mean).pow(2).sum(-1)
        + cov.diagonal(dim1=-2, dim2=-1).sum(-1)
        + target_trace
        - 2 * trace_sqrtm(inner)
    )
    return w2.sum() / target_energy.clamp_min(_EPS)


def random_directions(
    channels: int, count: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """(channels, count) random unit vectors (columns), drawn on ``device``."""
    d = torch.randn((channels, count), generator=generator, device=device)
    return d / torch.linalg.vector_norm(d, dim=0, keepdim=True).clamp_min(_EPS)


def _argsort_rows(values: torch.Tensor) -> torch.Tensor:
    """The order that sorts each row; on the CPU by numpy's vectorised sort (several times faster)."""
    if values.device.type != "cpu":
        return values.argsort(dim=-1)
    return torch.from_numpy(np.argsort(values.numpy(), axis=-1))


def sorted_quantiles(values: torch.Tensor, count: int) -> torch.Tensor:
    """(P, K) → (P, count): each row sorted, resampled to ``count`` equally spaced quantiles (no grad)."""
    if values.device.type == "cpu":
        ordered = torch.from_numpy(np.sort(values.numpy(), axis=-1))
    else:
        ordered = values.sort(dim=-1).values
    if ordered.shape[-1] == count:
        return ordered
    # Output quantile (i + ½)/count sits at source position (i + ½)·K/count − ½: align_corners=False.
    return torch.nn.functional.interpolate(ordered[None], size=count, mode="linear", align_corners=False)[0]


class _SlicedDistance(torch.autograd.Function):
    """The sliced loss and, in the same pass, its gradient: the only thing kept for the backward.

    d/dx Σ (sort(x) − t)² puts 2 (sort(x) − t) back at each value's place, and the projection
    is linear, so the gradient of the features is ``D · scatter(2 (sort(Dᵀf) − t))``. Keeping
    that one tensor (in the features' dtype) instead of the sort order, the differences and an
    fp32 copy of the features keeps the loss's memory at one value per feature value.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, samples: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        projected = torch.matmul(directions.mT, flat.float())  # (N, P, K), fp32
        order = _argsort_rows(projected)
        target = sorted_quantiles(directions.mT @ samples.mT, projected.shape[-1])
        diff = projected.gather(-1, order) - target
        del projected
        scale = 1.0 / (target.pow(2).sum() * flat.shape[0]).clamp_min(_EPS)
        loss = diff.pow(2).sum() * scale
        grad = torch.empty_like(diff).scatter_(-1, order, diff.mul_(2 * scale))
        del order, diff
        # Kept in the features' dtype, but fp32 for fp16 features: their loss scaler multiplies the
        # gradient only in the backward pass, and unscaled fp16 gradients underflow.
        dtype = torch.float32 if flat.dtype == torch.float16 else flat.dtype
        if flat.stride(-2) == 1:  # a channels-last view: answer in that layout
            ctx.save_for_backward((grad.mT @ directions.mT).mT.to(dtype))
        else:
            ctx.save_for_backward((directions @ grad).to(dtype))
        ctx.dtype = flat.dtype
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (grad,) = ctx.saved_tensors
        return (grad * grad_loss.to(grad.dtype)).to(ctx.dtype), None, None


def sliced_loss(flat: torch.Tensor, samples: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Relative squared sliced Wasserstein distance of (N, C, K) features to (K_s, C) target samples.

    Both are projected on the ``directions`` (C, P) and sorted; the target's sorted
    projections are resampled to K quantiles when its pixel count differs. Computed in fp32.
    """
    return _SlicedDistance.apply(flat, samples.float(), directions.float())


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (both directions, summed)."""
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx = image[..., :, 1:] - image[..., :, :-1]
    zero = image.new_zeros(())
    return (dy.pow(2).mean() if dy.numel() else zero) + (dx.pow(2).mean() if dx.numel() else zero)
