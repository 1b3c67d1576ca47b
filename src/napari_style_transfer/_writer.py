"""napari writers: File ▸ Save Selected Layers… ▸ "Style Transfer result with its settings" or "movie".

Writes an image layer as PNG or TIFF (a stack: TIFF only), atomically, and, for a result of
this plugin, with every setting of the run that made it embedded as a JSON settings
document (a PNG text chunk, the TIFF ImageDescription): ``napari-style-transfer --config
saved.png CONTENT STYLE -o again.png`` runs it again; the document's ``inputs`` say what the
run took (layer names, the canvas, the mask, each style's region and its box) for the CLI's
notes. A time series, (T, H, W, 3) colour or (T, H, W) gray, is saved as an MP4, GIF or WebP
movie at the frame rate in its metadata (``fps``, which the movie reader sets). No Qt here; a
file that cannot be written is one notification, and nothing is written.
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
    return to_json(settings, inputs=layer_inputs(metadata))


def layer_inputs(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What a result's file records of its inputs: the content and style layers' names and, when the
    run had them, the canvas (its layers and how each was drawn), the mask (its layer and table) and
    each style's region (its Shapes layer and box in the style's pixels): what the CLI's
    ``--config`` notes, since a command line cannot take layers."""
    inputs: dict[str, Any] = {
        "content": metadata.get("content_layer"),
        "styles": list(metadata.get("style_layers") or []),
    }
    if isinstance(metadata.get("canvas"), Mapping):
        inputs["canvas"] = plain(metadata["canvas"])
    if metadata.get("mask_layer") is not None:
        inputs["mask"] = {"layer": str(metadata["mask_layer"]), **mask_record(metadata)}
    regions = metadata.get("style_regions")
    if isinstance(regions, (list, tuple)) and any(name is not None for name in regions):
        boxes = metadata.get("style_region_bounds")
        boxes = list(boxes) if isinstance(boxes, (list, tuple)) else []
        boxes += [None] * (len(regions) - len(boxes))
        inputs["style_regions"] = [
            None if name is None else {"layer": str(name), **(plain(box) if isinstance(box, Mapping) else {})}
            for name, box in zip(regions, boxes)
        ]
    return inputs


def mask_record(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A result's mask table (label → style row) and, when recorded, its layer's kind (Labels, Shapes)."""
    record: dict[str, Any] = {"label_styles": plain(metadata.get("label_styles") or {})}
    identities = metadata.get("input_identities")
    mask = identities.get("mask") if isinstance(identities, Mapping) else None
    if isinstance(mask, Mapping) and mask.get("kind"):
        record["kind"] = str(mask["kind"])
    return record


def plain(value: Any) -> Any:
    """``value`` as plain JSON values (numpy numbers and arrays as numbers and lists; anything else
    as its text), so that a result's record never keeps its file from being written."""
    import json

    def convert(obj: Any) -> Any:
        return obj.tolist() if hasattr(obj, "tolist") else str(obj)

    return json.loads(json.dumps(value, default=convert))


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


__all__ = ["layer_description", "layer_inputs", "write_movie_layer", "write_result"]
