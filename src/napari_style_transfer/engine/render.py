"""Stage 4, render: an RGB [0, 1] result → the content's dtype, channels and value range.

Colour handling that happens after the optimisation (the content's chroma put back on a
luminance transfer; the feathered keep-content blend of masked runs) lives here too.
"""

from __future__ import annotations

import numpy as np
import torch

from . import color
from .images import ImageInfo, from_rgb01, resize, to_numpy, to_tensor
from .masks import feathered


class Renderer:
    """Turns images of any size of one run into results in the content's format."""

    def __init__(
        self,
        info: ImageInfo,
        content_rgb: np.ndarray,
        chroma_source: torch.Tensor | None,
        keep_plane: torch.Tensor | None,
        feather: float,
        output_shape: tuple[int, int],
    ):
        self.info, self.content_rgb, self.chroma_source = info, content_rgb, chroma_source
        self.keep_plane, self.feather, self.output_shape = keep_plane, feather, output_shape
        self._keep_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def keep_mask(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        """(soft mask (h, w, 1), content RGB at ``shape``) for blending, or None when everything is stylised."""
        if self.keep_plane is None:
            return None
        if shape not in self._keep_cache:
            sigma = self.feather * max(shape) / max(self.output_shape)
            soft = feathered(self.keep_plane, shape, sigma)[0, 0].numpy()[..., None]
            content = to_numpy(resize(to_tensor(self.content_rgb), shape))
            self._keep_cache = {shape: (soft, content)}  # keep one size only
        return self._keep_cache[shape]

    def __call__(self, image: torch.Tensor | np.ndarray) -> np.ndarray:
        """An RGB [0, 1] image (tensor (1, 3, h, w) or numpy (h, w, 3)) in the content's format."""
        with torch.no_grad():
            rgb = image if isinstance(image, np.ndarray) else to_numpy(image)
        rgb = np.clip(rgb, 0, 1)
        if self.chroma_source is not None:
            rgb = color.combine_luma_chroma(rgb, to_numpy(resize(self.chroma_source, rgb.shape[:2])))
        keep = self.keep_mask(tuple(rgb.shape[:2]))
        if keep is not None:
            soft, content = keep
            rgb = soft * rgb + (1 - soft) * content
        return from_rgb01(rgb, self.info)


__all__ = ["Renderer"]
