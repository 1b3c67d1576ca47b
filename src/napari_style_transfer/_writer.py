"""napari writer: File ▸ Save Selected Layers… ▸ "Style Transfer result with its settings".

Writes an image layer as PNG or TIFF (a stack: TIFF only), atomically, and, for a result of
this plugin, with every setting of the run that made it embedded as a JSON settings
document (a PNG text chunk, the TIFF ImageDescription): ``napari-style-transfer --config
saved.png CONTENT STYLE -o again.png`` runs it again. No Qt here; a file that cannot be
written is one notification, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def layer_description(metadata: Mapping[str, Any]) -> str | None:
    """The settings document (JSON) a result layer's metadata holds, or None for other layers."""
    from .settings import to_json

    settings = metadata.get("settings")
    if not isinstance(settings, Mapping):
        return None
    inputs = {"content": metadata.get("content_layer"), "styles": list(metadata.get("style_layers") or [])}
    return to_json(settings, inputs=inputs)


def write_result(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write one image layer (``data``, napari's layer attributes) to ``path``; the paths written."""
    from napari.utils.notifications import show_error

    from .files import TIFF_SUFFIXES, ImageFileError, shown, write_image, write_stack

    if isinstance(data, (list, tuple)):  # a multiscale (pyramid) layer: its full-resolution level
        data = data[0]
    array = np.asarray(data)
    rgb = bool(attributes.get("rgb", False))
    description = layer_description(attributes.get("metadata") or {})
    try:
        if array.ndim > (3 if rgb else 2):
            if Path(path).suffix.lower() not in TIFF_SUFFIXES:
                raise ImageFileError(f"cannot write {shown(path)}: a stack of images needs a .tif file")
            write_stack(path, array, rgb, description)
        else:
            write_image(path, array, description)
    except ImageFileError as exc:
        show_error(str(exc))
        return []
    return [path]


__all__ = ["layer_description", "write_result"]
