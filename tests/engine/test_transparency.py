"""Transparent pixels of an RGBA content stay byte for byte, and the alpha is kept: CLI and API."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_style_transfer.cli import run
from napari_style_transfer.engine import StyleConfig, stylize_iter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def alpha_plane(shape):
    """Transparent left third, a semi-transparent column, opaque elsewhere."""
    alpha = np.full(shape, 255, np.uint8)
    alpha[:, : shape[1] // 3] = 0
    alpha[:, shape[1] // 3] = 100
    return alpha


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_cli_keeps_transparent_pixels_and_alpha(tmp_path, content_image, style_image, mode):
    alpha = alpha_plane(content_image.shape[:2])
    colour = content_image if mode == "RGBA" else content_image.mean(axis=2).astype(np.uint8)
    stacked = np.dstack([colour, alpha])
    stacked[alpha == 0, :-1] = 3  # hidden colours are kept too
    Image.fromarray(stacked, mode).save(tmp_path / "content.png")
    Image.fromarray(style_image).save(tmp_path / "style.png")
    out = tmp_path / "out.png"
    argv = [str(tmp_path / "content.png"), str(tmp_path / "style.png"), "-o", str(out)]
    assert run([*argv, "--size", "64", "--iterations", "2", "--no-multiscale", "-q"]) == 0
    given = np.asarray(Image.open(tmp_path / "content.png").convert("RGBA"))  # LA is read as RGBA
    with Image.open(out) as image:
        assert image.mode == "RGBA"
        result = np.asarray(image)
    np.testing.assert_array_equal(result[alpha == 0], given[alpha == 0])
    np.testing.assert_array_equal(result[..., 3], alpha)
    assert np.any(result[alpha == 255, :3] != given[alpha == 255, :3])  # stylised there


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_api_keeps_transparent_pixels_of_any_dtype_and_weighs_them_out(content_image, style_image, dtype):
    scale = 65535 / 255 if dtype == np.uint16 else 1 / 255
    alpha = alpha_plane(content_image.shape[:2]).astype(np.float64) * scale
    rgba = np.dstack([content_image * scale, alpha]).astype(dtype)
    rgba[alpha == 0, :3] = 3 if dtype == np.uint16 else 5.0  # (5.0: out of the colour range)
    config = StyleConfig(size=None, iterations=2, multiscale=False, preview_every=0, device="cpu")
    *_, last = stylize_iter(rgba, style_image, config)
    out = last.preview
    assert out.dtype == rgba.dtype and out.shape == rgba.shape
    np.testing.assert_array_equal(out[alpha == 0], rgba[alpha == 0])
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    assert last.info["regions"] == [{"labels": [], "style": None}]  # the alpha weighs the style loss
