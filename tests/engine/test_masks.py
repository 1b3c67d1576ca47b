"""Spatial control: label masks, label → style mapping, style masks (guided statistics of each style loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import ConfigError, ImageError, StyleConfig, stylize, stylize_iter
from napari_style_transfer.engine.images import to_rgb01, to_tensor
from napari_style_transfer.engine.losses import gram
from napari_style_transfer.engine.masks import feathered, guided_gram, plan_regions, to_plane_tensor
from napari_style_transfer.engine.vgg import CAFFE, get_network, preprocess

FAST = dict(
    size=64, iterations=12, multiscale=False, preview_every=0, device="cpu", precision="fp32"
)  # thresholds tuned in fp32; bf16 is covered in test_precision
LAYERS = StyleConfig().style_layers


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def style_distance(result: np.ndarray, style: np.ndarray) -> float:
    net = get_network("embedded", "max", "cpu", "relu5_1")
    with torch.no_grad():
        fo = net(preprocess(to_tensor(to_rgb01(result)[0]), CAFFE), LAYERS)
        fs = net(preprocess(to_tensor(to_rgb01(style)[0]), CAFFE), LAYERS)
    return float(
        np.mean(
            [
                (torch.linalg.norm(gram(fo[n]) - gram(fs[n])) / torch.linalg.norm(gram(fs[n]))).item()
                for n in LAYERS
            ]
        )
    )


@pytest.fixture(scope="module")
def two_styles() -> tuple[np.ndarray, np.ndarray]:
    """Red vertical stripes on black, and blue/green speckle: statistics far apart."""
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8] = (255, 40, 40)
    stripes[:, 1::8] = (255, 40, 40)
    rng = np.random.default_rng(0)
    dots = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    dots[..., 0] //= 6
    return stripes, dots


def halves(shape: tuple[int, int], left: int = 1, right: int = 0) -> np.ndarray:
    labels = np.full(shape, right, np.int32)
    labels[:, : shape[1] // 2] = left
    return labels


def test_guided_gram_with_a_full_mask_is_the_plain_gram():
    f = torch.randn(1, 8, 6, 5)
    assert torch.allclose(guided_gram(f, torch.ones(1, 1, 6, 5)), gram(f), rtol=1e-5, atol=1e-6)
    half = torch.zeros(1, 1, 6, 5)
    half[..., :3, :] = 1
    assert torch.allclose(guided_gram(f, half), gram(f[..., :3, :]), rtol=1e-5, atol=1e-6)


def test_feathered_mask_is_soft_only_near_the_edge():
    plane = to_plane_tensor(halves((40, 40)).astype(np.float32))
    soft = feathered(plane, (40, 40), sigma=2.0)[0, 0].numpy()
    assert soft[:, :12].min() > 0.99 and soft[:, 28:].max() < 0.01
    assert 0.3 < soft[20, 19] < 0.9 and 0.1 < soft[20, 20] < 0.7  # a ramp across the edge


def test_mask_keeps_the_outside_and_stylises_the_inside(content_image, style_image):
    labels = halves(content_image.shape[:2])
    events = list(
        stylize_iter(content_image, style_image, StyleConfig(**dict(FAST, iterations=8)), content_mask=labels)
    )
    out = events[-1].preview.astype(float)
    content = content_image.astype(float)
    assert out.shape == content.shape
    assert np.abs(out[:, 36:] - content[:, 36:]).mean() < 0.5  # beyond the feathered edge: the content
    assert np.abs(out[:, :28] - content[:, :28]).mean() > 6  # inside: stylised
    assert events[-1].info["regions"] == [{"labels": [1], "style": None}]


@pytest.mark.parametrize("style_loss", ["gram", "wasserstein", "sliced"])
def test_label_to_style_mapping_puts_each_style_in_its_region(content_image, two_styles, style_loss):
    stripes, dots = two_styles
    labels = halves(content_image.shape[:2], left=1, right=2)
    config = StyleConfig(**FAST, style_loss=style_loss)
    out = stylize(content_image, [stripes, dots], config, content_mask=labels, label_styles={1: 0, 2: 1})
    left, right = out[:, :32], out[:, 32:]
    assert style_distance(left, stripes) < 0.9 * style_distance(left, dots)
    assert style_distance(right, dots) < 0.9 * style_distance(right, stripes)


def test_style_mask_takes_statistics_from_its_region_only(content_image, two_styles):
    stripes, dots = two_styles
    style = np.concatenate([stripes[:, :32], dots[:, 32:]], axis=1)
    cfg = StyleConfig(**FAST)
    from_left = stylize(content_image, style, cfg, style_masks=[halves((64, 64))])
    from_right = stylize(content_image, style, cfg, style_masks=[1 - halves((64, 64))])
    assert style_distance(from_left, stripes) < style_distance(from_right, stripes)
    assert style_distance(from_right, dots) < style_distance(from_left, dots)


def test_unmapped_labels_keep_the_content_and_plans_group_by_style():
    labels = np.array([[0, 1, 2, 3]])
    assert [(r.labels, r.style) for r in plan_regions(labels, {1: 0, 3: 0, 2: 1}, 2)] == [
        ((1, 3), 0),
        ((2,), 1),
    ]
    assert [(r.labels, r.style) for r in plan_regions(labels, None, 2)] == [((1, 2, 3), None)]
    with pytest.raises(
        ConfigError, match=r"label_styles: label 7 is not in the mask \(its labels: 0, 1, 2, 3\)"
    ):
        plan_regions(labels, {7: 0}, 1)  # a label that is not in the image: refused, not silently the content


BAD = [
    (
        dict(content_mask=np.zeros((10, 10), int)),
        ImageError,
        r"^content_mask: shape \(10, 10\) does not match",
    ),
    (dict(content_mask="labels"), ImageError, r"^content_mask: expected a numpy array"),
    (
        dict(content_mask=np.full((43, 64), 0.5)),
        ImageError,
        r"^content_mask: dtype float64 is not a label image",
    ),
    (
        dict(content_mask=np.ones((43, 64), int), label_styles={1: 2}),
        ConfigError,
        r"^label_styles: must map labels to style indices 0 to 0",
    ),
    (
        dict(content_mask=np.ones((43, 64), int), label_styles={"a": 0}),
        ConfigError,
        r"^label_styles: must map integer label",
    ),
    (dict(label_styles={1: 0}), ConfigError, r"^label_styles: needs a content_mask"),
    (dict(style_masks=[None, None]), ConfigError, r"^style_masks: must have one entry"),
    (dict(style_masks=[np.zeros((64, 64), bool)]), ConfigError, r"^style_masks\[0\]: must mark part"),
    (dict(mask_feather=-1), ConfigError, r"^mask_feather: must be a finite number >= 0"),
    (dict(consistency_weight=1.0), ConfigError, r"^consistency_image: must be an image array"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_masks_are_clear_errors_before_any_step(kwargs, error, message, content_image, style_image):
    with pytest.raises(error, match=message):
        next(stylize_iter(content_image, style_image, StyleConfig(**FAST), **kwargs))
