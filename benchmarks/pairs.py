"""Four licence-clean content × style pairs of different kinds, for tuning and comparing defaults.

All images ship with this project or with scikit-image (public domain / CC0 data bundled in its
wheel, nothing downloaded):

- ``photo_painting``: the sample cat photo × the sample brush-stroke painting (samples.py)
- ``microscopy_texture``: immunohistochemistry (a stained tissue micrograph) × gravel
- ``grayscale``: the cameraman × brick (both single-channel)
- ``flat_area``: the rocket launch (a large flat sky) × grass
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def _sample(which: int) -> np.ndarray:
    from napari_style_transfer.samples import sample_pair

    return sample_pair()[which]


PAIRS: dict[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]] = {
    "photo_painting": (lambda: _sample(0), lambda: _sample(1)),
    "microscopy_texture": (lambda: _skimage("immunohistochemistry"), lambda: _skimage("gravel")),
    "grayscale": (lambda: _skimage("camera"), lambda: _skimage("brick")),
    "flat_area": (lambda: _skimage("rocket"), lambda: _skimage("grass")),
}


def load_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(content, style) arrays of the pair called ``name`` (one of :data:`PAIRS`)."""
    content, style = PAIRS[name]
    return content(), style()
