"""DeviceLBFGS takes CompactLBFGS's steps (history wrap, curvature test, restart, skip) without ever
waiting for the host, and the lagged readout hands the host each step's values one step late."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from napari_style_transfer.engine.device_lbfgs import DeviceLBFGS, LaggedReadout
from napari_style_transfer.engine.lbfgs import CompactLBFGS


def _quadratic(n: int, seed: int):
    """An ill-conditioned quadratic (condition number in the thousands)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    h = q @ torch.diag(torch.logspace(-2, 2, n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    return lambda x: 0.5 * x @ h @ x - b @ x


def _rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _double_well(x: torch.Tensor) -> torch.Tensor:
    """Concave near 0: the second step's pair has sᵀy < 0 and is not kept."""
    return ((x**2 - 1) ** 2).sum() + 0.3 * (x[1:] * x[:-1]).sum() + 0.1 * torch.sin(3 * x).sum()


def _run(cls, fn, x0: torch.Tensor, steps: int, history: int, tamper=None):
    """Iterates of ``steps`` steps; ``tamper(step, grad)`` may change the gradient the closure returns."""
    x = x0.clone().requires_grad_(True)
    opt = cls([x], lr=1.0, history_size=history)
    step = {"k": 0}

    def closure():
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        if tamper is not None:
            tamper(step["k"], x.grad)
        return loss, {"total": loss}

    path, pairs = [], []
    for k in range(steps):
        step["k"] = k
        opt.step(closure)
        path.append(x.detach().clone())
        pairs.append(int(opt.pairs) if isinstance(opt, DeviceLBFGS) else len(opt.state[x]["order"]))
    return path, pairs, opt


def _assert_same(fn, x0, steps, history, tamper=None):
    ours, our_pairs, opt = _run(DeviceLBFGS, fn, x0, steps, history, tamper)
    ref, ref_pairs, _ = _run(CompactLBFGS, fn, x0, steps, history, tamper)
    # Not bit-equal: the sums run in another order (triangular solves here, LU there), and an
    # ill-conditioned problem amplifies those 1e-16 differences to about 1e-9 within 40 steps.
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10), f"step {i + 1} differs"
    assert our_pairs == ref_pairs  # the same pairs kept, dropped and forgotten
    return ours, our_pairs, opt


@pytest.mark.parametrize(
    ("fn", "n", "steps", "history"),
    [(_quadratic(40, 0), 40, 40, 6), (_quadratic(30, 1), 30, 40, 50), (_rosenbrock, 12, 45, 7)],
    ids=["ill-conditioned-quadratic-ring-wraps", "quadratic-long-history", "rosenbrock-ring-wraps"],
)
def test_same_iterates_as_compact_lbfgs(fn, n, steps, history):
    x0 = torch.linspace(-1.2, 1.0, n, dtype=torch.float64)
    path, pairs, _ = _assert_same(fn, x0, steps, history)
    assert max(pairs) == min(history, steps - 1)  # the history filled (and, when short, wrapped)
    assert fn(path[-1]) < fn(x0) - 0.1 * abs(fn(x0))


def test_same_iterates_when_a_pair_fails_the_curvature_test():
    x0 = 0.05 * torch.linspace(-1, 1, 10, dtype=torch.float64)
    _, pairs, _ = _assert_same(_double_well, x0, 40, 4)
    assert pairs[:2] == [0, 0] and pairs[2] == 1  # step 2's pair (sᵀy < 0) was dropped, step 3's kept


def test_a_non_finite_gradient_skips_the_step_and_changes_nothing():
    fn = _quadratic(20, 2)
    x0 = torch.linspace(-1, 1, 20, dtype=torch.float64)

    def poison(step, grad):
        if step == 9:
            grad[3] = float("inf")

    path, pairs, opt = _assert_same(fn, x0, 30, 5, poison)
    assert torch.equal(path[9], path[8]) and pairs[9] == pairs[8]
    assert bool(opt.finite)  # the last step was finite again
    clean, _, _ = _run(DeviceLBFGS, fn, x0, 29, 5)
    assert torch.allclose(path[-1], clean[-1], rtol=1e-8, atol=1e-10)  # as if the step never happened


def test_a_non_descent_direction_restarts_from_steepest_descent():
    """A zero gradient makes gᵀHg = 0: the history is dropped, and rebuilt from a ring slot that is not 0."""
    fn = _quadratic(16, 3)
    x0 = torch.linspace(-1, 1, 16, dtype=torch.float64)

    def vanish(step, grad):
        if step == 7:
            grad.zero_()

    path, pairs, _ = _assert_same(fn, x0, 30, 5, vanish)
    assert pairs[6] == 5 and pairs[7] == 0 and pairs[-1] == 5
    assert torch.equal(path[7], path[6])  # the zero step moved nothing


def test_fp32_image_problem_tracks_compact_lbfgs():
    gen = torch.Generator().manual_seed(4)
    target = torch.rand(3, 12, 16, generator=gen)
    fn = lambda x: (x - target).pow(2).sum() + (x[..., 1:] - x[..., :-1]).pow(4).sum()  # noqa: E731
    x0 = torch.zeros(3, 12, 16)
    ours, _, _ = _run(DeviceLBFGS, fn, x0, 25, 4)
    ref, _, _ = _run(CompactLBFGS, fn, x0, 25, 4)
    for a, b in zip(ours[:10], ref[:10]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert float(fn(ours[-1])) == pytest.approx(float(fn(ref[-1])), rel=1e-3)


def test_last_terms_stay_on_the_device_and_are_those_of_the_evaluated_point():
    fn = _quadratic(8, 5)
    x = torch.ones(8, dtype=torch.float64, requires_grad=True)
    opt = DeviceLBFGS([x])
    seen = []

    def closure():
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        seen.append(float(loss))
        return loss, {"total": loss, "half": loss / 2}

    for _ in range(3):
        opt.step(closure)
        assert all(isinstance(v, torch.Tensor) for v in opt.last_terms.values())
        assert float(opt.last_terms["total"]) == seen[-1] and float(opt.last_terms["half"]) == seen[-1] / 2
    assert set(opt.terms_with_flag()) == {"total", "half", "finite"}


def test_settings_are_checked():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="exactly one tensor"):
        DeviceLBFGS([x, torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="history_size"):
        DeviceLBFGS([x], history_size=0)
    with pytest.raises(ValueError, match="lr"):
        DeviceLBFGS([x], lr=0)


# ----------------------------------------------------------------------------- no host synchronisation

#: Ops that make the host wait for the device's result.
SYNCING = {"aten._local_scalar_dense", "aten.item", "aten.is_nonzero", "aten.nonzero", "aten.equal"}


class _HostSyncs(TorchDispatchMode):
    """Records every aten op, and flags those that read a value on the host or copy across devices."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        self.ops.append(name)
        devices = {a.device for a in args if isinstance(a, torch.Tensor)}
        target = kwargs.get("device")
        moved = target is not None and devices and torch.device(target) not in devices
        if name in SYNCING or moved or (name == "aten.copy_" and len(devices) > 1):
            self.syncs.append(name)
        return func(*args, **kwargs)


def _host_reads(monkeypatch) -> list[str]:
    """Also count the host reads no aten op shows: ``numpy()`` and ``tolist()`` of a tensor."""
    reads: list[str] = []
    for method in ("numpy", "tolist"):
        original = getattr(torch.Tensor, method)

        def wrapper(self, *a, _original=original, _name=method, **k):
            reads.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, method, wrapper)
    return reads


def _steps_under_detector(cls, monkeypatch, device="cpu"):
    gen = torch.Generator().manual_seed(6)
    target = torch.rand(2, 8, 8, generator=gen).to(device)
    x = torch.zeros(2, 8, 8, device=device, requires_grad=True)
    opt = cls([x], history_size=3)

    def closure():
        opt.zero_grad()
        total = (x - target).pow(2).sum() + (x[..., 1:] - x[..., :-1]).pow(4).sum()
        total.backward()
        return total, {"total": total}

    for _ in range(3):  # warm-up: buffers allocated
        opt.step(closure)
    reads = _host_reads(monkeypatch)
    with _HostSyncs() as mode:
        for _ in range(6):  # the history wraps at 3
            opt.step(closure)
    monkeypatch.undo()
    return mode, reads


def test_device_lbfgs_step_never_waits_for_the_host(monkeypatch):
    mode, reads = _steps_under_detector(DeviceLBFGS, monkeypatch)
    assert mode.ops and "aten.addmv_" in mode.ops  # the detector saw the step's ops
    assert mode.syncs == [] and reads == []


def test_the_detector_catches_compact_lbfgs_host_transfer(monkeypatch):
    """CompactLBFGS reads its products on the host each step (numpy() on the CPU, a copy on a GPU)."""
    mode, reads = _steps_under_detector(CompactLBFGS, monkeypatch)
    assert reads.count("numpy") == 6  # one host read per step, none hidden from the detector


def test_device_lbfgs_step_runs_on_the_meta_device():
    """The meta device has no values at all: a step that completes there decides nothing on the host."""
    x = torch.zeros(4, 6, device="meta", requires_grad=True)
    target = torch.zeros(4, 6, device="meta")
    for cls, works in ((DeviceLBFGS, True), (CompactLBFGS, False)):
        opt = cls([x], history_size=2)

        def closure(opt=opt):
            opt.zero_grad()
            loss = (x - target).pow(2).sum()
            loss.backward()
            return loss

        if works:
            for _ in range(4):
                opt.step(closure)
            assert opt.finite.device.type == "meta"
        else:
            with pytest.raises((NotImplementedError, RuntimeError)):
                opt.step(closure)


# ----------------------------------------------------------------------------- lagged readout


def test_lagged_readout_gives_the_previous_step_and_flush_the_last():
    readout = LaggedReadout()
    assert readout.read() is None and readout.flush() is None
    for k in range(5):
        value = torch.tensor(float(k))
        readout.post({"total": value, "finite": torch.tensor(k != 3)})
        value.fill_(-1.0)  # the copy was taken at post time, not read from the live tensor
        earlier = readout.read()
        if k == 0:
            assert earlier is None
        else:
            assert earlier == {"total": float(k - 1), "finite": float(k - 1 != 3)}
    assert readout.flush() == {"total": 4.0, "finite": 1.0}


def test_lagged_readout_follows_an_optimiser():
    fn = _quadratic(8, 7)
    x = torch.ones(8, dtype=torch.float64, requires_grad=True)
    opt = DeviceLBFGS([x])
    readout, seen, late = LaggedReadout(), [], []

    def closure():
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        seen.append(float(loss))
        return loss, {"total": loss}

    for _ in range(4):
        opt.step(closure)
        readout.post(opt.terms_with_flag())
        late.append(readout.read())
    assert late[0] is None and [v["total"] for v in late[1:]] == seen[:3]
    assert readout.flush() == {"total": seen[3], "finite": 1.0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_step_never_waits_and_matches_compact(monkeypatch):
    mode, reads = _steps_under_detector(DeviceLBFGS, monkeypatch, "cuda")
    assert mode.syncs == [] and reads == []
    fn = _quadratic(32, 8)
    x0 = torch.linspace(-1, 1, 32, dtype=torch.float64)
    ours, _, _ = _run(DeviceLBFGS, lambda x: fn(x.cpu()).to(x.device), x0.cuda(), 30, 5)
    ref, _, _ = _run(CompactLBFGS, fn, x0, 30, 5)
    for a, b in zip(ours, ref):
        assert torch.allclose(a.cpu(), b, rtol=1e-8, atol=1e-10)
