"""Colour preservation after Gatys et al. 2017, *Controlling Perceptual Factors in NST*.

Two ways: luminance-only transfer (stylise the luma, keep the content's chroma in YIQ),
and colour matching (give the style image the content's colour mean and covariance
before the transfer).
"""

from __future__ import annotations

import numpy as np

_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _RGB_TO_YIQ.T.astype(rgb.dtype)


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return yiq @ _YIQ_TO_RGB.T.astype(yiq.dtype)


def luminance_image(rgb: np.ndarray) -> np.ndarray:
    """Luma replicated to three channels, the input of a luminance-only transfer."""
    y = rgb_to_yiq(rgb)[..., :1]
    return np.repeat(y, 3, axis=-1)


def match_luminance(style_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """Style luma, shifted and scaled to the content luma's mean and std (3 channels)."""
    ys = rgb_to_yiq(style_rgb)[..., 0]
    yc = rgb_to_yiq(content_rgb)[..., 0]
    matched = (ys - ys.mean()) * (yc.std() / max(float(ys.std()), 1e-6)) + yc.mean()
    return np.repeat(np.clip(matched, 0, 1)[..., None], 3, axis=-1).astype(np.float32)


def combine_luma_chroma(luma_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """RGB from the luma of ``luma_rgb`` and the I/Q chroma of ``content_rgb`` (same shape)."""
    yiq = rgb_to_yiq(content_rgb.astype(np.float32))
    yiq[..., 0] = rgb_to_yiq(luma_rgb.astype(np.float32))[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0, 1).astype(np.float32)


def _sym_sqrt(matrix: np.ndarray, inverse: bool = False) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    values = np.clip(values, 1e-8, None)
    power = -0.5 if inverse else 0.5
    return (vectors * values**power) @ vectors.T


def match_color_histogram(style_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The style image with the content's colour mean and covariance (linear transfer)."""
    s = style_rgb.reshape(-1, 3).astype(np.float64)
    c = content_rgb.reshape(-1, 3).astype(np.float64)
    mu_s, mu_c = s.mean(0), c.mean(0)
    cov_s = np.cov(s, rowvar=False) + 1e-6 * np.eye(3)
    cov_c = np.cov(c, rowvar=False) + 1e-6 * np.eye(3)
    transform = _sym_sqrt(cov_c) @ _sym_sqrt(cov_s, inverse=True)
    out = (s - mu_s) @ transform.T + mu_c
    return np.clip(out, 0, 1).reshape(style_rgb.shape).astype(np.float32)
