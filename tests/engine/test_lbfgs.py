"""The compact-representation L-BFGS takes the same steps as torch.optim.LBFGS(max_iter=1),
with one host transfer per step, no float64 on the device, and fp16 overflows skipped and redone."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from napari_style_transfer.engine.lbfgs import CompactLBFGS, optimizer_step
from napari_style_transfer.engine.runtime import LossScaler, host_transfers


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
    ref = _run(
        torch.optim.LBFGS,
        fn,
        x0,
        steps,
        lr=1.0,
        max_iter=1,
        history_size=history,
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9), f"step {i + 1} differs"
    assert fn(ours[-1]) < fn(x0) - 0.1 * abs(fn(x0))  # and it did optimise


def test_fp32_image_sized_problem_tracks_torch_lbfgs():
    """In fp32 on a larger problem the two agree to rounding for many steps (history wraps at 10)."""
    fn = _quadratic(300, 3)
    x0 = torch.zeros(300, dtype=torch.float64)
    f32 = lambda x: fn(x.double()).float()  # noqa: E731
    ours = _run(CompactLBFGS, f32, x0.float(), 40, history_size=10)
    ref = _run(
        torch.optim.LBFGS,
        f32,
        x0.float(),
        40,
        max_iter=1,
        history_size=10,
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    assert float(f32(ours[-1])) == pytest.approx(float(f32(ref[-1])), rel=1e-3)


def test_one_tensor_and_valid_settings_only():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="exactly one tensor"):
        CompactLBFGS([x, torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="history_size"):
        CompactLBFGS([x], history_size=0)
    with pytest.raises(ValueError, match="lr"):
        CompactLBFGS([x], lr=0)


class _DeviceOps(TorchDispatchMode):
    """Records every aten op run below it: its name and the dtypes of the tensors it makes."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, tuple[torch.dtype, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat = out if isinstance(out, (tuple, list)) else (out,)
        self.ops.append(
            (str(func.overloadpacket), tuple(t.dtype for t in flat if isinstance(t, torch.Tensor)))
        )
        return out


def _image_problem(seed: int = 0):
    """A float32 (1, 3, 12, 16) 'image' and a smooth non-quadratic loss of it, with named terms."""
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(1, 3, 12, 16, generator=gen)
    x = torch.zeros(1, 3, 12, 16, requires_grad=True)

    def terms():
        a = (x - target).pow(2).sum()
        b = (x[..., 1:] - x[..., :-1]).pow(4).sum()
        return {"content": a, "style": b, "total": a + 0.5 * b}

    return x, terms


def test_one_host_transfer_per_step_and_no_float64_on_the_device():
    """Every product of a step goes to the host in one transfer, with the loss terms; nothing is
    float64 on the parameter's device (Apple's MPS has no float64), and no scalar is read one by one."""
    x, terms = _image_problem()
    opt = CompactLBFGS([x], history_size=4)  # the history wraps during the run

    def closure():
        opt.zero_grad()
        t = terms()
        t["total"].backward()
        return t["total"], t

    start = float(terms()["total"])
    for step in range(12):
        before = host_transfers()
        with _DeviceOps() as ops:
            opt.step(closure)
        assert host_transfers() - before == 1, f"step {step + 1}"
        assert not [op for op, dtypes in ops.ops if torch.float64 in dtypes], (
            f"step {step + 1} made float64 tensors"
        )
        assert not [op for op, _ in ops.ops if op == "aten._local_scalar_dense"]  # no float()/item()
        assert set(opt.fetched) == {"content", "style", "total"}
    assert opt.fetched["total"] < 0.1 * start  # and it optimised


def test_fetched_terms_are_those_of_the_evaluated_point():
    x, terms = _image_problem(1)
    opt = CompactLBFGS([x])
    seen = []

    def closure():
        opt.zero_grad()
        t = terms()
        seen.append({k: float(v) for k, v in t.items()})
        t["total"].backward()
        return t["total"], t

    for _ in range(3):
        opt.step(closure)
        assert opt.fetched == pytest.approx(seen[-1], rel=1e-6)


