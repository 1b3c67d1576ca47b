"""GraphStep captures a DeviceLBFGS step per shape on CUDA and falls back to eager steps elsewhere, saying
why once; DeviceLossScaler scales like LossScaler with its state on the device."""

from __future__ import annotations

import logging

import pytest
import torch

from napari_style_transfer.engine.device_lbfgs import DeviceLBFGS
from napari_style_transfer.engine.graph_step import CudaGraphs, DeviceLossScaler, GraphStep
from napari_style_transfer.engine.runtime import LossScaler

LOGGER = "napari_style_transfer.engine.graph_step"
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _problem(device="cpu", seed: int = 0, side: int = 16, optimizer=DeviceLBFGS, scaler=None):
    """A small conv net's features of an image against a target: (image, optimiser, step)."""
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    net = net.to(device).requires_grad_(False)
    target = net(torch.rand(1, 3, side, side, generator=gen).to(device))
    image = torch.rand(1, 3, side, side, generator=gen).to(device).requires_grad_(True)
    opt = optimizer([image], history_size=4) if optimizer is DeviceLBFGS else optimizer([image], lr=0.05)

    def step(x):
        def closure():
            opt.zero_grad(set_to_none=True)
            total = (net(x) - target).pow(2).mean() + 0.1 * (x[..., 1:] - x[..., :-1]).pow(2).mean()
            if scaler is None:
                total.backward()
            else:
                scaler.scale(total).backward()
                scaler.unscale_(x.grad)
            return total, {"total": total}

        if isinstance(opt, DeviceLBFGS):
            opt.step(closure)
            return opt.last_terms["total"]
        loss, _ = closure()
        opt.step()
        return loss.detach()

    return image, opt, step


class FakeGraphs(CudaGraphs):
    """A 'graph' backend for the CPU: capture runs the step once (as the recording), replay runs it again."""

    def __init__(self):
        self.captures = 0
        self.replays = 0

    def unavailable(self, device):
        return None

    def warm_up(self, fn):
        return fn()

    def capture(self, fn):
        self.captures += 1
        out = fn()

        def replay():
            self.replays += 1
            out.copy_(fn())

        return replay, out


def test_on_the_cpu_steps_run_eagerly_with_one_log_line_and_the_same_results(caplog):
    image, opt, step = _problem()
    twin, _, twin_step = _problem()
    runner = GraphStep(step, image.device, opt, warmup=1)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(6):
            loss = runner(image)
            assert torch.equal(loss, twin_step(twin)) and torch.equal(image, twin)
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1 and "CUDA graphs need a CUDA device, not 'cpu'" in records[0].getMessage()
    assert runner.graphs_by_shape == {} and not runner.capturing


def test_an_optimiser_other_than_device_lbfgs_is_not_captured(caplog):
    image, opt, step = _problem(optimizer=torch.optim.Adam)
    twin, _, twin_step = _problem(optimizer=torch.optim.Adam)
    graphs = FakeGraphs()
    runner = GraphStep(step, image.device, opt, warmup=1, graphs=graphs)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(4):
            assert torch.equal(runner(image), twin_step(twin)) and torch.equal(image, twin)
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1 and "Adam" in records[0].getMessage()
    assert graphs.captures == 0


def test_a_failed_capture_falls_back_to_eager_steps_and_is_not_tried_again(caplog):
    graphs = FakeGraphs()
    image, opt, inner = _problem()
    twin, _, twin_step = _problem()

    def step(x):
        if runner.capturing:
            raise RuntimeError("operation not permitted when stream is capturing")
        return inner(x)

    runner = GraphStep(step, image.device, opt, warmup=2, graphs=graphs)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(6):
            assert torch.equal(runner(image), twin_step(twin)) and torch.equal(image, twin)
    records = [r for r in caplog.records if r.name == LOGGER]
    assert graphs.captures == 1 and graphs.replays == 0 and not runner.capturing
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "capture failed (RuntimeError: operation not permitted" in records[0].getMessage()


