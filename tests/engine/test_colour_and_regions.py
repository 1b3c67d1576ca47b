"""Issue 25: colour results from single-channel content, and style regions (the texture of one area).

The real engine at tiny sizes: a grey content styled after a coloured image comes back RGB
with ``result_colour='style'`` (in the content's dtype and value range), and
``Guidance.style_regions`` takes a style's statistics from one rectangle of it only.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_style_transfer.engine import ConfigError, Guidance, StyleConfig, stylize, stylize_stack, to_rgb01

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=12, multiscale=False, preview_every=0)


def grey(content_image: np.ndarray) -> np.ndarray:
    return (content_image[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)


def red_and_blue() -> np.ndarray:
    """A style whose left half is red and right half is blue, with a little texture on both."""
    rng = np.random.default_rng(0)
    style = np.zeros((40, 80, 3), np.uint8)
    style[:, :40] = (220, 20, 20)
    style[:, 40:] = (20, 20, 220)
    return np.clip(style + rng.integers(-15, 15, style.shape), 0, 255).astype(np.uint8)


def channel_means(rgb: np.ndarray) -> np.ndarray:
    return rgb.reshape(-1, 3).astype(float).mean(axis=0)


@pytest.mark.parametrize(
    "dtype, scale", [(np.uint8, 1), (np.uint16, 40), (np.float32, 1 / 255), (np.int16, 10)]
)
def test_grey_content_gives_rgb_in_the_styles_colours_and_the_contents_dtype(content_image, dtype, scale):
    content = (grey(content_image).astype(np.float64) * scale).astype(dtype)
    style = np.zeros((48, 48, 3), np.uint8)
    style[..., 2] = 230  # a blue style: the colour result must be blue, the grey one grey
    style[::4, :, 1] = 90
    out = stylize(content, style, result_colour="style", **{**FAST, "iterations": 20})
    assert out.ndim == 3 and out.shape[-1] == 3 and out.dtype == content.dtype
    means = channel_means(out)
    spread = float(np.ptp(content))
    assert means[2] > means[0] + 0.1 * spread and means[2] > means[1] + 0.1 * spread, means / spread
    # the values keep the content's range (so a start image or a neighbour slice converts back)
    info = to_rgb01(content)[1]
    assert info.low - 1 <= out.min() and out.max() <= info.high + 1  # (rounded to integers)
    grey_out = stylize(content, style, **FAST)
    assert grey_out.ndim == 2 and grey_out.dtype == content.dtype


def test_rgb_content_is_unchanged_by_result_colour(content_image, style_image):
    a = stylize(content_image, style_image, result_colour="style", **FAST)
    b = stylize(content_image, style_image, **FAST)
    np.testing.assert_array_equal(a, b)


def test_boolean_content_gives_uint8_rgb(content_image):
    content = grey(content_image) > 100
    out = stylize(content, red_and_blue(), result_colour="style", **{**FAST, "iterations": 2})
    assert out.dtype == np.uint8 and out.shape[-1] == 3


def test_keeping_the_contents_colours_is_refused_with_a_colour_result():
    with pytest.raises(ConfigError, match=r"^result_colour: 'style' needs preserve_colors 'none'"):
        StyleConfig(result_colour="style", preserve_colors="luminance")
    with pytest.raises(ConfigError, match=r"^result_colour: must be one of content, style, got 'rgb'"):
        StyleConfig(result_colour="rgb")


def test_grey_stack_gives_an_rgb_stack_and_unstylised_slices_are_grey_rgb(content_image):
    content = grey(content_image)[:32, :32]
    stack = np.stack([content, np.roll(content, 2, axis=1), content])
    out = stylize_stack(
        stack, red_and_blue(), slices=[0, 1], result_colour="style", **{**FAST, "iterations": 3}
    )
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[2], np.repeat(content[..., None], 3, axis=-1))  # not stylised
    assert out[1].std(axis=-1).mean() > 1  # coloured (a coherent slice started from slice 0's colours)


def test_a_style_region_takes_the_texture_of_that_rectangle_only(content_image):
    content = grey(content_image)
    style = red_and_blue()
    common = dict(result_colour="style", **{**FAST, "iterations": 20})
    left = stylize(content, style, guidance=Guidance(style_regions=[(0, 0, 40, 40)]), **common)
    right = stylize(content, style, guidance=Guidance(style_regions=[(40, 0, 80, 40)]), **common)
    red, blue = channel_means(left), channel_means(right)
    # (a 32 px run is short: the colours do not reach the style's, but each goes its own way)
    assert red[0] > blue[0] + 15 and blue[2] > red[2] + 30, (red, blue)
    assert blue[2] > blue[0] + 30, blue


def test_a_region_and_a_style_mask_intersect(content_image):
    content = grey(content_image)
    style = red_and_blue()
    mask = np.zeros(style.shape[:2], np.uint8)
    mask[:, 30:50] = 1  # both halves; the region keeps only the blue part of it
    guidance = Guidance(style_masks=[mask], style_regions=[(40, 0, 80, 40)])
    out = stylize(content, style, guidance=guidance, result_colour="style", **{**FAST, "iterations": 20})
    means = channel_means(out)
    assert means[2] > means[0] + 30, means
    with pytest.raises(
        ConfigError, match=r"^style_regions\[0\]: the region and the style mask do not overlap"
    ):
        stylize(
            content, style, guidance=Guidance(style_masks=[mask], style_regions=[(60, 0, 80, 40)]), **FAST
        )


@pytest.mark.parametrize(
    "regions, message",
    [
        ([(5, 0, 5, 10)], r"^style_regions\[0\]: must be None or \(x0, y0, x1, y1\) .* got \(5, 0, 5, 10\)"),
        ([(0, 0, 10)], r"^style_regions\[0\]: must be None or \(x0, y0, x1, y1\)"),
        ([None, (-1, 0, 3, 3)], r"^style_regions\[1\]: must be None or"),
        ([("a", 0, 3, 3)], r"^style_regions\[0\]: must be None or"),
    ],
)
def test_bad_regions_are_one_message_naming_the_field(regions, message):
    with pytest.raises(ConfigError, match=message):
        Guidance(style_regions=regions)


def test_regions_must_fit_the_styles(content_image, style_image):
    with pytest.raises(
        ConfigError, match=r"^style_regions: must have one entry \(or None\) per style image \(1\), got 2"
    ):
        stylize(content_image, style_image, guidance=Guidance(style_regions=[None, None]), **FAST)
    with pytest.raises(ConfigError, match=r"^style_regions\[0\]: must overlap the style image"):
        stylize(content_image, style_image, guidance=Guidance(style_regions=[(500, 0, 600, 10)]), **FAST)
