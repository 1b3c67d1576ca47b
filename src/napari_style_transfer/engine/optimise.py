"""Stage 3, the one optimisation loop: image + objective + steps → one event per step.

Every driver (multi-scale, tiles, stacks, batches) calls :func:`optimise`; only here are
the closure, the optimiser, the finite-loss check, the stop check and the previews.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .config import StyleConfig
from .events import StopRequest, StyleTransferError, should_stop
from .lbfgs import CompactLBFGS
from .objective import Objective
from .runtime import Runtime

#: L-BFGS curvature pairs kept (each pair: two image-sized fp32 vectors; see memory.py).
LBFGS_HISTORY = 50

Render = Callable[[torch.Tensor], np.ndarray]


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs from the config and the runtime."""

    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    preview_every: int = 10
    loss_scale: float = 1.0  # fp16: gradients of O(1) relative losses underflow without it
    overlap_previews: bool = False  # CUDA: copy previews asynchronously, render them during the next step

    @classmethod
    def of(cls, config: StyleConfig, runtime: Runtime) -> LoopSettings:
        return cls(
            config.optimizer, config.learning_rate, config.preview_every, runtime.loss_scale,
            runtime.device.type == "cuda",
        )  # fmt: skip

    def make_optimizer(self, image: torch.Tensor) -> torch.optim.Optimizer:
        if self.optimizer == "lbfgs":
            # One function evaluation per step, so the loop can report and stop after each one;
            # the same steps as torch.optim.LBFGS(max_iter=1) from a few big products (lbfgs.py).
            return CompactLBFGS([image], lr=self.learning_rate or 1.0, history_size=LBFGS_HISTORY)
        return torch.optim.Adam([image], lr=self.learning_rate or 0.02)


@dataclass
class Step:
    """One optimiser step: its number (1-based), the loss terms, a preview when one is due, the image."""

    iteration: int
    losses: dict[str, float]
    preview: np.ndarray | None = None
    image: torch.Tensor | None = None  # the image being optimised (live: read it before the next step)


@dataclass
class Outcome:
    """Where the loop ended: the image (RGB [0, 1] tensor, on the device), steps taken, last losses."""

    image: torch.Tensor
    iterations: int
    losses: dict[str, float]
    stopped: bool


class PreviewPipe:
    """Gets preview images off the device without making the device wait for the host.

    On CUDA a preview is copied into pinned host memory with ``non_blocking=True`` right after
    the step that made it, and rendered during the *next* step, after that step's forward and
    backward are queued: the copy and the rendering overlap GPU compute, and the preview
    reaches the caller one step later. Elsewhere the preview is rendered at once.
    """

    def __init__(self, render: Render, overlap: bool):
        self.render = render
        self.overlap = overlap
        self._pending: tuple[torch.Tensor, Any] | None = None
        self._buffer: torch.Tensor | None = None  # pinned; one pipe serves one image size
        self._ready: np.ndarray | None = None

    def submit(self, image: torch.Tensor) -> None:
        image = image.detach()
        if not self.overlap:
            self._ready = self.render(image)
            return
        if self._buffer is None:
            self._buffer = torch.empty(image.shape, dtype=image.dtype, pin_memory=True)
        host = self._buffer.copy_(image, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._pending = (host, done)

    def render_pending(self) -> None:
        """Render a submitted preview (waits for its copy only, not for later GPU work)."""
        if self._pending is None:
            return
        host, done = self._pending
        self._pending = None
        done.synchronize()
        self._ready = self.render(host)

    def take(self) -> np.ndarray | None:
        ready, self._ready = self._ready, None
        return ready


def make_closure(
    optimizer: torch.optim.Optimizer, objective: Objective, image: torch.Tensor, terms_box: dict,
    loss_scale: float = 1.0, after_launch: Callable[[], None] | None = None,
) -> Callable[[], torch.Tensor]:  # fmt: skip
    """The optimiser's closure: one forward and backward; keeps the loss terms for reporting.

    ``after_launch`` runs once the backward pass is queued: on a GPU, host work done there
    (rendering the last preview) overlaps the device's compute instead of delaying it.
    """

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, terms = objective.loss(image)
        if loss_scale != 1.0:
            (loss * loss_scale).backward()
            image.grad.div_(loss_scale)
        else:
            loss.backward()
        if after_launch is not None:
            after_launch()
        terms_box.clear()
        terms_box.update(terms)
        return loss

    return closure


def optimise(
    image: torch.Tensor, objective: Objective, steps: int, settings: LoopSettings, *,
    stop: StopRequest = None, render: Render | None = None, preview_last: bool = True,
) -> Generator[Step, None, Outcome]:  # fmt: skip
    """Optimise ``image`` against ``objective`` for ``steps`` steps; yield a :class:`Step` after each.

    ``stop`` is checked before every step. Previews (``render`` of the image) are made every
    ``settings.preview_every`` steps when ``render`` is given; ``preview_last=False`` skips the
    last step's (its caller renders the result anyway). Returns the :class:`Outcome`.
    """
    image = image.detach().contiguous().requires_grad_(True)
    optimizer = settings.make_optimizer(image)
    terms_box: dict[str, torch.Tensor] = {}
    previews = PreviewPipe(render, settings.overlap_previews) if render is not None else None
    after_launch = previews.render_pending if previews is not None else None
    closure = make_closure(optimizer, objective, image, terms_box, settings.loss_scale, after_launch)
    losses: dict[str, float] = {}
    every = settings.preview_every if previews is not None else 0
    for iteration in range(1, steps + 1):
        if should_stop(stop):
            return Outcome(image, iteration - 1, losses, True)
        optimizer.step(closure)
        losses = {k: float(v.detach()) for k, v in terms_box.items()}
        if not np.isfinite(losses.get("total", 0.0)):
            raise StyleTransferError(_diverged_message(settings))
        preview = None
        if previews is not None:
            if every and iteration % every == 0 and (preview_last or iteration < steps):
                with torch.no_grad():
                    previews.submit(image)
            preview = previews.take()
        yield Step(iteration, losses, preview, image)
    return Outcome(image, steps, losses, False)


def _diverged_message(settings: LoopSettings) -> str:
    if settings.optimizer == "adam":
        return "the optimisation diverged (loss is not finite); lower the learning rate or use L-BFGS"
    return (
        "the optimisation diverged (loss is not finite): a loss weight may be too large, the weights file "
        "may hold NaN or infinite values, or the learning rate is too high"
    )


__all__ = ["LBFGS_HISTORY", "LoopSettings", "Outcome", "PreviewPipe", "Step", "make_closure", "optimise"]
