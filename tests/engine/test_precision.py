"""Speed paths: autocast precision and channels_last, checked for correctness on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import ConfigError, StyleConfig, stylize_iter
from napari_style_transfer.engine.runtime import cpu_supports_bf16, select_runtime

FAST = dict(size=64, iterations=10, multiscale=False, preview_every=0, device="cpu")


def test_runtime_resolution_on_cpu():
    cpu = torch.device("cpu")
    assert select_runtime("fp32", cpu).autocast_dtype is None
    assert not select_runtime("fp32", cpu).channels_last
    bf16 = select_runtime("bf16", cpu)
    assert bf16.autocast_dtype == torch.bfloat16 and bf16.channels_last
    assert select_runtime("auto", cpu).precision == ("bf16" if cpu_supports_bf16() else "fp32")
    with pytest.raises(ConfigError, match="^precision: 'fp16' needs a CUDA GPU"):
        select_runtime("fp16", cpu)


@pytest.mark.parametrize("capability_choice", ["bf16", "fp16"])
def test_cuda_auto_precision_follows_the_output_size(monkeypatch, capability_choice):
    """The size rule of 'auto' on CUDA (the GPU test checks the capability query on a real GPU)."""
    from napari_style_transfer.engine import runtime

    monkeypatch.setattr(runtime, "cuda_auto_precision", lambda device: capability_choice)
    cuda = torch.device("cuda", 0)  # only named: nothing is allocated on it
    small = select_runtime("auto", cuda, long_side=runtime.AUTO_BF16_FROM_SIDE - 1)
    large = select_runtime("auto", cuda, long_side=runtime.AUTO_BF16_FROM_SIDE)
    native = select_runtime("auto", cuda, long_side=None)
    assert small.precision == ("fp32" if capability_choice == "bf16" else "fp16")
    assert large.precision == native.precision == capability_choice
    assert small.channels_last and large.channels_last


def test_bf16_channels_last_matches_fp32_loss_and_gradient(content_image, style_image):
    """One evaluation at the same image: bf16 autocast + channels_last gives fp32's loss and gradient."""
    from napari_style_transfer.engine.content_run import ContentRun
    from napari_style_transfer.engine.guidance import Guidance
    from napari_style_transfer.engine.stylizer import Stylizer

    results = {}
    for precision in ("fp32", "bf16"):
        run = ContentRun(
            Stylizer(style_image, StyleConfig(**FAST, precision=precision)), content_image, Guidance()
        )
        problem, content_t = run.objective(content_image.shape[:2])
        torch.manual_seed(0)
        x = (content_t + 0.1 * torch.randn_like(content_t)).clamp(0, 1).requires_grad_(True)
        loss, terms = problem.loss(x)
        loss.backward()
        assert loss.dtype == torch.float32  # Grams and losses stay fp32 under autocast
        results[precision] = ({k: float(v.detach()) for k, v in terms.items()}, x.grad.flatten())
    (f_terms, f_grad), (b_terms, b_grad) = results["fp32"], results["bf16"]
    for key in ("content", "style", "total"):
        assert b_terms[key] == pytest.approx(f_terms[key], rel=0.01)
    assert torch.nn.functional.cosine_similarity(f_grad, b_grad, dim=0) > 0.99
    assert (b_grad - f_grad).norm() < 0.1 * f_grad.norm()


@pytest.mark.slow  # make test-all
def test_bf16_run_optimises_like_fp32(content_image, style_image):
    fp32 = list(stylize_iter(content_image, style_image, StyleConfig(**FAST, precision="fp32")))
    bf16 = list(stylize_iter(content_image, style_image, StyleConfig(**FAST, precision="bf16")))
    assert bf16[-1].info["precision"] == "bf16" and fp32[-1].info["precision"] == "fp32"
    # L-BFGS trajectories drift apart step by step, so the end points agree less closely than
    # one evaluation does: the same loss reduction, within 15 %, and visually the same image.
    assert bf16[-1].losses["total"] == pytest.approx(fp32[-1].losses["total"], rel=0.15)
    assert bf16[-1].losses["total"] < 0.7 * bf16[0].losses["total"]
    diff = np.abs(bf16[-1].preview.astype(float) - fp32[-1].preview.astype(float)).mean()
    assert diff < 12  # of 255


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gram_one_product_backward_matches_autograd(channels_last, dtype):
    """The custom Gram (fp32 product, one-product backward, either layout) equals plain autograd."""
    from napari_style_transfer.engine.losses import gram

    torch.manual_seed(0)
    base = torch.randn(2, 8, 5, 7).to(dtype)
    if channels_last:
        base = base.contiguous(memory_format=torch.channels_last)
    target, weight = torch.randn(2, 8, 8), torch.rand(2, 8, 8)  # a non-symmetric upstream gradient

    ours = base.clone().requires_grad_(True)
    g = gram(ours)
    assert g.dtype == torch.float32
    ((g - target) ** 2 * weight).sum().backward()

    ref = base.clone().requires_grad_(True)
    flat = ref.float().reshape(2, 8, 35)
    g_ref = torch.bmm(flat, flat.transpose(1, 2)) / 35
    ((g_ref - target) ** 2 * weight).sum().backward()

    assert torch.allclose(g, g_ref, rtol=1e-5, atol=1e-6)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(
        ours.grad.float(), ref.grad.float(), rtol=tol, atol=tol * ref.grad.abs().max().item()
    )
    assert ours.grad.dtype == dtype
    # The gradient keeps the features' memory layout (no reorder before the next convolution).
    assert ours.grad.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


def test_cached_low_precision_network_is_what_autocast_computes():
    """The bf16 copy of the network gives exactly autocast's activations, without per-call weight casts."""
    from napari_style_transfer.engine.vgg import get_network

    net = get_network("embedded", "max", "cpu", "relu2_1", channels_last=True)
    low = net.cast(torch.bfloat16)
    assert low is net.cast(torch.bfloat16) and net.cast(torch.float32) is net  # made once
    assert next(low.parameters()).dtype == torch.bfloat16 and next(net.parameters()).dtype == torch.float32
    x = torch.rand(1, 3, 24, 32).contiguous(memory_format=torch.channels_last) * 100
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = net(x, ("relu1_1", "relu2_1"))
    with torch.no_grad():
        got = low(x.bfloat16(), ("relu1_1", "relu2_1"))
    for name in expected:
        assert got[name].dtype == torch.bfloat16
        assert torch.equal(got[name], expected[name])
