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
from .lbfgs import CompactLBFGS, clear_gradients, optimizer_step
from .objective import Objective
from .runtime import LossScaler, Runtime, record_copy_done
from .stopping import Budget, Plateau

#: L-BFGS curvature pairs kept (each pair: two image-sized fp32 vectors; see memory.py).
LBFGS_HISTORY = 50

Render = Callable[[torch.Tensor], np.ndarray]


def _no_loss_scaler(pixels: int) -> None:
    return None


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs from the config and the runtime."""

    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    preview_every: int = 10
    overlap_previews: bool = False  # CUDA: copy previews asynchronously, render them during the next step
    #: A fresh fp16 loss scaler for an image of so many pixels (None: no scaling, fp32/bf16).
    new_loss_scaler: Callable[[int], LossScaler | None] = _no_loss_scaler

    @classmethod
    def of(cls, config: StyleConfig, runtime: Runtime) -> LoopSettings:
        return cls(
            config.optimizer,
            config.learning_rate,
            config.preview_every,
            runtime.device.type == "cuda",
            runtime.loss_scaler,
        )

    def loss_scaler(self, image: torch.Tensor) -> LossScaler | None:
        """The loss scaler of one image (fp16 gradients of O(1) relative losses underflow without one)."""
        return self.new_loss_scaler(image.shape[-2] * image.shape[-1])

    def make_optimizer(self, image: torch.Tensor) -> torch.optim.Optimizer:
        if self.optimizer == "lbfgs":
            # One function evaluation per step, so the loop can report and stop after each one;
            # the same steps as torch.optim.LBFGS(max_iter=1) from a few big products (lbfgs.py).
            return CompactLBFGS([image], lr=self.learning_rate or 1.0, history_size=LBFGS_HISTORY)
        return torch.optim.Adam([image], lr=self.learning_rate or 0.02)


@dataclass
class Step:
    """One optimiser step: its number (1-based), the loss terms, a preview when one is due, the image.

    ``last`` says that the loop ends after this step; ``expected`` is how many steps the loop
    will likely take in all (exact once ``last``, and always for a fixed budget).
    """

    iteration: int
    losses: dict[str, float]
    preview: np.ndarray | None = None
    image: torch.Tensor | None = None  # the image being optimised (live: read it before the next step)
    last: bool = False
    expected: int = 0


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
        self._pending = (host, record_copy_done(image))  # on the image's device's stream

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
    optimizer: torch.optim.Optimizer,
    objective: Objective,
    image: torch.Tensor,
    scaler: LossScaler | None = None,
    after_launch: Callable[[], None] | None = None,
) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """The optimiser's closure: one forward and backward; returns the loss and its terms.

    ``after_launch`` runs once the backward pass is queued: on a GPU, host work done there
    (rendering the last preview) overlaps the device's compute instead of delaying it. With a
    compiled network, a failure of its lazily compiled backward re-runs the evaluation eagerly.
    """

    def evaluate() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        clear_gradients(optimizer)
        loss, terms = objective.loss(image)
        if scaler is not None:
            scaler.backward(loss, image)
        else:
            loss.backward()
        if after_launch is not None:
            after_launch()
        return loss, terms

    compiled = objective.extract.compiled()
    return evaluate if compiled is None else (lambda: compiled.call_guarded(evaluate))


def optimise(
    image: torch.Tensor,
    objective: Objective,
    steps: int | Budget,
    settings: LoopSettings,
    *,
    stop: StopRequest = None,
    render: Render | None = None,
    preview_last: bool = True,
) -> Generator[Step, None, Outcome]:
    """Optimise ``image`` against ``objective``; yield a :class:`Step` after each step.

    ``steps`` is a number of steps, or a :class:`~.stopping.Budget` that may end the loop
    once the loss stops improving. ``stop`` is checked before every step. Previews
    (``render`` of the image) are made every ``settings.preview_every`` steps when ``render``
    is given; ``preview_last=False`` skips the last step's (its caller renders the result
    anyway). Returns the :class:`Outcome`.
    """
    plateau = Plateau(steps if isinstance(steps, Budget) else Budget(steps))
    image = image.detach().contiguous().requires_grad_(True)
    optimizer = settings.make_optimizer(image)
    previews = PreviewPipe(render, settings.overlap_previews) if render is not None else None
    after_launch = previews.render_pending if previews is not None else None
    scaler = settings.loss_scaler(image)
    closure = make_closure(optimizer, objective, image, scaler, after_launch)
    losses: dict[str, float] = {}
    every = settings.preview_every if previews is not None else 0
    iteration = 0
    while True:
        if should_stop(stop):
            return Outcome(image, iteration, losses, True)
        iteration += 1
        result = optimizer_step(optimizer, closure, scaler)  # one host transfer; fp16 overflows redone
        losses = result.values
        if not result.finite:
            raise StyleTransferError(_diverged_message(settings, losses))
        last = plateau.update(losses.get("total", float("nan")))
        preview = None
        if previews is not None:
            if every and iteration % every == 0 and (preview_last or not last):
                with torch.no_grad():
                    previews.submit(image)
            preview = previews.take()
        yield Step(iteration, losses, preview, image, last, plateau.expected)
        if last:
            return Outcome(image, iteration, losses, False)


class Steps:
    """The steps of one :func:`optimise` call, to iterate; :attr:`outcome` is its result afterwards."""

    def __init__(self, loop: Generator[Step, None, Outcome]):
        self.loop = loop
        self.outcome: Outcome | None = None

    def __iter__(self) -> Generator[Step, None, None]:
        self.outcome = yield from self.loop


def _diverged_message(settings: LoopSettings, losses: dict[str, float] | None = None) -> str:
    """Why the loss stopped being finite, from the loss terms (each unweighted, about 1 at the start)."""
    terms = {k: v for k, v in (losses or {}).items() if k != "total"}
    broken = [k for k, v in terms.items() if not np.isfinite(v)]
    if terms and not broken and np.isinf((losses or {}).get("total", 0.0)):
        shown = ", ".join(f"{k} {v:.3g}" for k, v in terms.items())
        return (
            "the optimisation diverged: the weighted loss overflowed to infinity although every loss term is "
            f"finite ({shown}), so a loss weight is too large; lower content_weight, style_weight or tv_weight "
            "(each term is a relative distance near 1, so weights up to about 1e6 are plenty)"
        )
    if settings.optimizer == "adam":
        return "the optimisation diverged (loss is not finite); lower the learning rate or use L-BFGS"
    cause = f"the {broken[0]} loss is {terms[broken[0]]}" if broken else "the loss is not finite"
    return (
        f"the optimisation diverged ({cause}): the network weights or an input hold NaN or infinite values, "
        "or the learning rate is too high"
    )


__all__ = [
    "LBFGS_HISTORY",
    "LoopSettings",
    "Outcome",
    "PreviewPipe",
    "Step",
    "Steps",
    "make_closure",
    "optimise",
]
