"""A licence-clean content/style pair and a small style gallery, all without a download.

Content: scikit-image's ``chelsea`` (a cat; CC0, Stefan van der Walt), shipped in the
scikit-image wheel. Style: "swirls", a brush-stroke texture generated here by line-integral
convolution of noise along a vortex flow field, coloured with a warm/cool palette.
The gallery (:data:`GALLERY`) adds a generated stained-glass mosaic and three images that
ship in scikit-image: the CC0 textures ``brick`` and ``gravel`` and the public-domain
Hubble deep field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def content_image() -> np.ndarray:
    """(300, 451, 3) uint8 RGB photo of a cat."""
    from skimage import data

    return data.chelsea()


def style_image(size: int = 384, seed: int = 7) -> np.ndarray:
    """(size, size, 3) uint8 RGB swirling brush-stroke texture, generated deterministically."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    # Flow field: a few vortices plus a gentle diagonal drift.
    vx = np.full_like(xx, 0.3)
    vy = np.full_like(yy, 0.15)
    for _ in range(6):
        cx, cy = rng.uniform(0.1, 0.9, 2)
        strength = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
        dx, dy = xx - cx, yy - cy
        r2 = dx * dx + dy * dy + 0.01
        falloff = np.exp(-r2 / 0.08)
        vx += strength * -dy / np.sqrt(r2) * falloff
        vy += strength * dx / np.sqrt(r2) * falloff
    norm = np.sqrt(vx * vx + vy * vy) + 1e-9
    vx, vy = vx / norm, vy / norm
    # Line-integral convolution of coarse noise along the field: streaks like brush strokes.
    noise = rng.random((size // 2, size // 2))
    noise = np.kron(noise, np.ones((2, 2)))[:size, :size]
    acc = np.zeros_like(noise)
    for direction in (1.0, -1.0):
        px, py = xx * size, yy * size
        for _ in range(14):
            ix = np.clip(px.astype(int), 0, size - 1)
            iy = np.clip(py.astype(int), 0, size - 1)
            acc += noise[iy, ix]
            px = np.mod(px + direction * vx[iy, ix] * 1.5, size)
            py = np.mod(py + direction * vy[iy, ix] * 1.5, size)
    streaks = (acc - acc.min()) / (np.ptp(acc) + 1e-9)
    # Palette: deep blue → teal → ochre → cream, chosen by a slow field plus the streaks.
    hue = 0.6 * (np.sin(6 * xx + 3 * np.cos(5 * yy)) * 0.5 + 0.5) + 0.4 * streaks
    palette = np.array(
        [[20, 40, 110], [30, 110, 150], [220, 170, 60], [245, 230, 190], [120, 40, 30]], dtype=np.float64
    )
    position = np.clip(hue, 0, 1) * (len(palette) - 1)
    low = np.floor(position).astype(int).clip(0, len(palette) - 2)
    frac = (position - low)[..., None]
    rgb = palette[low] * (1 - frac) + palette[low + 1] * frac
    rgb *= (0.65 + 0.35 * streaks)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def sample_pair() -> tuple[np.ndarray, np.ndarray]:
    """(content, style) as uint8 RGB arrays."""
    return content_image(), style_image()


def stained_glass_image(size: int = 384, seed: int = 3, cells: int = 70) -> np.ndarray:
    """(size, size, 3) uint8 RGB stained-glass mosaic: jewel-coloured cells behind dark leading."""
    from scipy.spatial import cKDTree  # scikit-image's dependency

    rng = np.random.default_rng(seed)
    points = rng.uniform(0, size, (cells, 2))
    grid = np.stack(np.mgrid[0:size, 0:size], axis=-1).reshape(-1, 2)
    nearest, owners = cKDTree(points).query(grid, k=2)
    nearest, owner = nearest.reshape(size, size, 2), owners[:, 0].reshape(size, size)
    palette = np.array(
        [[160, 20, 40], [20, 60, 150], [30, 120, 60], [230, 170, 30], [110, 40, 130], [40, 150, 170]],
        dtype=np.float64,
    )
    colours = palette[rng.integers(0, len(palette), cells)] * rng.uniform(0.7, 1.15, (cells, 1))
    rgb = colours[owner]
    glow = 1.0 - 0.35 * np.clip(nearest[..., 0] / (size / np.sqrt(cells)), 0, 1)  # bright cell centres
    grain = 0.9 + 0.2 * rng.random((size, size))
    rgb *= (glow * grain)[..., None]
    leading = np.clip((nearest[..., 1] - nearest[..., 0]) / 3.0, 0, 1)  # dark lines between cells
    rgb = rgb * leading[..., None] + 25 * (1 - leading[..., None])
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


@dataclass(frozen=True)
class GalleryStyle:
    """A style image of the gallery: its key, its name, how to make it, and where it comes from."""

    key: str
    name: str
    make: Callable[[], np.ndarray]
    credit: str


#: The style gallery: every image generated here or shipped (CC0 / public domain) in scikit-image.
GALLERY: dict[str, GalleryStyle] = {
    style.key: style
    for style in (
        GalleryStyle("swirls", "Swirls", style_image, "generated here (brush strokes along a flow field)"),
        GalleryStyle("stained_glass", "Stained glass", stained_glass_image, "generated here (a mosaic)"),
        GalleryStyle("brick", "Brick", _skimage("brick"), "scikit-image, CC0 (cc0textures.com Bricks25)"),
        GalleryStyle("gravel", "Gravel", _skimage("gravel"), "scikit-image, CC0 (cc0textures.com Gravel04)"),
        GalleryStyle(
            "hubble", "Hubble deep field", _skimage("hubble_deep_field"), "scikit-image, NASA, public domain"
        ),
    )
}


def gallery_image(key: str) -> np.ndarray:
    """The gallery style ``key`` as an array (uint8, RGB or grayscale)."""
    return GALLERY[key].make()
