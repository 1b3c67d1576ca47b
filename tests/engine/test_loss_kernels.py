"""The loss does less work a step and computes the same: a target's energy is computed once, and a
half-precision feature map is widened to fp32 once for its Gram's forward and backward."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from napari_style_transfer.engine import losses
from napari_style_transfer.engine.losses import content_loss, gram, relative_sq_distance, style_loss


class _Ops(TorchDispatchMode):
    """Records every aten op run below it, with the dtype of its (first) output."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, torch.dtype | None]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        self.ops.append((str(func.overloadpacket), first.dtype if isinstance(first, torch.Tensor) else None))
        return out

    def count(self, name: str, dtype: torch.dtype | None = None) -> int:
        return sum(1 for op, d in self.ops if op == name and (dtype is None or d == dtype))


def _reference_gram(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    return flat @ flat.mT / (h * w)


def _reference_relative(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    value, target = value.float(), target.float()
    return (value - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)


def _features(dtype: torch.dtype, channels_last: bool, seed: int = 0, shape=(1, 8, 6, 5)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    f = torch.randn(shape, generator=gen).to(dtype)
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    return f.requires_grad_(True)


def _value_and_grad(loss_fn, features: torch.Tensor, target: torch.Tensor):
    features.grad = None
    loss = loss_fn(features, target)
    loss.backward()
    return loss.detach(), features.grad.clone()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels-last"])
@pytest.mark.parametrize("keep_fp32_copy", [True, False], ids=["one-cast", "two-casts"])
def test_style_and_content_losses_match_a_plain_reference(monkeypatch, dtype, channels_last, keep_fp32_copy):
    if not keep_fp32_copy:
        monkeypatch.setattr(losses, "GRAM_KEEP_FP32_BYTES", 0)  # the large-image path: cast again in backward
    target_gram = _reference_gram(_features(torch.float32, False, seed=1)).detach()
    features = _features(dtype, channels_last)
    ours = _value_and_grad(style_loss, features, target_gram)
    ref = _value_and_grad(lambda f, t: _reference_relative(_reference_gram(f), t), features, target_gram)
    assert ours[1].dtype == dtype and ours[1].stride() == features.stride()
    assert torch.allclose(ours[0], ref[0], rtol=1e-5)
    assert torch.allclose(
        ours[1].float(), ref[1].float(), rtol=1e-2 if dtype != torch.float32 else 1e-5, atol=1e-6
    )

    target = _features(torch.float32, False, seed=2).detach()
    for _ in range(2):  # the second call uses the cached energy
        ours = _value_and_grad(content_loss, features, target)
        ref = _value_and_grad(_reference_relative, features, target)
        assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])  # bit-equal: the same fp32 sums


def test_one_cast_and_two_casts_give_bit_equal_gradients(monkeypatch):
    """Keeping the forward's fp32 copy changes which kernel widens the features, not the numbers."""
    target = _reference_gram(_features(torch.float32, False, seed=3)).detach()
    features = _features(torch.bfloat16, True, seed=4)
    kept = _value_and_grad(style_loss, features, target)
    monkeypatch.setattr(losses, "GRAM_KEEP_FP32_BYTES", 0)
    again = _value_and_grad(style_loss, features, target)
    assert torch.equal(kept[0], again[0]) and torch.equal(kept[1], again[1])


def _casts_to_fp32(features: torch.Tensor) -> int:
    with _Ops() as ops:
        gram(features).sum().backward()
    return ops.count("aten._to_copy", torch.float32)


def test_half_precision_features_are_widened_once_per_step_when_small(monkeypatch):
    features = _features(torch.bfloat16, False)
    assert _casts_to_fp32(features) == 1  # forward only: the backward reuses the fp32 copy
    monkeypatch.setattr(losses, "GRAM_KEEP_FP32_BYTES", features.numel() * 4 - 1)
    assert _casts_to_fp32(features) == 2  # just over the limit: cast again rather than keep the copy
    assert _casts_to_fp32(_features(torch.float32, False)) == 0  # fp32 features are never copied


def test_a_targets_energy_is_computed_once():
    gen = torch.Generator().manual_seed(5)
    value, target = torch.randn(4, 4, generator=gen), torch.randn(4, 4, generator=gen)
    expected = _reference_relative(value, target)
    assert torch.equal(relative_sq_distance(value, target), expected)  # the first call fills the cache
    with _Ops() as ops:
        again = relative_sq_distance(value, target)
    assert torch.equal(again, expected)
    # ‖v − t‖² only: one sub, one pow, one sum, one div; no second pow/sum and no clamp for ‖t‖².
    assert [op for op, _ in ops.ops] == ["aten.sub", "aten.pow", "aten.sum", "aten.div"]


def test_the_cached_energy_follows_in_place_changes_and_does_not_keep_the_target_alive():
    gen = torch.Generator().manual_seed(6)
    value, target = torch.randn(5, generator=gen), torch.randn(5, generator=gen)
    relative_sq_distance(value, target)
    target.mul_(3)  # changed in place: the energy must be recomputed
    assert torch.equal(relative_sq_distance(value, target), _reference_relative(value, target))
    alive = weakref.ref(target)
    del target
    gc.collect()
    assert alive() is None


def test_a_target_that_needs_a_gradient_gets_one():
    gen = torch.Generator().manual_seed(7)
    value = torch.randn(6, generator=gen)
    target = torch.randn(6, generator=gen, requires_grad=True)
    for _ in range(2):
        target.grad = None
        relative_sq_distance(value, target).backward()
        ours = target.grad.clone()
        target.grad = None
        _reference_relative(value, target).backward()
        assert torch.allclose(ours, target.grad, rtol=1e-6)


def test_double_precision_values_are_compared_in_fp32():
    value = torch.linspace(0, 1, 7, dtype=torch.float64)
    target = torch.linspace(0.1, 1.2, 7)
    out = relative_sq_distance(value, target)
    assert out.dtype == torch.float32 and torch.equal(out, _reference_relative(value, target))
