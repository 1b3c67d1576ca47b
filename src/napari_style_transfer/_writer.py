"""napari writers: File ▸ Save Selected Layers… ▸ "Style Transfer result with its settings" or "movie".

Writes an image layer as PNG or TIFF (a stack: TIFF only), atomically, and, for a result of
this plugin, with every setting of the run that made it embedded as a JSON settings
document (a PNG text chunk, the TIFF ImageDescription): ``napari-style-transfer --config
saved.png CONTENT STYLE -o again.png`` runs it again. A time series, (T, H, W, 3) colour or
(T, H, W) gray, is saved as an MP4, GIF or WebP movie at the frame rate in its metadata
(``fps``, which the movie reader sets). No Qt here; a file that cannot be written is one
notification, and nothing is written.
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


def _fps(metadata: Mapping[str, Any]) -> float | None:
    """The layer's frame rate (set by the movie reader), or None when it has none that is usable."""
    fps = metadata.get("fps")
    return float(fps) if isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0 else None


def write_movie_layer(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a time-series image layer as a movie (.mp4, .gif, .webp); the paths written."""
    from napari.utils.notifications import show_error

    from .files import ImageFileError, shown, to_uint8
    from .files.movie import write_movie

    if isinstance(data, (list, tuple)):  # a multiscale (pyramid) layer: its full-resolution level
        data = data[0]
    rgb = bool(attributes.get("rgb", False))
    metadata = attributes.get("metadata") or {}
    try:
        if len(data.shape) != (4 if rgb else 3):
            raise ImageFileError(
                f"cannot write {shown(path)}: a movie needs a time series, (T, H, W) gray or (T, H, W, 3) "
                f"colour; this layer is {tuple(data.shape)}{' colour' if rgb else ''}"
            )
        frames = data if np.dtype(data.dtype) == np.uint8 else to_uint8(np.asarray(data))
        write_movie(path, frames, _fps(metadata), layer_description(metadata))
    except ImageFileError as exc:
        show_error(str(exc))
        return []
    return [path]


__all__ = ["layer_description", "write_movie_layer", "write_result"]