def test_each_shape_is_captured_once_and_then_replayed():
    graphs = FakeGraphs()
    ran = []

    def step(x, out):  # stateless: running it during the fake capture changes nothing
        ran.append(x.shape)
        return out.copy_(x * 2 + 1)

    runner = GraphStep(step, torch.device("cpu"), warmup=2, graphs=graphs)
    small, big = (torch.ones(2), torch.zeros(2)), (torch.ones(3), torch.zeros(3))
    for _ in range(5):
        assert torch.equal(runner(*small), torch.full((2,), 3.0))
    assert graphs.captures == 1 and graphs.replays == 3  # calls 3, 4, 5: captured at 3, then replayed
    runner(*big)
    assert graphs.captures == 1  # a new shape starts with its own warm-up
    runner(*big), runner(*big)
    assert graphs.captures == 2 and set(runner.graphs_by_shape) == {runner.key(small), runner.key(big)}
    with pytest.raises(ValueError, match="captured with"):
        runner(torch.ones(2), torch.zeros(2))  # same shape, other tensors: the graph would not see them


def test_device_loss_scaler_halves_and_grows_as_loss_scaler_does():
    flags = [True, True, False, True, True, True, False, False, False, False, False] + [True] * 21
    ours = DeviceLossScaler(
        torch.device("cpu"), initial=16.0, growth_interval=3, min_scale=2.0, max_scale=64.0
    )
    ref = LossScaler(initial=16.0, growth_interval=3, min_scale=2.0, max_scale=64.0)
    for i, finite in enumerate(flags):
        redo = ours.update(torch.tensor(finite))
        assert bool(redo) == ref.update(finite), f"step {i}"
        assert float(ours.value) == ref.value and int(ours.good_steps) == ref.good_steps, f"step {i}"
        assert int(ours.overflows) == ref.overflows
    assert ref.value == 64.0 and ref.overflows == 4  # the sequence reached both bounds
    grad = torch.tensor([64.0, float("inf")])
    assert not bool(ours.unscale_(grad)) and grad[0] == 1.0
    assert float(ours.scale(torch.tensor(0.5))) == 32.0


def test_an_overflowing_scale_skips_steps_until_halved_then_optimises():
    """fp16 overflow simulated on the CPU: inf gradients skip the step, halve the scale, and change nothing."""
    scaler = DeviceLossScaler(torch.device("cpu"), initial=2.0**30, growth_interval=1000)
    image, opt, step = _problem(scaler=scaler)
    original = opt.step

    def fp16_step(closure):  # the scaled gradient as an fp16 backward would carry it
        def scaled():
            loss, terms = closure()
            image.grad.mul_(scaler.value).copy_(image.grad.half().float()).div_(scaler.value)
            return loss, terms

        return original(scaled)

    opt.step = fp16_step
    start, losses = image.detach().clone(), []
    for _ in range(30):
        losses.append(float(step(image)))
        redo = scaler.update(opt.finite)
        if bool(redo):
            assert torch.equal(image, start)  # nothing moved while the scale overflowed
    assert int(scaler.overflows) >= 1 and float(scaler.value) < 2.0**30
    assert losses[-1] < 0.5 * losses[0]


@CUDA
def test_a_captured_device_lbfgs_step_replays_the_eager_iterates():
    image, opt, step = _problem("cuda", side=24)
    twin, _, twin_step = _problem("cuda", side=24)
    runner = GraphStep(step, image.device, opt, warmup=2)
    for i in range(12):
        loss, ref = runner(image), twin_step(twin)
        assert torch.allclose(loss, ref, rtol=1e-4, atol=1e-6), f"step {i + 1}"
        assert torch.allclose(image, twin, rtol=1e-4, atol=1e-5), f"step {i + 1}"
    assert len(runner.graphs_by_shape) == 1 and not runner.eager_shapes  # it was replayed, not eager


@CUDA
def test_a_captured_step_with_a_device_loss_scaler_replays():
    scaler = DeviceLossScaler(torch.device("cuda"), initial=2.0**10)
    twin_scaler = DeviceLossScaler(torch.device("cuda"), initial=2.0**10)
    image, opt, step = _problem("cuda", scaler=scaler)
    twin, twin_opt, twin_step = _problem("cuda", scaler=twin_scaler)

    def scaled_step(x):
        out = step(x)
        scaler.update(opt.finite)
        return out

    runner = GraphStep(scaled_step, image.device, opt, warmup=2)
    for _ in range(8):
        runner(image)
        twin_step(twin)
        twin_scaler.update(twin_opt.finite)
    assert torch.allclose(image, twin, rtol=1e-4, atol=1e-5) and len(runner.graphs_by_shape) == 1
    assert int(scaler.good_steps) == int(twin_scaler.good_steps) == 8
