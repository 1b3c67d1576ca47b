"""The full-size output option: a result resized to the content's full size.

The CLI and the widget read the content reduced to what the run needs (``files/reduce.py``,
``plugin/layers.plan_layer_read``), so the engine's result has the run's size. With the output
option ``full_size`` (``settings.OUTPUT_SPECS``) the final image is resized here, bicubic,
to the (H, W) of the content as stored: in the CLI before it is written, in the widget in
the worker thread. No Qt, no napari.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..arrays import cast_to_dtype


def upsample_to(image: np.ndarray, hw: Sequence[int], rgb: bool) -> np.ndarray:
    """``image`` with its two spatial axes resized to ``hw``, in its own dtype.

    The spatial axes are the last two, or the two before the last when ``rgb`` (the last
    axis is colour); leading axes (slices of a stack) are kept. Bicubic, antialiased when
    shrinking; values stay within the image's own range (no overshoot).
    """
    import torch
    import torch.nn.functional as F

    hw = (int(hw[0]), int(hw[1]))
    data = np.moveaxis(image, -1, 0) if rgb else image[None]
    h, w = data.shape[-2:]
    if (h, w) == hw:
        return image
    planes = data.reshape(-1, h, w)
    wide = image.dtype.itemsize > 2 and image.dtype != np.float32  # float32 would round int32/float64
    work = np.float64 if wide else np.float32
    out = np.empty((planes.shape[0], *hw), dtype=image.dtype)
    for i, plane in enumerate(planes):
        values = np.ascontiguousarray(plane, dtype=work)
        t = torch.from_numpy(values)[None, None]
        shrink = hw[0] < h or hw[1] < w
        big = F.interpolate(t, size=hw, mode="bicubic", align_corners=False, antialias=shrink)[0, 0].numpy()
        big = np.clip(big, values.min(), values.max()) if values.size else big
        out[i] = cast_to_dtype(big, image.dtype)
    out = out.reshape(data.shape[:-2] + hw)
    return np.moveaxis(out, 0, -1) if rgb else out[0]


def full_size_event(event: Any, hw: Sequence[int], rgb: bool) -> Any:
    """The engine's final event with its result at ``hw`` (other events as they are).

    A 2D run's final ``ProgressEvent`` has the result in ``preview``; a stack's final
    ``StackEvent`` in ``result`` (every slice is resized).
    """
    if not getattr(event, "done", False):
        return event
    for name in ("result", "preview"):  # StackEvent first: it also has .event.preview
        image = getattr(event, name, None)
        if image is not None:
            return dataclasses.replace(event, **{name: upsample_to(image, hw, rgb)})
    return event


__all__ = ["full_size_event", "upsample_to"]
