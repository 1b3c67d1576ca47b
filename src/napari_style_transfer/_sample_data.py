"""napari sample data: File ▸ Open Sample ▸ Style Transfer ▸ Cat and swirls, and the style gallery (offline)."""

from __future__ import annotations

from typing import Any

from .samples import GALLERY, gallery_image
from .samples import sample_pair as _sample_arrays

LayerData = list[tuple[Any, dict[str, Any], str]]


def sample_pair() -> LayerData:
    """The content photo and the style texture as two RGB image layers."""
    content, style = _sample_arrays()
    return [
        (content, {"name": "cat (content)", "rgb": True}, "image"),
        (style, {"name": "swirls (style)", "rgb": True}, "image"),
    ]


def gallery_layer(key: str) -> LayerData:
    """One gallery style as an image layer named '<name> (style)'."""
    image = gallery_image(key)
    return [(image, {"name": f"{GALLERY[key].name} (style)", "rgb": image.ndim == 3}, "image")]


def gallery_stained_glass() -> LayerData:
    return gallery_layer("stained_glass")


def gallery_brick() -> LayerData:
    return gallery_layer("brick")


def gallery_gravel() -> LayerData:
    return gallery_layer("gravel")


def gallery_hubble() -> LayerData:
    return gallery_layer("hubble")
