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
import torch

from ..arrays import cast_to_dtype


def upsample_to(image: np.ndarray, hw: Sequence[int], rgb: bool) -> np.ndarray:
    """``image`` with its two spatial axes resized to ``hw``, in its own dtype.

    The spatial axes are the last two, or the two before the last when ``rgb`` (the last
    axis is colour); leading axes (slices of a stack) are kept. Bicubic, antialiased when
    shrinking; values stay within the image's own range (no overshoot).
    """
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


def result_channels(content_channels: int, result_colour: str) -> int:
    """The colour channels of a run's result (1: grey) from its content's: the same, except that a grey
    content given the style's colours (``result_colour='style'``) gives RGB, as the engine renders it
    (``images.colour_result_info``; a stack's slices alike). What :func:`upsample_to` is to be
    told (``rgb``: more than one) and what :func:`check_full_size` is to count per image."""
    content_channels = int(content_channels)
    return 3 if content_channels == 1 and result_colour == "style" else content_channels


def full_size_bytes(hw: Sequence[int], channels: int, dtype: np.dtype) -> int:
    """Peak bytes :func:`upsample_to` takes for a result of ``hw`` with ``channels`` planes (a
    stack's: slices × channels).

    The whole result in its dtype, plus one plane's working copies: the interpolated plane, its
    clipped copy and the rounding temporaries of the cast (float64 for wide dtypes, else float32).
    """
    dtype = np.dtype(dtype)
    pixels = int(hw[0]) * int(hw[1])
    work = 8 if dtype.itemsize > 2 and dtype != np.float32 else 4
    return pixels * channels * dtype.itemsize + pixels * (4 * work + dtype.itemsize)


def check_full_size(hw: Sequence[int], channels: int, dtype: np.dtype, what: str = "--full-size") -> None:
    """Refuse, before a run, a full-size result that will not fit in the free memory (MemoryLimitError).

    The run's own peak is over by then, so the two are not added; this is the check that the
    last step, after minutes of work, cannot fail for lack of memory.
    """
    from .events import MemoryLimitError
    from .memory import available_memory

    need = full_size_bytes(hw, channels, dtype)
    free = available_memory(torch.device("cpu"))
    if free is not None and need > free:
        raise MemoryLimitError(
            f"{what}: the result at the content's full size ({int(hw[1])}×{int(hw[0])} px) needs about "
            f"{need / 2**30:.1f} GiB of memory but only {free / 2**30:.1f} GiB are free; leave the "
            "full-size result off (the run's size is kept) or free some memory",
            0,
        )


def full_size_event(event: Any, hw: Sequence[int], rgb: bool) -> Any:
    """The engine's final event with its result at ``hw`` (other events as they are).

    A 2D run's final ``ProgressEvent`` has the result in ``preview``; a stack's final
    ``StackEvent`` in ``result`` (every slice is resized). ``rgb``: whether the *result* has a
    colour axis (:func:`result_channels`), which a grey content's need not share.
    """
    if not getattr(event, "done", False):
        return event
    for name in ("result", "preview"):  # StackEvent first: it also has .event.preview
        image = getattr(event, name, None)
        if image is not None:
            return dataclasses.replace(event, **{name: upsample_to(image, hw, rgb)})
    return event


__all__ = ["check_full_size", "full_size_bytes", "full_size_event", "result_channels", "upsample_to"]
