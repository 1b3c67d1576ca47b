"""The structure loss (``engine/matting.py``) on each device and precision, and inside a captured step.

The same checks run on the CPU here and on CUDA where there is one (``pytest -m gpu`` on a device
machine; they skip cleanly without one): L·V on the device equals L·V on the CPU in float64; the
energy stays fp32 and the gradient takes the image's dtype (bf16, fp16) without overflowing at a
realistic size; a full run at reduced precision reports a finite "structure" term; and a step
whose loss is the Laplacian energy replays under :class:`~.graph_step.GraphStep` (a real CUDA
graph on CUDA, the eager fallback on the CPU) with the iterates of the eager step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import StyleConfig, stylize_iter
from napari_style_transfer.engine.device_lbfgs import DeviceLBFGS
from napari_style_transfer.engine.graph_step import GraphStep
from napari_style_transfer.engine.matting import MattingLaplacian, banded_product, laplacian_bands

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=[CUDA, pytest.mark.gpu])]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _content(side: int, seed: int = 0) -> torch.Tensor:
    """A (1, 3, side, side) content in [0, 1]: smooth colour ramps plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, side)
    base = torch.stack(
        [
            ramp[None, :].expand(side, side),
            ramp[:, None].expand(side, side),
            0.5 * ramp.flip(0)[None, :].expand(side, side),
        ]
    )
    return (base + 0.05 * torch.rand(3, side, side, generator=gen)).clamp(0, 1)[None]


@pytest.mark.parametrize("device", DEVICES)
def test_banded_product_on_the_device_matches_float64_on_the_cpu(device):
    content = _content(40)
    bands = torch.from_numpy(laplacian_bands(content))
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    reference = banded_product(bands.double(), image.double())
    on_device = banded_product(bands.float().to(device), image.to(device)).cpu().double()
    assert torch.allclose(on_device, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_images_get_an_fp32_energy_and_a_finite_gradient_of_their_dtype(device, dtype):
    content = _content(256).to(device)
    loss = MattingLaplacian(content)
    image = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(2)).to(device, dtype)
    image.requires_grad_(True)
    energy = loss.energy(image)
    (energy * 3e4).backward()  # the preset's weight: the gradient must still fit in fp16
    assert energy.dtype == torch.float32 and torch.isfinite(energy)
    assert image.grad.dtype == dtype and torch.isfinite(image.grad.float()).all()
    exact = loss.energy(image.detach().float())
    assert torch.allclose(energy, exact, rtol=1e-5)  # the product itself ran in fp32


@pytest.mark.parametrize(
    ("device", "precision"),
    [
        ("cpu", "bf16"),
        pytest.param("cuda", "bf16", marks=[CUDA, pytest.mark.gpu]),
        pytest.param("cuda", "fp16", marks=[CUDA, pytest.mark.gpu]),
    ],
)
def test_a_structure_run_at_reduced_precision_reports_a_finite_structure_term(
    device, precision, content_image, style_image
):
    config = StyleConfig(
        size=48,
        iterations=4,
        multiscale=False,
        preview_every=0,
        device=device,
        precision=precision,
        structure_weight=3e4,
    )
    events = [e for e in stylize_iter(content_image, style_image, config) if e.losses]
    assert events and all(np.isfinite(e.losses["structure"]) for e in events)
    assert events[-1].losses["total"] < events[0].losses["total"]


def _structure_problem(device: str):
    """Pull an image toward a target under the Laplacian: (image, optimiser, step)."""
    content = _content(32).to(device)
    loss = MattingLaplacian(content)
    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)).to(device)
    image = target.clone().requires_grad_(True)
    opt = DeviceLBFGS([image], history_size=4)

    def step(x):
        def closure():
            opt.zero_grad(set_to_none=True)
            total = (x - target).pow(2).mean() + 0.5 * loss.energy(x)
            total.backward()
            return total, {"total": total}

        opt.step(closure)
        return opt.last_terms["total"]

    return image, step, opt


@pytest.mark.parametrize("device", DEVICES)
def test_a_step_on_the_laplacian_energy_replays_as_the_eager_step(device):
    image, step, opt = _structure_problem(device)
    twin, twin_step, _ = _structure_problem(device)
    runner = GraphStep(step, image.device, opt, warmup=2)
    losses = []
    for i in range(10):
        loss, ref = runner(image), twin_step(twin)
        losses.append(float(loss))
        assert torch.allclose(loss, ref, rtol=1e-4, atol=1e-6), f"step {i + 1}"
        assert torch.allclose(image, twin, rtol=1e-4, atol=1e-5), f"step {i + 1}"
    assert losses[-1] < losses[0]
    if device == "cuda":  # captured once and replayed, not run eagerly
        assert len(runner.graphs_by_shape) == 1 and not runner.eager_shapes