def test_a_step_with_a_non_finite_gradient_is_skipped_and_changes_nothing():
    """An fp16 overflow gives inf/NaN gradients: the step is skipped, so that it can be redone."""
    fn = _quadratic(20, 2)
    x = torch.linspace(-1, 1, 20, dtype=torch.float64).requires_grad_(True)
    ref = x.detach().clone().requires_grad_(True)
    opt, ref_opt = CompactLBFGS([x], history_size=5), CompactLBFGS([ref], history_size=5)
    poison = {"on": False}

    def closure_for(p, o):
        def closure():
            o.zero_grad()
            loss = fn(p)
            loss.backward()
            if poison["on"] and p is x:
                p.grad[3] = float("inf")
            return loss, {"total": loss}

        return closure

    for step in range(8):
        if step == 4:
            poison["on"] = True
            before = x.detach().clone()
            opt.step(closure_for(x, opt))
            assert opt.skipped and torch.equal(x.detach(), before)
            poison["on"] = False
        opt.step(closure_for(x, opt))
        ref_opt.step(closure_for(ref, ref_opt))
        assert not opt.skipped
        assert torch.allclose(x, ref, rtol=1e-9, atol=1e-12), f"step {step + 1}"


def test_optimizer_step_redoes_an_overflow_with_half_the_loss_scale():
    """fp16 loss scaling end to end on the CPU: a scale that overflows fp16 is halved and the step redone."""
    x, terms = _image_problem(2)
    opt = CompactLBFGS([x])
    scaler = LossScaler(initial=2.0**40, growth_interval=1000)  # far too large: fp16 overflows

    def closure():
        opt.zero_grad()
        t = terms()
        t["total"].backward()
        x.grad.mul_(scaler.value)  # the scaled gradient, as an fp16 backward carries it
        x.grad.copy_(x.grad.half().float())
        scaler.unscale_(x.grad)
        return t["total"], t

    first = optimizer_step(opt, closure, scaler)
    assert first.finite and first.evaluations > 1
    assert scaler.overflows == first.evaluations - 1 and scaler.value * float(x.grad.abs().max()) <= 65504
    results = [optimizer_step(opt, closure, scaler) for _ in range(10)]
    assert all(r.finite for r in results)  # each redone as often as needed, none reported as diverged
    assert results[-1].values["total"] < first.values["total"]


def test_optimizer_step_with_adam_fetches_terms_and_finiteness_in_one_transfer():
    x, terms = _image_problem(3)
    opt = torch.optim.Adam([x], lr=0.05)

    def closure():
        opt.zero_grad()
        t = terms()
        t["total"].backward()
        return t["total"], t

    before = host_transfers()
    result = optimizer_step(opt, closure)
    assert (
        host_transfers() - before == 1
        and result.finite
        and set(result.values) == {"content", "style", "total"}
    )
    x0 = x.detach().clone()

    def broken():
        loss, t = closure()
        x.grad[0, 0, 0, 0] = float("nan")
        return loss, t

    result = optimizer_step(opt, broken)
    assert not result.finite and torch.equal(x.detach(), x0)  # no scaler: reported, not applied


def test_optimizer_step_gives_up_when_the_loss_itself_is_not_finite():
    x, _ = _image_problem(4)
    opt = CompactLBFGS([x])
    scaler = LossScaler(initial=8.0, growth_interval=10)

    def closure():
        opt.zero_grad()
        loss = (x * float("inf")).sum()
        loss.backward()
        return loss, {"total": loss}

    result = optimizer_step(opt, closure, scaler)
    assert not result.finite and scaler.value == scaler.min_scale and result.evaluations == 4  # 8 → 4 → 2 → 1


def test_a_run_imports_no_dynamo():
    """A run's optimiser is built without ``torch._dynamo``'s 1.3 s of imports (they hold the GIL and
    stall napari's event loop while the worker thread builds the first optimiser; issue 26)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from napari_style_transfer.engine import stylize\n"
        "from napari_style_transfer.engine.device_lbfgs import DeviceLBFGS\n"
        "import torch\n"
        "img = np.random.default_rng(0).random((24, 24, 3)).astype(np.float32)\n"
        "stylize(img, img, size=24, iterations=2, multiscale=False, preview_every=0)\n"
        "DeviceLBFGS([torch.zeros(3, requires_grad=True)])\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
