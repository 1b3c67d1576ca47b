"""Prepare once, stylise many: the styles, device, network and style targets shared by many contents.

A :class:`Stylizer` converts the style images, picks the device and precision, and (on the
first run) loads the network; the style Gram targets of each output size are computed once
and reused. Stacks use one for all their slices, batches one per worker, and
:func:`~.transfer.stylize_iter` one for a single image.
"""

from __future__ import annotations

import contextlib
import threading
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

_BENCHMARK_LOCK = threading.Lock()
#: Runs inside :func:`cudnn_benchmark` now: (all of them, the deterministic ones).
_BENCHMARK_USERS = [0, 0]
#: ``torch.backends.cudnn.benchmark`` as it was before the first of them (None: no run).
_BENCHMARK_SAVED: list[bool | None] = [None]


@contextlib.contextmanager
def cudnn_benchmark(device: torch.device, deterministic: bool) -> Iterator[None]:
    """cuDNN's autotuner on for a CUDA run inside the block; the process's own setting after it.

    The autotuner picks the fastest convolution algorithm for each shape (a run repeats the
    same shapes hundreds of times), but the flag is process-wide and napari runs other code:
    it is set for the run only. A deterministic run turns it off (the choice can differ
    between runs), and wins while it overlaps another run. Overlapping blocks (paused
    generators, threads) share a count, and the value saved at the first entry comes back
    when the last one leaves. Elsewhere than CUDA nothing changes.
    """
    if device.type != "cuda":
        yield
        return
    _benchmark_enter(deterministic)
    try:
        yield
    finally:
        _benchmark_exit(deterministic)


def _benchmark_enter(deterministic: bool) -> None:
    with _BENCHMARK_LOCK:
        if _BENCHMARK_USERS[0] == 0:
            _BENCHMARK_SAVED[0] = torch.backends.cudnn.benchmark
        _BENCHMARK_USERS[0] += 1
        _BENCHMARK_USERS[1] += int(deterministic)
        torch.backends.cudnn.benchmark = _BENCHMARK_USERS[1] == 0


def _benchmark_exit(deterministic: bool) -> None:
    with _BENCHMARK_LOCK:
        _BENCHMARK_USERS[0] -= 1
        _BENCHMARK_USERS[1] -= int(deterministic)
        if _BENCHMARK_USERS[0] == 0:
            torch.backends.cudnn.benchmark = bool(_BENCHMARK_SAVED[0])
            _BENCHMARK_SAVED[0] = None
        else:
            torch.backends.cudnn.benchmark = _BENCHMARK_USERS[1] == 0


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
        with (
            deterministic_algorithms(config.deterministic),
            cudnn_benchmark(self.device, config.deterministic),
        ):
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


__all__ = ["Stylizer", "cudnn_benchmark"]
