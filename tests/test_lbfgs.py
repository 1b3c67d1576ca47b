"""The compact-representation L-BFGS takes the same steps as torch.optim.LBFGS(max_iter=1)."""

from __future__ import annotations

import pytest
import torch

from napari_style_transfer.engine.lbfgs import CompactLBFGS


def _quadratic(n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    h = a @ a.T / n + 0.05 * torch.eye(n, dtype=torch.float64)  # positive definite, spread spectrum
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    return lambda x: 0.5 * x @ h @ x - b @ x


def _rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _run(optimizer_cls, fn, x0: torch.Tensor, steps: int, **kwargs) -> list[torch.Tensor]:
    x = x0.clone().requires_grad_(True)
    opt = optimizer_cls([x], **kwargs)

    def closure():
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        return loss

    path = []
    for _ in range(steps):
        opt.step(closure)
        path.append(x.detach().clone())
    return path


@pytest.mark.parametrize(
    ("fn", "n", "steps", "history"),
    [(_quadratic(40, 0), 40, 30, 5), (_quadratic(60, 1), 60, 25, 50), (_rosenbrock, 12, 45, 7)],
    ids=["quadratic-wrapping-history", "quadratic-long-history", "rosenbrock"],
)
def test_same_iterates_as_torch_lbfgs(fn, n, steps, history):
    x0 = torch.linspace(-1.2, 1.0, n, dtype=torch.float64)
    ours = _run(CompactLBFGS, fn, x0, steps, lr=1.0, history_size=history)
    ref = _run(torch.optim.LBFGS, fn, x0, steps, lr=1.0, max_iter=1, history_size=history,
               tolerance_grad=0.0, tolerance_change=0.0)  # fmt: skip
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9), f"step {i + 1} differs"
    assert fn(ours[-1]) < fn(x0) - 0.1 * abs(fn(x0))  # and it did optimise


def test_fp32_image_sized_problem_tracks_torch_lbfgs():
    """In fp32 on a larger problem the two agree to rounding for many steps (history wraps at 10)."""
    fn = _quadratic(300, 3)
    x0 = torch.zeros(300, dtype=torch.float64)
    f32 = lambda x: fn(x.double()).float()  # noqa: E731
    ours = _run(CompactLBFGS, f32, x0.float(), 40, history_size=10)
    ref = _run(torch.optim.LBFGS, f32, x0.float(), 40, max_iter=1, history_size=10, tolerance_grad=0.0, tolerance_change=0.0)
    assert float(f32(ours[-1])) == pytest.approx(float(f32(ref[-1])), rel=1e-3)


def test_one_tensor_and_valid_settings_only():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="exactly one tensor"):
        CompactLBFGS([x, torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="history_size"):
        CompactLBFGS([x], history_size=0)
    with pytest.raises(ValueError, match="lr"):
        CompactLBFGS([x], lr=0)
