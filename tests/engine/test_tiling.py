"""Tiled optimisation for outputs that do not fit: tile layout, blending, quality, auto-switch."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import ConfigError, MemoryLimitError, StyleConfig, stylize_iter
from napari_style_transfer.engine import memory as memory_module
from napari_style_transfer.engine.images import to_rgb01, to_tensor
from napari_style_transfer.engine.losses import gram
from napari_style_transfer.engine.memory import estimate_peak_memory
from napari_style_transfer.engine.style_stats import style_grams
from napari_style_transfer.engine.tiling import ramp_weights, tile_spans
from napari_style_transfer.engine.vgg import CAFFE, get_network, preprocess

FAST = dict(
    iterations=5, multiscale=False, preview_every=0, device="cpu", precision="fp32"
)  # thresholds tuned in fp32; bf16 is covered in test_precision
LAYERS = StyleConfig().style_layers


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _features(image: np.ndarray) -> dict[str, torch.Tensor]:
    net = get_network("embedded", "max", "cpu", "relu5_1")
    with torch.no_grad():
        return net(preprocess(to_tensor(to_rgb01(image)[0]), CAFFE), (*LAYERS, "relu4_2"))


def style_distance(result: np.ndarray, style: np.ndarray) -> float:
    fo, fs = _features(result), _features(style)
    return float(
        np.mean(
            [
                (torch.linalg.norm(gram(fo[n]) - gram(fs[n])) / torch.linalg.norm(gram(fs[n]))).item()
                for n in LAYERS
            ]
        )
    )


def content_distance(result: np.ndarray, content: np.ndarray) -> float:
    fo, fc = _features(result)["relu4_2"], _features(content)["relu4_2"]
    return float(torch.linalg.norm(fo - fc) / torch.linalg.norm(fc))


@pytest.fixture(scope="module")
def pair():
    from skimage.transform import resize

    from napari_style_transfer.samples import content_image, style_image

    content = resize(content_image(), (64, 96), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    return content, style_image(size=64)


@pytest.fixture(scope="module")
def tiled_and_untiled(pair):
    content, style = pair
    config = StyleConfig(size=96, **FAST)
    # Same optimisation per pixel: the tiled run does 5 steps untiled (the coarse pass is at
    # the output size here, as it is small), then 5 per tile.
    untiled = list(stylize_iter(content, style, config.replace(iterations=2 * FAST["iterations"])))
    tiled = list(stylize_iter(content, style, config.replace(tiling="on", tile_size=48)))
    return untiled, tiled


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(96, 48, 12), (64, 48, 12), (81, 48, 16), (1000, 256, 64), (40, 48, 12)]
)
def test_tiles_cover_the_image_and_weights_are_a_partition_of_unity(length, tile, overlap):
    spans = tile_spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(b - a == min(tile, length) for a, b in spans)
    assert all(prev[1] - nxt[0] >= overlap for prev, nxt in zip(spans, spans[1:]))
    total = np.zeros(length)
    for (a, b), w in zip(spans, ramp_weights(spans, length, overlap)):
        assert w.shape == (b - a,) and (w >= 0).all()
        total[a:b] += w
    assert np.allclose(total, 1.0)


def test_blending_two_different_tiles_has_no_step():
    # Two constant tiles (0 and 1) blended across a 16 px overlap: a smooth ramp, no jump.
    spans = tile_spans(80, 48, 16)
    weights = ramp_weights(spans, 80, 16)
    out = np.zeros(80)
    for value, (a, b), w in zip((0.0, 1.0), spans, weights):
        out[a:b] += value * w
    steps = np.abs(np.diff(out))
    assert out[0] == 0 and out[-1] == 1
    assert steps.max() < 2.5 / (spans[0][1] - spans[1][0])  # spread over the overlap (cosine: π/2 per width)


def test_tiled_style_grams_match_whole_image_grams(pair):
    _, style = pair
    from skimage.transform import resize

    big = resize(style, (224, 224), preserve_range=True).astype(np.uint8)
    net = get_network("embedded", "max", "cpu", "relu5_1")
    image = to_tensor(to_rgb01(big)[0])

    def features(x, names):
        return net(preprocess(x, CAFFE), names)

    whole = style_grams(features, image, LAYERS)
    tiled = style_grams(features, image, LAYERS, tile=96, margin=64)  # 3 × 3 tiles with context
    for name in LAYERS:
        assert torch.linalg.norm(tiled[name] - whole[name]) / torch.linalg.norm(whole[name]) < 0.02, name


def test_tiled_result_is_like_the_untiled_one(pair, tiled_and_untiled):
    content, style = pair
    untiled, tiled = tiled_and_untiled
    a, b = untiled[-1].preview, tiled[-1].preview
    assert a.shape == b.shape == (64, 96, 3) and b.dtype == np.uint8
    start = style_distance(content, style)
    assert style_distance(b, style) < 0.9 * start  # it is stylised
    # 48 px tiles see less context than the whole image, so they are a little less effective
    # per step (measured: style 0.72 tiled vs 0.62 untiled, content 0.86 vs 0.86).
    assert style_distance(b, style) < 1.25 * style_distance(a, style)
    assert content_distance(b, content) < 1.15 * content_distance(a, content)
    info = tiled[-1].info["tiled"]
    assert info["tiles"] == 6 and info["grid"] == [2, 3] and info["tile_size"] == 48
    assert tiled[-1].n_tiles == 6 and "tiled" not in untiled[-1].info
    # Events: the coarse pass (tile 0), then every tile's steps, numbered over the whole run.
    assert tiled[0].message.startswith("tiling: forced") and tiled[0].tile == 0
    assert [e.tile for e in tiled if e.tile][:: FAST["iterations"]] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in tiled] == list(range(1, tiled[-1].total_steps + 1))
    assert tiled[-1].done and tiled[-1].n_scales == 2


def test_no_seam_at_tile_borders(pair, tiled_and_untiled):
    _, tiled = tiled_and_untiled
    luma = tiled[-1].preview.astype(float).mean(-1)
    dx = np.abs(np.diff(luma, axis=1)).mean(0)  # per column boundary
    dy = np.abs(np.diff(luma, axis=0)).mean(1)
    for grad, length in ((dx, 96), (dy, 64)):
        spans = tile_spans(length, 48, 12)
        borders = sorted(
            {a for a, _ in spans[1:]}
            | {b for _, b in spans[:-1]}
            | {(p[1] + n[0]) // 2 for p, n in zip(spans, spans[1:])}
        )
        ratio = grad[[b - 1 for b in borders]].mean() / grad.mean()
        assert ratio < 1.35, (borders, ratio)


def test_auto_switches_to_tiles_when_memory_is_short(monkeypatch, pair):
    content, style = pair
    budget = estimate_peak_memory((64, 64)).total_bytes + estimate_peak_memory((32, 32)).activations_bytes
    monkeypatch.setattr(memory_module, "available_memory", lambda device: budget)
    config = StyleConfig(size=128, **dict(FAST, iterations=1))
    events = list(stylize_iter(content, style, config))
    final = events[-1]
    assert events[0].message.startswith("tiling: size: 128 px needs about")
    assert final.info["tiled"]["tiles"] > 1 and final.info["tiled"]["tile_size"] < 128
    assert final.preview.shape == (85, 128, 3)
    with pytest.raises(MemoryLimitError, match=r"^size: 128 px needs about"):
        list(stylize_iter(content, style, config.replace(tiling="off")))


def test_size_too_large_even_for_tiles_is_refused(monkeypatch, pair):
    content, style = pair
    monkeypatch.setattr(memory_module, "available_memory", lambda device: 400 * 2**20)
    with pytest.raises(
        MemoryLimitError,
        match=r"^size: 4000 px needs about .* even in tiles .* largest size that fits is about \d+ px",
    ):
        list(stylize_iter(content, style, StyleConfig(size=4000, **FAST)))
    with pytest.raises(MemoryLimitError, match=r"^tile_size: 1024 px tiles need about"):
        list(stylize_iter(content, style, StyleConfig(size=1200, tile_size=1024, **FAST)))


def test_stop_during_tiles_keeps_a_full_size_result(pair):
    content, style = pair
    stop = threading.Event()
    events = []
    config = StyleConfig(size=96, tiling="on", tile_size=48, **dict(FAST, iterations=2))
    for event in stylize_iter(content, style, config, stop=stop):
        events.append(event)
        if event.tile == 2:
            stop.set()
    final = events[-1]
    assert final.done and final.stopped and final.tile == 2
    assert final.preview.shape == (64, 96, 3)


@pytest.mark.parametrize(
    ("field", "value"),
    [("tiling", "maybe"), ("tiling", True), ("tile_size", 8), ("tile_size", 64.5), ("tile_overlap", -1)],
)
def test_invalid_tiling_options_name_their_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}: must be "):
        StyleConfig(**{field: value})
    with pytest.raises(ConfigError, match=r"^tile_overlap: must be .* less than half the tile size \(32\)"):
        StyleConfig(tile_size=64, tile_overlap=32)
