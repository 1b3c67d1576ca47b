"""Style statistics beyond the Gram matrix: the Wasserstein (Gaussian W2) and sliced Wasserstein losses.

The math is checked on synthetic features (no network); each loss then runs end to end on
tiny images: it lowers its own distance, and it works with tiles and stacks (masks: see
test_masks.py, which runs its label → style test with each loss).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import ConfigError, StyleConfig, stylize_iter
from napari_style_transfer.engine.config import STYLE_LOSSES
from napari_style_transfer.engine.images import to_rgb01, to_tensor
from napari_style_transfer.engine.losses import gaussian_moments, trace_sqrtm
from napari_style_transfer.engine.masks import Region
from napari_style_transfer.engine.options import option_spec
from napari_style_transfer.engine.stack import stylize_stack
from napari_style_transfer.engine.style_stats import style_statistic, style_statistics
from napari_style_transfer.engine.vgg import CAFFE, get_network, preprocess

NEW = ("wasserstein", "sliced")
FAST = dict(size=48, iterations=4, multiscale=False, preview_every=0, device="cpu", precision="fp32")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _target(name: str, features: torch.Tensor, mask: torch.Tensor | None = None):
    stat = style_statistic(name)
    pixels = features.shape[-2] * features.shape[-1]
    return stat.target(stat.finish(stat.add(None, stat.part(features, mask, pixels))))


def test_trace_of_the_square_root_and_its_gradient_match_the_eigendecomposition():
    torch.manual_seed(0)
    x = torch.randn(8, 40)
    a = (x @ x.T / 40 + 0.05 * torch.eye(8))[None]
    values, vectors = torch.linalg.eigh(a[0].double())
    leaf = a.clone().requires_grad_(True)
    trace = trace_sqrtm(leaf, iterations=30)
    trace.sum().backward()
    assert float(trace.detach()) == pytest.approx(float(values.sqrt().sum()), rel=1e-4)
    half_inverse_root = 0.5 * vectors @ torch.diag(values.rsqrt()) @ vectors.T
    assert torch.allclose(leaf.grad[0].double(), half_inverse_root, atol=1e-4)


def test_wasserstein_loss_is_the_closed_form_distance_between_gaussians():
    torch.manual_seed(1)
    f_out = torch.randn(1, 6, 12, 14) * torch.linspace(0.5, 2, 6)[None, :, None, None] + 1.0
    f_style = torch.randn(1, 6, 16, 10) @ torch.randn(10, 10) * 0.3 + 2.0
    target = _target("wasserstein", f_style)
    mu1, s1 = (t.double()[0] for t in gaussian_moments(f_out))
    mu2, s2 = (t.double()[0] for t in gaussian_moments(f_style))
    values, vectors = torch.linalg.eigh(s2)
    root = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    inner = torch.linalg.eigvalsh(root @ s1 @ root).clamp_min(0).sqrt().sum()
    exact = (mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * inner
    energy = f_style.double().pow(2).sum(1).mean()  # E‖f_s‖²
    loss = style_statistic("wasserstein").loss(f_out, target)
    assert float(loss) == pytest.approx(float(exact / energy), rel=1e-3)
    assert abs(float(style_statistic("wasserstein").loss(f_style, target))) < 1e-3


def test_sliced_loss_sees_the_shape_of_a_distribution_that_mean_and_covariance_miss():
    torch.manual_seed(2)
    shared = torch.ones(1, 4, 1, 1)
    noise = 0.1 * torch.randn(1, 4, 64, 64)
    gauss = torch.randn(1, 1, 64, 64) * shared + noise
    signs = (torch.randint(0, 2, (1, 1, 64, 64)) * 2 - 1) * shared + noise  # ±1: same mean and covariance
    shuffled = gauss.flatten(2)[..., torch.randperm(64 * 64)].reshape(1, 4, 64, 64)
    w2 = style_statistic("wasserstein")
    assert float(w2.loss(signs, _target("wasserstein", gauss))) < 0.01
    sliced = style_statistic("sliced", seed=0)
    target = _target("sliced", gauss)
    assert float(sliced.loss(shuffled, target)) < 1e-6  # where the pixels are does not matter
    assert float(sliced.loss(signs, target)) > 0.2
    # A target with more pixels than the output is compared through its interpolated quantiles.
    bigger = _target("sliced", torch.randn(1, 1, 128, 96) * shared + 0.1 * torch.randn(1, 4, 128, 96))
    assert float(sliced.loss(gauss, bigger)) < 0.01
    assert float(sliced.loss(signs, bigger)) > 0.2


@pytest.mark.parametrize("name", NEW)
def test_masked_statistics_are_those_of_the_masked_part(name):
    torch.manual_seed(3)
    features = torch.cat([torch.randn(1, 5, 8, 6), torch.rand(1, 5, 8, 6) * 4 + 3], dim=-1)
    mask = torch.zeros(1, 1, 8, 12)
    mask[..., 6:] = 1
    masked, right = _target(name, features, mask), _target(name, features[..., 6:])
    if name == "wasserstein":
        assert torch.allclose(masked.mean, right.mean, atol=1e-5)
        assert torch.allclose(masked.basis @ masked.basis.T, right.basis @ right.basis.T, atol=1e-4)
    else:
        assert torch.equal(masked.sort(0).values, right.sort(0).values)
    # In the loss, a region is the part of the image under its mask.
    stat = style_statistic(name, seed=0)
    region = Region(mask, {})
    assert float(stat.loss(features, right, region)) < 1e-3
    assert float(stat.loss(features, _target(name, features[..., :6]), region)) > 0.1


@pytest.mark.parametrize("name", NEW)
def test_tiled_targets_match_whole_image_targets(name, style_image):
    net = get_network("embedded", "max", "cpu", "relu3_1")
    image = to_tensor(to_rgb01(np.tile(style_image, (2, 2, 1)))[0])  # 128 × 128

    def features(x, names):
        return net(preprocess(x, CAFFE), names)

    layers = ("relu1_1", "relu3_1")
    stat = style_statistic(name)
    whole = style_statistics(features, image, layers, stat)
    tiled = style_statistics(features, image, layers, stat, tile=48, margin=32)
    for layer in layers:
        if name == "wasserstein":
            for a, b in zip(whole[layer], tiled[layer]):
                assert torch.linalg.norm(a - b) / torch.linalg.norm(a) < 0.03, layer
        else:  # the same pixels, each once (tiles do not overlap), up to the tiles' context
            assert whole[layer].shape == tiled[layer].shape
            probe = style_statistic("sliced", seed=0)
            f = whole[layer].T.reshape(1, -1, *features(image, (layer,))[layer].shape[-2:])
            assert float(probe.loss(f, tiled[layer])) < 0.03, layer


def test_blends_are_mixtures_of_the_styles():
    torch.manual_seed(4)
    a, b = torch.randn(1, 3, 10, 10), torch.randn(1, 3, 10, 10) + 5
    for name in NEW:
        stat = style_statistic(name)
        raws = [stat.finish(stat.add(None, stat.part(f, None, 100))) for f in (a, b)]
        if name == "wasserstein":
            mean, second = stat.blend(raws, [0.25, 0.75])
            assert torch.allclose(mean, 0.25 * raws[0][0] + 0.75 * raws[1][0])
        else:
            mixed = stat.blend(raws, [0.25, 0.75])
            assert mixed.shape == (100, 3)
            assert int((mixed.mean(1) > 2.5).sum()) == 75  # three quarters from the second style


@pytest.mark.parametrize("name", NEW)
def test_half_precision_channels_last_features_give_fp32_losses_and_half_gradients(name):
    torch.manual_seed(5)
    style = torch.rand(1, 16, 12, 12)
    target = _target(name, style)
    wide = (torch.rand(1, 16, 10, 12) * 2).contiguous(memory_format=torch.channels_last)
    half = wide.to(torch.bfloat16).requires_grad_(True)
    full = half.detach().float().requires_grad_(True)
    losses = []
    for f in (half, full):
        loss = style_statistic(name, seed=7).loss(f, target)
        loss.backward()
        losses.append(loss)
    assert losses[0].dtype == torch.float32
    assert float(losses[0]) == pytest.approx(float(losses[1]), rel=1e-4)
    assert half.grad.dtype == torch.bfloat16
    assert torch.allclose(half.grad.float(), full.grad, rtol=0.02, atol=1e-3 * float(full.grad.abs().max()))


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_each_loss_lowers_its_own_distance(name, content_image, style_image):
    config = StyleConfig(**dict(FAST, size=64, iterations=10), style_loss=name)
    events = list(stylize_iter(content_image, style_image, config))
    first, last = events[0].losses["style"], events[-1].losses["style"]
    assert last < 0.6 * first, (first, last)  # measured: 0.42 (gram), 0.39 (wasserstein), 0.43 (sliced)
    assert events[-1].preview.shape == content_image.shape


@pytest.mark.parametrize("name", NEW)
def test_tiles_and_stacks_run_with_each_loss(name, content_image, style_image):
    config = StyleConfig(**dict(FAST, size=64, iterations=3), style_loss=name, tiling="on", tile_size=32)
    events = list(stylize_iter(content_image, style_image, config))
    assert events[-1].info["tiled"]["tiles"] > 1
    out = events[-1].preview
    # measured mean change: 12.9 (wasserstein), 5.5 (sliced), 4.5 (gram) in 0-255 units
    assert out.shape == content_image.shape and np.abs(out.astype(float) - content_image).mean() > 2
    stack = np.stack([content_image[::2, ::2, 0], content_image[::2, ::2, 1]])  # (2, 22, 32): grey slices
    result = stylize_stack(
        stack, style_image, StyleConfig(**dict(FAST, size=32, iterations=2), style_loss=name)
    )
    assert result.shape == stack.shape and np.abs(result.astype(float) - stack).mean() > 2


def test_style_loss_is_an_advanced_choice_and_a_bad_value_gets_one_message():
    spec = option_spec("style_loss")
    assert spec.group == "advanced" and spec.choices == STYLE_LOSSES and spec.default == "gram"
    with pytest.raises(
        ConfigError,
        match=(
            r"^style_loss: must be one of gram, wasserstein, sliced, gram\+sliced, gram\+wasserstein, "
            r"wasserstein\+sliced, got 'w2'$"
        ),
    ):
        StyleConfig(style_loss="w2")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", NEW)
def test_new_losses_do_not_synchronise_the_gpu(name, content_image, style_image):
    from napari_style_transfer.engine.content_run import ContentRun
    from napari_style_transfer.engine.guidance import Guidance
    from napari_style_transfer.engine.stylizer import Stylizer

    config = StyleConfig(size=128, style_loss=name, device="cuda", precision="bf16", multiscale=False)
    run = ContentRun(Stylizer(style_image, config), content_image, Guidance())
    objective, content = run.objective(run.output_shape)
    image = content.clone().requires_grad_(True)
    objective.loss(image)[0].backward()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(3):
                objective.loss(image)[0].backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "called a synchronizing" in str(w.message)]
    assert not syncs, syncs
