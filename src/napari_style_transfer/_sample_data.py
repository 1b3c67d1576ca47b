"""napari sample data: File ▸ Open Sample ▸ Style Transfer ▸ Cat and swirls (works offline)."""

from __future__ import annotations

from typing import Any

from .samples import sample_pair as _sample_arrays


def sample_pair() -> list[tuple[Any, dict[str, Any], str]]:
    """The content photo and the style texture as two RGB image layers."""
    content, style = _sample_arrays()
    return [
        (content, {"name": "cat (content)", "rgb": True}, "image"),
        (style, {"name": "swirls (style)", "rgb": True}, "image"),
    ]
