"""The result layer of a run: inserted hidden before the worker starts, shown with the first
image, updated, finished, the same way for a 2D run, one slice of a stack, and all slices of a
stack.

Inserting a layer (napari's ``add_image``) takes 65-100 ms of the GUI thread, and more than
twice that while the worker computes (they share the GIL), so the widget inserts it in its own
turn of the event loop before the worker starts (:meth:`ResultLayer.insert_placeholder`):
zeros of the first image's shape and dtype, predicted from the request (no pixels are read),
and hidden, so it never shows black. The first image then only sets the data and makes it
visible; a run that shows no image removes it (:meth:`ResultLayer.discard_placeholder`).

A 2D run's images replace the layer's data (a finer scale of a multi-scale run also moves
the layer so it stays over the content); one slice of a stack is a one-slice nD layer placed
over that slice; an all-slices run fills ONE nD layer (zeros until a slice is finished)
slice by slice, and its final stack replaces the data at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..plugin.layers import result_display
from ..plugin.result_metadata import result_metadata
from ..plugin.run_request import RunRequest


def unwrap(obj: Any) -> Any:
    """The napari object behind a PublicOnlyProxy (plugins get proxies of the viewer)."""
    return getattr(obj, "__wrapped__", obj)


class ResultLayer:
    """The one result layer of a run (None until it is inserted; hidden until the first image)."""

    def __init__(self, viewer: Any, request: RunRequest):
        self._viewer = viewer
        self.request = request
        self.layer: Any = None
        self.images_shown = 0
        #: The layer holds the hidden placeholder: no image has reached it yet.
        self.placeholder = False

    @property
    def exists(self) -> bool:
        """A layer with an image in it (the hidden placeholder does not count)."""
        return self.layer is not None and not self.placeholder

    @property
    def gone(self) -> bool:
        """True once the layer was made and then deleted from the viewer."""
        return self.layer is not None and self._viewer is not None and self.layer not in self._viewer.layers

    def insert_placeholder(self) -> None:
        """Insert the layer now, hidden, with zeros shaped like the first image will be."""
        if self._viewer is None or self.layer is not None:
            return
        hw, channels, dtype = first_image_spec(self.request)
        if "contrast_limits" not in self._display() and dtype != np.uint8:
            return  # napari would take its contrast limits from the zeros: made at the first image then
        index = (0,) * len(self.request.lead) if self.request.stack == "all" else None
        self._create(self._layer_data(np.zeros(hw + channels, dtype), index), hw, visible=False)
        self.placeholder = True

    def discard_placeholder(self) -> None:
        """Remove the placeholder of a run that showed no image (no layer is left behind)."""
        layer = self.layer
        if layer is None or not self.placeholder:
            return
        self.layer, self.placeholder = None, False  # first: the widget's "layer removed" slot ignores it
        if self._viewer is not None and layer in self._viewer.layers:
            self._viewer.layers.remove(layer)

    def show(self, image: np.ndarray, index: tuple[int, ...] | None = None) -> bool:
        """Put an image into the layer (made at the first image unless a placeholder waits for it).
        False if there is no layer for it.

        ``index``: all-slices runs, the slice ``image`` is; without it an all-slices run's
        ``image`` is the whole stack.
        """
        if self._viewer is None or self.gone:
            return False
        request = self.request
        hw = tuple(image.shape[:2]) if index is not None or request.stack != "all" else self._slice_hw(image)
        data = self._layer_data(image, index)
        if self.placeholder and not self._fits_placeholder(data):  # not the image it was made for
            self.discard_placeholder()
        if self.layer is None:
            self._create(data, hw)
        else:
            reshape = tuple(self.layer.data.shape) != tuple(data.shape)
            self.layer.data = data  # napari refreshes and emits a data event (also for the same array)
            if reshape:  # a finer scale of a multi-scale run (or a first image of another size)
                geometry = request.placement(hw)
                self.layer.scale = geometry["scale"]
                self.layer.translate = geometry["translate"]
            if self.placeholder:  # the first image: decided by its size, as _create does, then shown
                self.placeholder = False
                if self.layer.interpolation2d != self._interpolation(hw):
                    self.layer.interpolation2d = self._interpolation(hw)
                self.layer.visible = True
        self.images_shown += 1
        return True

    def _fits_placeholder(self, data: np.ndarray) -> bool:
        """The placeholder can take ``data``: the same dtype, axes and colour channels (the size may differ)."""
        held = self.layer.data
        same_channels = not self.layer.rgb or held.shape[-1] == data.shape[-1]
        return held.dtype == data.dtype and held.ndim == data.ndim and same_channels

    def _slice_hw(self, stack: np.ndarray) -> tuple[int, int]:
        inner = stack.shape[len(self.request.lead) :]
        return int(inner[0]), int(inner[1])

    def _layer_data(self, image: np.ndarray, index: tuple[int, ...] | None) -> np.ndarray:
        request = self.request
        if request.stack == "slice":  # one slice of a stack: a one-slice layer placed over it
            return image.reshape((1,) * len(request.lead) + image.shape)
        if request.stack != "all":
            return image
        fresh = self.layer is None or self.placeholder
        if index is None:  # the whole stack at the end
            return image if fresh else np.asarray(image, dtype=self.layer.data.dtype)
        shape = tuple(request.lead) + tuple(image.shape)
        if fresh and not self._placeholder_holds(shape, image.dtype):
            data = np.zeros(shape, dtype=image.dtype)
        else:  # the layer's stack (the placeholder's zeros too, when they are the stack's shape)
            data = self.layer.data
        data[tuple(index)] = image
        return data

    def _placeholder_holds(self, shape: tuple[int, ...], dtype: np.dtype) -> bool:
        """The hidden placeholder's zeros already are an all-slices stack of ``shape`` and ``dtype``."""
        held = self.layer.data if self.placeholder and self.layer is not None else None
        return held is not None and tuple(held.shape) == shape and held.dtype == dtype

    def _interpolation(self, hw: tuple[int, int]) -> str:
        """A result smaller than the content is drawn smoothly, not in blocks."""
        upsampled = any(r < c for r, c in zip(hw, self.request.content_shape))
        return "linear" if upsampled else "nearest"

    def _display(self) -> dict[str, Any]:
        request = self.request
        dtype = getattr(request.content_read, "dtype", None)
        return result_display(request.display, request.config.result_colour == "style", dtype)

    def _create(self, data: np.ndarray, hw: tuple[int, int], visible: bool = True) -> None:
        request = self.request
        self.layer = unwrap(
            self._viewer.add_image(
                data,
                name=request.result_name,
                metadata=result_metadata(request),
                interpolation2d=self._interpolation(hw),
                visible=visible,
                **request.placement(hw),
                **self._display(),
            )
        )

    def finish(self, metadata: dict[str, Any], *, stopped: bool = False, failed: bool = False) -> None:
        """Record the run's outcome in the layer's metadata and name ("… (stopped)", "… (failed)")."""
        if self.layer is None or self.gone:
            return
        self.layer.metadata.update(metadata)
        if failed:
            self.layer.name = f"{self.layer.name} (failed)"
        elif stopped:
            self.layer.name = f"{self.layer.name} (stopped)"


def first_image_spec(request: RunRequest) -> tuple[tuple[int, int], tuple[int, ...], np.dtype]:
    """((H, W), channel axis or (), dtype) of the first image a run shows, from the request alone.

    A 2D run or one slice of a stack: its first preview, at the first scale; all slices: a
    finished slice, at the output size. The content's dtype and channels (the canvas: float32
    RGB), or RGB for a grey content given a colour result (a boolean content: uint8), as the
    engine renders it (``engine.images.colour_result_info``).
    """
    read = request.content_read
    hw = tuple(int(s) for s in request.sizes[-1 if request.stack == "all" else 0])
    dtype = np.dtype(read.dtype)
    channels: tuple[int, ...] = (int(read.shape[-1]),) if request.rgb else ()
    if request.config.result_colour == "style" and not request.rgb:
        channels = (3,)
        dtype = np.dtype(np.uint8) if dtype == np.bool_ else dtype
    return (hw[0], hw[1]), channels, dtype
