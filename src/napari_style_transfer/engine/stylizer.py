"""Prepare once, stylise many: the styles, device, network and style targets shared by many contents.

A :class:`Stylizer` converts the style images, picks the device and precision, and (on the
first run) loads the network; the style Gram targets of each output size are computed once
and reused. Stacks use one for all their slices, batches one per worker, and
:func:`~.transfer.stylize_iter` one for a single image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from . import memory
from .config import ConfigError, StyleConfig
from .content_run import ContentRun
from .events import MemoryLimitError, ProgressEvent, StopRequest, StyleTransferError
from .guidance import Guidance
from .images import to_tensor
from .inputs import StyleImages, convert_styles
from .multiscale import run_scales
from .objective import FeatureExtractor, StyleTargets
from .runtime import deterministic_algorithms, select_device, select_runtime
from .scales import scale_sizes
from .stopping import Numbering, scale_budgets
from .tiling import plan_tiled_run, tiled_iter
from .vgg import WeightsError, get_network, resolve_weights


class Stylizer:
    """Styles and settings prepared once, for one content after another.

    ``guidance`` gives the style side (``style_masks``, ``style_contrast_limits``) and the
    default content side of every run; :meth:`run_iter` may give another content side.
    """

    def __init__(
        self,
        styles: np.ndarray | Sequence[np.ndarray],
        config: StyleConfig | None = None,
        guidance: Guidance | None = None,
    ):
        self.config = config or StyleConfig()
        self.guidance = guidance or Guidance()
        self.styles: StyleImages = convert_styles(styles, self.config, self.guidance)
        self.style_tensors = [to_tensor(s) for s in self.styles.rgbs]
        self.device = select_device(self.config.device)
        self.runtime = select_runtime(
            self.config.precision, self.device, self.config.compile, long_side=self.config.size
        )
        self.source = ""
        self._extract: FeatureExtractor | None = None
        self._shared_targets: StyleTargets | None = None

    def extractor(self) -> FeatureExtractor:
        """The network (loaded on first use, then cached for this process)."""
        if self._extract is None:
            config = self.config
            self.source, convention = resolve_weights(config.weights, config.weights_convention)
            if self.device.type == "cuda":
                torch.backends.cudnn.benchmark = not config.deterministic
            try:
                net = get_network(
                    config.weights,
                    config.pooling,
                    self.device,
                    config.deepest_layer,
                    channels_last=self.runtime.channels_last,
                )
            except (ConfigError, StyleTransferError, WeightsError):
                raise
            except Exception as exc:
                raise StyleTransferError(
                    f"could not load the VGG-19 network on {self.device}: {exc}"
                ) from exc
            self._extract = FeatureExtractor(net, convention, self.runtime)
        return self._extract

    def style_targets(self, styles: list[torch.Tensor] | None = None) -> StyleTargets:
        """The shared style targets, or fresh ones for ``styles`` recoloured for one content."""
        if styles is not None:
            return StyleTargets(
                self.extractor(), self.config, styles, self.styles.blend, self.styles.mask_planes, self.device
            )
        if self._shared_targets is None:
            self._shared_targets = StyleTargets(
                self.extractor(),
                self.config,
                self.style_tensors,
                self.styles.blend,
                self.styles.mask_planes,
                self.device,
            )
        return self._shared_targets

    def run_iter(
        self,
        content: np.ndarray,
        *,
        guidance: Guidance | None = None,
        stop: StopRequest = None,
        init_image: Any = None,
    ) -> Iterator[ProgressEvent]:
        """Stylise one content; one :class:`ProgressEvent` per optimiser step, the last with the result.

        ``guidance`` replaces the content side of the stylizer's guidance (masks, consistency);
        ``init_image`` starts the run from that image (``init='image'``).
        """
        run = ContentRun(self, content, guidance or self.guidance, init_image)
        config = run.config
        reason = self._tiling_reason(run)
        with deterministic_algorithms(config.deterministic):
            if reason is not None:
                plan = plan_tiled_run(run, reason)  # refuses (MemoryLimitError) before loading anything
                self.extractor()
                yield from tiled_iter(run, plan, stop=stop)
                return
            self.extractor()
            sizes = scale_sizes(run.content_shape, config)
            numbering = Numbering(scale_budgets(config.iterations, len(sizes)), len(sizes))
            end = yield from run_scales(run, sizes, stop, numbering, final=True)
        yield run.final_event(end, sizes, numbering)

    def _tiling_reason(self, run: ContentRun) -> str | None:
        """Why this run is tiled (None: it is not)."""
        tiling = run.config.tiling
        if tiling == "on":
            return "tiling: on"
        try:
            regions = len(run.inputs.masks.regions or ())
            memory.check_run_fits(run.output_shape, run.config, self.runtime, run.style_pixels, regions)
        except MemoryLimitError as exc:
            if tiling == "off":
                raise
            return str(exc)
        return None

    def stylize(
        self, content: np.ndarray, *, guidance: Guidance | None = None, stop: StopRequest = None
    ) -> np.ndarray:
        """Run :meth:`run_iter` to the end and return the result (content's dtype, channels, range)."""
        result = None
        for event in self.run_iter(content, guidance=guidance, stop=stop):
            if event.done:
                result = event.preview
        assert result is not None
        return result


__all__ = ["Stylizer"]
