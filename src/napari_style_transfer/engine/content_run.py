"""One content's run: its converted inputs, its objective per size, its start image and its events.

A :class:`ContentRun` is what the drivers (multi-scale, tiles) work on; the things shared
between contents (styles, network, style targets) come from the :class:`~.stylizer.Stylizer`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from .config import StyleConfig
from .events import ProgressEvent
from .guidance import Guidance
from .images import resize, to_tensor
from .inputs import ContentInputs, StyleImages, convert_content
from .masks import Region, default_feather
from .objective import FeatureExtractor, Objective, StyleTargets
from .optimise import LoopSettings
from .render import Renderer
from .runtime import Runtime
from .scales import scale_sizes
from .stopping import Numbering


class SharedParts(Protocol):
    """What a content's run takes from the :class:`~.stylizer.Stylizer` that prepared it."""

    config: StyleConfig
    styles: StyleImages
    style_tensors: list[torch.Tensor]
    device: torch.device
    runtime: Runtime
    source: str

    def extractor(self) -> FeatureExtractor: ...

    def style_targets(self, styles: list[torch.Tensor] | None = None) -> StyleTargets: ...


@dataclass
class RunEnd:
    """Where a run of scales (or tiles) ended: the image (RGB [0, 1] tensor) and the counters."""

    image: torch.Tensor | None = None
    step: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    scale_times: list[float] = field(default_factory=list)
    stopped: bool = False
    scale: int = 0
    shape: tuple[int, int] = (0, 0)
    iteration: int = 0
    expected: int = 0  # steps the current call of the loop will likely take (its iteration count when fixed)


