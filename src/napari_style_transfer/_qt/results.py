"""The result layer of a run: created at the first image, updated, finished, the same way
for a 2D run, one slice of a stack, and all slices of a stack.

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
    """The one result layer of a run (None until the first image arrives)."""

    def __init__(self, viewer: Any, request: RunRequest):
        self._viewer = viewer
        self.request = request
        self.layer: Any = None
        self.images_shown = 0

    @property
    def exists(self) -> bool:
        return self.layer is not None

    @property
    def gone(self) -> bool:
        """True once the layer was made and then deleted from the viewer."""
        return self.layer is not None and self._viewer is not None and self.layer not in self._viewer.layers

    def show(self, image: np.ndarray, index: tuple[int, ...] | None = None) -> bool:
        """Put an image into the layer (made at the first image). False if there is no layer for it.

        ``index``: all-slices runs, the slice ``image`` is; without it an all-slices run's
        ``image`` is the whole stack.
        """
        if self._viewer is None or self.gone:
            return False
        request = self.request
        hw = tuple(image.shape[:2]) if index is not None or request.stack != "all" else self._slice_hw(image)
        data = self._layer_data(image, index)
        if self.layer is None:
            self._create(data, hw)
        else:
            reshape = tuple(self.layer.data.shape) != tuple(data.shape)
            self.layer.data = data  # napari refreshes and emits a data event (also for the same array)
            if reshape:  # a finer scale of a multi-scale run
                geometry = request.placement(hw)
                self.layer.scale = geometry["scale"]
                self.layer.translate = geometry["translate"]
        self.images_shown += 1
        return True

    def _slice_hw(self, stack: np.ndarray) -> tuple[int, int]:
        inner = stack.shape[len(self.request.lead) :]
        return int(inner[0]), int(inner[1])

    def _layer_data(self, image: np.ndarray, index: tuple[int, ...] | None) -> np.ndarray:
        request = self.request
        if request.stack == "slice":  # one slice of a stack: a one-slice layer placed over it
            return image.reshape((1,) * len(request.lead) + image.shape)
        if request.stack != "all":
            return image
        if index is None:  # the whole stack at the end
            return image if self.layer is None else np.asarray(image, dtype=self.layer.data.dtype)
        if self.layer is None:
            data = np.zeros(tuple(request.lead) + tuple(image.shape), dtype=image.dtype)
        else:
            data = self.layer.data
        data[tuple(index)] = image
        return data

    def _create(self, data: np.ndarray, hw: tuple[int, int]) -> None:
        request = self.request
        upsampled = any(r < c for r, c in zip(hw, request.content_shape))
        self.layer = unwrap(
            self._viewer.add_image(
                data,
                name=request.result_name,
                metadata=result_metadata(request),
                # a result smaller than the content is drawn smoothly, not in blocks
                interpolation2d="linear" if upsampled else "nearest",
                **request.placement(hw),
                **result_display(request.display, request.config.result_colour == "style"),
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
