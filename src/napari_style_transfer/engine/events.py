"""What a run tells its caller: progress events, stop requests and the errors that end it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Something that says whether to stop: a threading.Event, or a callable returning bool.
StopRequest = threading.Event | Callable[[], bool] | None


def should_stop(stop: StopRequest) -> bool:
    """Whether ``stop`` asks the run to end now (None never does)."""
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


class StyleTransferError(RuntimeError):
    """A run could not start or continue (device, weights); the message says why."""


class MemoryLimitError(StyleTransferError):
    """The run needs more memory than the device has; the message names the largest size that fits."""

    def __init__(self, message: str, largest_size: int):
        super().__init__(message)
        self.largest_size = largest_size


@dataclass
class ProgressEvent:
    """One optimiser step (or the end of the run).

    ``preview`` is set every ``config.preview_every`` steps and on the final event; it is
    already in the content's dtype, channel count and value range (at this scale's size).
    """

    scale: int  # 0-based index of the current scale
    n_scales: int
    shape: tuple[int, int]  # (H, W) at this scale
    iteration: int  # 1-based step within this scale
    iterations: int  # steps at this scale (an estimate while ``estimated``)
    step: int  # 1-based step over the whole run
    total_steps: int  # steps in the whole run (an estimate while ``estimated``; exact on the final event)
    losses: dict[str, float]
    elapsed: float  # seconds since the run started
    preview: np.ndarray | None = None
    done: bool = False  # the final event; preview holds the result
    stopped: bool = False  # the run ended early on a stop request
    info: dict[str, Any] = field(default_factory=dict)  # device, sizes, timings (final event)
    tile: int = 0  # tiled runs: 1-based tile being optimised (0: the untiled coarse pass)
    n_tiles: int = 0  # tiled runs: number of tiles (0: not a tiled run)
    message: str | None = None  # a one-off notice, e.g. that the run switched to tiling
    estimated: bool = False  # iterations="auto": the step counts are estimates, refined as the run goes


__all__ = ["MemoryLimitError", "ProgressEvent", "StopRequest", "StyleTransferError", "should_stop"]