class ContentRun:
    """A content converted and ready to optimise at any size, with the stylizer's shared parts."""

    def __init__(
        self, stylizer: SharedParts, content: np.ndarray, guidance: Guidance, init_image: Any = None
    ):
        self.start = time.perf_counter()
        self.stylizer = stylizer
        config = stylizer.config
        if init_image is not None:
            config = config.replace(init="image", init_image=init_image)
        self.config: StyleConfig = config
        self.inputs: ContentInputs = convert_content(
            content, stylizer.styles, stylizer.style_tensors, config, guidance
        )
        self.device = stylizer.device
        self.consistency_weight = guidance.consistency_weight
        self.output_shape = scale_sizes(self.inputs.shape, config)[-1]
        self.feather = (
            default_feather(self.output_shape) if guidance.mask_feather is None else guidance.mask_feather
        )
        masks = self.inputs.masks
        self.render = Renderer(
            self.inputs.info,
            self.inputs.content_rgb,
            self.inputs.chroma_source,
            masks.keep_plane,
            self.feather,
            self.output_shape,
        )
        self.generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
        self.settings = LoopSettings.of(config, stylizer.runtime)
        self._targets: StyleTargets | None = None
        self._resized: dict[str, tuple[tuple[int, int], torch.Tensor]] = {}

    def _at_size(self, name: str, plane: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """``plane`` resized to ``shape`` and clamped to [0, 1]; the last size is kept (tiles share it)."""
        kept = self._resized.get(name)
        if kept is None or kept[0] != shape:
            kept = (shape, resize(plane, shape).clamp(0, 1))
            self._resized[name] = kept
        return kept[1]

    @property
    def content_shape(self) -> tuple[int, int]:
        return self.inputs.shape

    @property
    def guided(self) -> bool:
        return self.inputs.masks.guided

    @property
    def style_pixels(self) -> int:
        return self.stylizer.styles.largest_pixels(self.config, self.config.size or max(self.content_shape))

    @property
    def targets(self) -> StyleTargets:
        """The style targets: the stylizer's shared ones, unless the styles were recoloured for this content."""
        if self._targets is None:
            self._targets = self.stylizer.style_targets(
                self.inputs.styles if self.inputs.styles_follow_content else None
            )
        return self._targets

    def objective(self, shape: tuple[int, int]) -> tuple[Objective, torch.Tensor]:
        """The loss at one scale (output ``shape``) and the content at that size (on the device)."""
        content_t = resize(self.inputs.transfer_content, shape).to(self.device)
        return self.objective_for(content_t, max(shape), crop=None), content_t

    def objective_for(
        self, content_t: torch.Tensor, long_side: int, crop: Any = None, tile: int | None = None
    ) -> Objective:
        """The loss for ``content_t``, a crop (``crop`` of the output-size planes) or the whole image."""
        inputs = self.inputs
        shape = tuple(content_t.shape[-2:]) if crop is None else self.output_shape
        consistency = None
        if inputs.consistency is not None:
            consistency = self._at_size("consistency", inputs.consistency, shape)
            consistency = (consistency if crop is None else consistency[crop]).to(self.device)
        extract = self.stylizer.extractor()
        common = dict(consistency=consistency, consistency_weight=self.consistency_weight)
        if not self.guided:
            return Objective(
                extract, self.config, content_t, style_targets=self.targets.blended(long_side, tile), **common
            )
        masks = inputs.masks
        targets = self.targets.for_regions(masks.regions, long_side, tile)
        planes = [self._at_size(f"region {i}", p, shape) for i, p in enumerate(masks.region_planes or ())]
        regions = [
            Region((p if crop is None else p[crop]).to(self.device), t) for p, t in zip(planes, targets)
        ]
        return Objective(extract, self.config, content_t, regions=regions, **common)

    def initial_image(self, shape: tuple[int, int], content_t: torch.Tensor) -> torch.Tensor:
        """The first scale's starting image: the content, noise, or the given start image."""
        if self.config.init == "content":
            return content_t.clone()
        if self.config.init == "noise":
            return torch.rand((1, 3, *shape), generator=self.generator).to(self.device)
        assert self.inputs.init_rgb is not None
        return resize(to_tensor(self.inputs.init_rgb), shape).to(self.device)

    def step_event(self, end: RunEnd, numbering: Numbering, **fields: Any) -> ProgressEvent:
        """The event of the step ``end`` describes (not the final one)."""
        return ProgressEvent(
            end.scale,
            numbering.n_scales,
            end.shape,
            end.iteration,
            end.expected,
            end.step,
            numbering.total_steps,
            end.losses,
            time.perf_counter() - self.start,
            estimated=numbering.estimated,
            **fields,
        )

    def final_event(
        self,
        end: RunEnd,
        sizes: list[tuple[int, int]],
        numbering: Numbering,
        *,
        image: np.ndarray | None = None,
        n_scales: int | None = None,
        extra_info: dict[str, Any] | None = None,
        **fields: Any,
    ) -> ProgressEvent:
        """The last event: the result in ``preview`` and what the run did in ``info``."""
        elapsed = time.perf_counter() - self.start
        runtime = self.stylizer.runtime
        info = {
            "device": str(runtime.device),
            "precision": runtime.precision,
            "weights": self.stylizer.source,
            "scales": [list(s) for s in sizes],
            "steps": end.step,
            "elapsed_s": round(elapsed, 3),
            "scale_times_s": [round(t, 3) for t in end.scale_times],
            "torch": torch.__version__,
        }
        if self.guided:
            info["regions"] = [
                {"labels": list(r.labels), "style": r.style} for r in self.inputs.masks.regions or ()
            ]
            info["mask_feather_px"] = (
                round(self.feather, 3) if self.inputs.masks.keep_plane is not None else 0.0
            )
        info.update(extra_info or {})
        result = image if image is not None else self.render(end.image)
        return ProgressEvent(
            end.scale,
            n_scales or len(sizes),
            end.shape,
            end.iteration,
            end.iteration if not end.stopped else end.expected,
            end.step,
            end.step if not end.stopped else numbering.total_steps,
            dict(end.losses),
            elapsed,
            result,
            True,
            end.stopped,
            info,
            estimated=numbering.estimated and end.stopped,
            **fields,
        )


__all__ = ["ContentRun", "RunEnd", "SharedParts"]
