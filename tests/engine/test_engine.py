"""Engine tests with the real embedded VGG-19 weights on 32–96 px images."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import (
    ConfigError,
    StyleConfig,
    color,
    scale_sizes,
    stylize,
    stylize_iter,
)
from napari_style_transfer.engine.images import to_rgb01, to_tensor, value_range
from napari_style_transfer.engine.losses import content_loss, gram, style_loss, tv_loss
from napari_style_transfer.engine.vgg import (
    CAFFE,
    WeightsError,
    get_network,
    load_embedded_state_dict,
    preprocess,
)

FAST = dict(
    size=64, iterations=8, multiscale=False, preview_every=0, device="cpu", precision="fp32"
)  # thresholds tuned in fp32; bf16 is covered in test_precision


def style_distance(result: np.ndarray, style: np.ndarray) -> float:
    """Mean relative Gram distance over the default style layers (as in benchmarks/quality.py)."""
    net = get_network("embedded", "max", "cpu", "relu5_1")
    layers = StyleConfig().style_layers
    with torch.no_grad():
        fo = net(preprocess(to_tensor(to_rgb01(result)[0]), CAFFE), layers)
        fs = net(preprocess(to_tensor(to_rgb01(style)[0]), CAFFE), layers)
    return float(
        np.mean(
            [
                (torch.linalg.norm(gram(fo[n]) - gram(fs[n])) / torch.linalg.norm(gram(fs[n]))).item()
                for n in layers
            ]
        )
    )


def test_embedded_weights_load_and_respond_to_edges_more_than_flat():
    state = load_embedded_state_dict()
    assert state["0.weight"].shape == (64, 3, 3, 3)
    assert state["34.weight"].shape == (512, 512, 3, 3)
    net = get_network("embedded", "max", "cpu", "relu3_1")
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.training
    flat = torch.full((1, 3, 64, 64), 0.5)
    edges = flat.clone()
    edges[..., :, 32:] = 1.0
    edges[..., :, :32] = 0.0
    with torch.no_grad():
        f_flat = net(preprocess(flat, CAFFE), ("relu1_1", "relu2_1"))
        f_edge = net(preprocess(edges, CAFFE), ("relu1_1", "relu2_1"))
    # The response to a step edge varies across the image much more than to a flat field.
    for name in ("relu1_1", "relu2_1"):
        assert f_edge[name].std(dim=(2, 3)).mean() > 5 * f_flat[name].std(dim=(2, 3)).mean()


def test_corrupted_weights_file_fails_clearly(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"not the weights")
    with pytest.raises(WeightsError, match="corrupted"):
        load_embedded_state_dict(bad)


def test_gram_content_and_tv_losses_match_hand_computed_values():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # (1, 2, 2, 2)
    # F = [[1,2,3,4],[0,1,0,1]] ; G = F Fᵀ / 4
    expected = torch.tensor([[[30.0, 6.0], [6.0, 2.0]]]) / 4
    assert torch.allclose(gram(f), expected)
    target = torch.zeros_like(f)
    target[0, 0] = 1.0
    # ‖f − t‖² = (0+1+4+9) + (0+1+0+1) = 16 ; ‖t‖² = 4
    assert content_loss(f, target).item() == pytest.approx(16 / 4)
    g_target = torch.eye(2)[None]
    # ‖G − I‖² = (7.5−1)² + 1.5² + 1.5² + (0.5−1)² = 42.25+2.25+2.25+0.25 = 47 ; ‖I‖² = 2
    assert style_loss(f, g_target).item() == pytest.approx(47 / 2)
    img = torch.tensor([[[[0.0, 1.0], [1.0, 3.0]]]])
    # vertical diffs: 1, 2 → mean sq 2.5 ; horizontal: 1, 2 → 2.5
    assert tv_loss(img).item() == pytest.approx(5.0)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_each_optimizer_lowers_total_loss_and_style_distance(optimizer, content_image, style_image):
    cfg = StyleConfig(**dict(FAST, optimizer=optimizer, iterations=12 if optimizer == "lbfgs" else 20))
    events = list(stylize_iter(content_image, style_image, cfg))
    first, last = events[0].losses["total"], events[-1].losses["total"]
    assert last < 0.7 * first
    before = style_distance(np.asarray(content_image), style_image)
    after = style_distance(events[-1].preview, style_image)
    assert after < 0.8 * before


def test_fixed_seed_gives_identical_results_on_cpu(content_image, style_image):
    cfg = StyleConfig(**FAST, init="noise", seed=123)
    a = stylize(content_image, style_image, cfg)
    b = stylize(content_image, style_image, cfg)
    c = stylize(content_image, style_image, cfg.replace(seed=124))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_deterministic_mode_runs_and_restores_global_flag(content_image, style_image):
    before = torch.are_deterministic_algorithms_enabled()
    a = stylize(content_image, style_image, StyleConfig(**FAST, deterministic=True))
    assert torch.are_deterministic_algorithms_enabled() == before
    assert np.array_equal(a, stylize(content_image, style_image, StyleConfig(**FAST, deterministic=True)))


def test_blend_weights_move_result_toward_heavier_style(content_image):
    rng = np.random.default_rng(0)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8] = (255, 40, 40)
    stripes[:, 1::8] = (255, 40, 40)
    dots = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    dots[..., 0] //= 4
    base = dict(FAST, iterations=15)
    toward_a = stylize(content_image, [stripes, dots], StyleConfig(**base, style_blend_weights=(0.9, 0.1)))
    toward_b = stylize(content_image, [stripes, dots], StyleConfig(**base, style_blend_weights=(0.1, 0.9)))
    assert style_distance(toward_a, stripes) < style_distance(toward_b, stripes)
    assert style_distance(toward_b, dots) < style_distance(toward_a, dots)


def _chroma(rgb_uint8: np.ndarray) -> np.ndarray:
    return color.rgb_to_yiq(rgb_uint8.astype(np.float32) / 255)[..., 1:]


def _chroma_stats(rgb_uint8: np.ndarray) -> np.ndarray:
    iq = _chroma(rgb_uint8).reshape(-1, 2)
    return np.concatenate([iq.mean(0), iq.std(0)])


@pytest.mark.parametrize("mode", ["luminance", "histogram"])
def test_colour_preservation_keeps_content_chroma(mode, content_image):
    # A striped blue/cyan style pulls the colours of a warm photo far from the content's.
    style = np.zeros((64, 64, 3), np.uint8)
    style[::4] = (0, 80, 255)
    style[1::4] = (0, 80, 255)
    style[2::4] = (0, 220, 230)
    style[3::4] = (0, 220, 230)
    cfg = StyleConfig(**dict(FAST, iterations=30))
    plain = stylize(content_image, style, cfg)
    kept = stylize(content_image, style, cfg.replace(preserve_colors=mode))
    if mode == "luminance":
        # Per pixel: the chroma is the content's, up to uint8 rounding (and clipping, rarely).
        chroma_error = np.abs(_chroma(kept) - _chroma(content_image))
        assert chroma_error.mean() < 0.002 and np.percentile(chroma_error, 99) < 0.01
        assert np.abs(_chroma(plain) - _chroma(content_image)).mean() > 0.02
    # Globally: the colour statistics stay much closer to the content's than without.
    ref = _chroma_stats(content_image)
    assert np.abs(_chroma_stats(kept) - ref).sum() < 0.5 * np.abs(_chroma_stats(plain) - ref).sum()


def test_match_color_histogram_gives_style_the_content_mean_and_covariance():
    rng = np.random.default_rng(1)
    content = rng.random((32, 32, 3)).astype(np.float32) * [0.3, 0.6, 0.2] + [0.4, 0.2, 0.5]
    style = rng.random((32, 32, 3)).astype(np.float32) * [0.5, 0.1, 0.4]
    out = color.match_color_histogram(style, content.astype(np.float32))
    assert np.allclose(out.reshape(-1, 3).mean(0), content.reshape(-1, 3).mean(0), atol=0.01)
    assert np.allclose(
        np.cov(out.reshape(-1, 3), rowvar=False), np.cov(content.reshape(-1, 3), rowvar=False), atol=0.003
    )


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(np.uint8, 255), (np.uint16, 4000), (np.float32, 1.0), (np.float64, 700.0)],
)
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_result_keeps_dtype_channels_and_range(dtype, scale, channels, style_image):
    rng = np.random.default_rng(2)
    shape = (48, 40) if channels is None else (48, 40, channels)
    content = (rng.random(shape) * scale).astype(dtype)
    out = stylize(
        content, style_image, StyleConfig(size=None, iterations=2, multiscale=False, preview_every=0)
    )
    assert out.dtype == content.dtype
    assert out.shape == content.shape
    color_in = content[..., :3] if channels == 4 else content
    color_out = out[..., :3] if channels == 4 else out
    if channels == 4:
        assert np.array_equal(out[..., 3], content[..., 3])  # alpha kept as it was
    low, high = value_range(color_in)
    assert color_out.min() >= low - 1e-6 * scale and color_out.max() <= high + 1e-6 * scale
    # Two small steps from the content: the values stay where the content's were.
    assert abs(color_out.astype(np.float64).mean() - color_in.astype(np.float64).mean()) < 0.1 * scale


def test_output_size_is_the_long_side(content_image, style_image):
    out = stylize(content_image, style_image, StyleConfig(**dict(FAST, size=40, iterations=1)))
    h, w = np.asarray(content_image).shape[:2]
    assert max(out.shape[:2]) == 40
    assert out.shape[0] / out.shape[1] == pytest.approx(h / w, rel=0.05)


def test_multiscale_goes_coarse_to_fine_and_warm_starts(content_image, style_image):
    cfg = StyleConfig(size=800, multiscale=True)
    sizes = scale_sizes((300, 450), cfg)
    assert [max(s) for s in sizes] == [200, 400, 800]
    assert scale_sizes((300, 450), cfg.replace(multiscale=False)) == [(533, 800)]
    assert [max(s) for s in scale_sizes((300, 450), cfg.replace(size=256))] == [256]
    events = list(
        stylize_iter(content_image, style_image, StyleConfig(size=420, iterations=2, preview_every=1))
    )
    assert [e.scale for e in events] == [0, 0, 1, 1]
    assert max(events[0].preview.shape[:2]) == 210 and max(events[-1].preview.shape[:2]) == 420
    assert events[-1].total_steps == 4 and events[-1].done


def test_events_report_losses_elapsed_and_previews_every_k(content_image, style_image):
    events = list(
        stylize_iter(
            content_image,
            style_image,
            StyleConfig(**dict(FAST, iterations=6, preview_every=2, tv_weight=0.1)),
        )
    )
    assert [e.step for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.preview is not None for e in events] == [False, True, False, True, False, True]
    assert set(events[0].losses) == {"content", "style", "tv", "total"}
    assert all(b.elapsed >= a.elapsed for a, b in zip(events, events[1:]))
    final = events[-1]
    assert final.done and not final.stopped and final.info["device"] == "cpu"


@pytest.mark.parametrize("how", ["event", "callable"])
def test_stop_request_ends_generator_within_one_iteration(how, content_image, style_image):
    stop = threading.Event()
    request = stop if how == "event" else stop.is_set
    events = []
    for event in stylize_iter(
        content_image, style_image, StyleConfig(**dict(FAST, iterations=50)), stop=request
    ):
        events.append(event)
        if event.step == 3:
            stop.set()
    assert len(events) == 4  # three steps, then the final event, no further step
    final = events[-1]
    assert final.done and final.stopped and final.step == 3
    assert final.preview.shape[:2] == (43, 64) or max(final.preview.shape[:2]) == 64


def test_init_image_and_noise(content_image, style_image):
    init = np.zeros((10, 10, 3), np.uint8)
    out = stylize(
        content_image, style_image, StyleConfig(**dict(FAST, iterations=1), init="image", init_image=init)
    )
    # One small L-BFGS step from black stays dark.
    assert out.mean() < np.asarray(content_image).mean()


INVALID = [
    ("iterations", 0, "iterations"),
    ("iterations", 2.5, "iterations"),
    ("size", 8, "size"),
    ("size", "big", "size"),
    ("content_weight", -1, "content_weight"),
    ("style_weight", float("nan"), "style_weight"),
    ("tv_weight", float("inf"), "tv_weight"),
    ("content_layers", ("relu9_9",), "content_layers"),
    ("style_layers", (), "style_layers"),
    ("style_layers", ("pool1",), "style_layers"),
    ("style_layer_weights", (1.0, 2.0), "style_layer_weights"),
    ("content_layer_weights", (-1.0,), "content_layer_weights"),
    ("optimizer", "sgd", "optimizer"),
    ("learning_rate", 0, "learning_rate"),
    ("init", "random", "init"),
    ("seed", -1, "seed"),
    ("deterministic", "yes", "deterministic"),
    ("style_scale", 0, "style_scale"),
    ("style_blend_weights", (0.0, 0.0), "style_blend_weights"),
    ("preserve_colors", "yes", "preserve_colors"),
    ("multiscale", 1, "multiscale"),
    ("pooling", "min", "pooling"),
    ("weights_convention", "bgr", "weights_convention"),
    ("device", "gpu", "device"),
    ("preview_every", -1, "preview_every"),
    ("precision", "fp8", "precision"),
    ("compile", "yes", "compile"),
    ("contrast_limits", (5, 1), "contrast_limits"),
]


@pytest.mark.parametrize(("field", "value", "name"), INVALID, ids=[f"{f}={v!r}" for f, v, _ in INVALID])
def test_every_invalid_config_value_names_its_field(field, value, name):
    with pytest.raises(ConfigError, match=rf"^{name}: must be "):
        StyleConfig(**{field: value})


def test_init_image_required_and_blend_count_checked(content_image, style_image):
    with pytest.raises(ConfigError, match="^init_image: "):
        StyleConfig(init="image")
    with pytest.raises(ConfigError, match="^style_blend_weights: .*one weight per style"):
        list(
            stylize_iter(
                content_image, [style_image, style_image], StyleConfig(**FAST, style_blend_weights=(1.0,))
            )
        )
    with pytest.raises(ConfigError, match="^content_weight|^style_weight"):
        StyleConfig(content_weight=0, style_weight=0)


def test_unavailable_device_is_a_clear_error(content_image, style_image):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="^device: 'cuda' is not available"):
        list(stylize_iter(content_image, style_image, StyleConfig(**dict(FAST, device="cuda"))))


def test_stop_between_scales_skips_the_next_scale(content_image, style_image):
    stop = threading.Event()
    events = []
    config = StyleConfig(size=420, iterations=2, preview_every=0, device="cpu")
    for event in stylize_iter(content_image, style_image, config, stop=stop):
        events.append(event)
        if event.scale == 0 and event.iteration == 2:
            stop.set()  # after the last step of the coarse scale
    final = events[-1]
    assert final.done and final.stopped and final.step == 2
    assert max(final.preview.shape[:2]) == 210  # the coarse result, not a set-up of the fine scale


def test_compiled_network_gives_the_eager_result(content_image, style_image):
    """compile=True runs torch.compile (inductor here) and optimises the same way as eager."""
    config = StyleConfig(**dict(FAST, size=40, iterations=3))
    eager = list(stylize_iter(content_image, style_image, config))[-1]
    net = get_network("embedded", "max", "cpu", config.deepest_layer)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "error", RuntimeWarning
            )  # a compiler failure would fall back with a warning
            compiled = list(stylize_iter(content_image, style_image, config.replace(compile=True)))[-1]
        assert net.compiled().compiled is not None  # it really ran compiled, not the eager fallback
    finally:
        # The compiler's caches hold (fake) tensors of this run's shapes: drop them for later tests.
        net.__dict__.pop("_compiled", None)
        torch._dynamo.reset()
    for key in ("content", "style", "total"):
        assert compiled.losses[key] == pytest.approx(eager.losses[key], rel=1e-3)
    assert np.abs(compiled.preview.astype(float) - eager.preview.astype(float)).max() <= 2


def test_a_failing_compiler_falls_back_to_the_eager_network_with_one_warning():
    from napari_style_transfer.engine.vgg import CompiledOrEager

    net = get_network("embedded", "max", "cpu", "relu1_1")
    runner = CompiledOrEager(net)

    def broken(*_):
        raise RuntimeError("no C++ compiler found")

    runner.compiled = broken
    x = torch.rand(1, 3, 8, 8)
    with pytest.warns(
        RuntimeWarning, match="torch.compile failed, running the network eagerly: .*no C\\+\\+ compiler"
    ):
        out = runner(x, ("relu1_1",))
    assert torch.equal(out["relu1_1"], net(x, ("relu1_1",))["relu1_1"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner(x, ("relu1_1",))  # eager from now on, no second warning
