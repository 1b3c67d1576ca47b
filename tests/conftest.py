"""Shared fixtures: small real images (the sample pair, shrunk) for fast CPU tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def _sample_small() -> tuple[np.ndarray, np.ndarray]:
    from skimage.transform import resize

    from napari_style_transfer.samples import content_image, style_image

    content = resize(content_image(), (43, 64), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    return content, style_image(size=64)


@pytest.fixture
def content_image(_sample_small) -> np.ndarray:
    """(43, 64, 3) uint8 cat photo (a fresh copy per test)."""
    return _sample_small[0].copy()


@pytest.fixture
def style_image(_sample_small) -> np.ndarray:
    """(64, 64, 3) uint8 generated brush-stroke texture (a fresh copy per test)."""
    return _sample_small[1].copy()
