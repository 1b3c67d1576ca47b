"""The public entry points of one run: :func:`stylize_iter` (a generator of events) and :func:`stylize`.

A run goes inputs → objective → the one optimisation loop → render (see ``inputs.py``,
``objective.py``, ``optimise.py``, ``render.py``); multi-scale, tiles and stacks are drivers
on top of the loop (``multiscale.py``, ``tiling.py``, ``stack.py``), and
:class:`~.stylizer.Stylizer` prepares what many contents share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .config import StyleConfig
from .events import ProgressEvent, StopRequest
from .guidance import Guidance, StackOptions, take_guidance, with_overrides
from .stack import StackEvent, stylize_stack_iter
from .stylizer import Stylizer


def stylize_iter(
    content: np.ndarray,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    guidance: Guidance | None = None,
    stop: StopRequest = None,
    **overrides: Any,
) -> Iterator[ProgressEvent]:
    """Optimise an image; yield a :class:`ProgressEvent` after every optimiser step.

    ``content`` and each style are numpy arrays (2D grayscale, RGB or RGBA, any dtype and
    range). ``stop`` is checked before every step, so a stop request ends the run within
    one iteration; closing the generator does the same. The last event has ``done=True``
    and its ``preview`` is the result, in the content's dtype, channels and range.
    ``guidance`` (masks, value ranges, a consistency image) steers the run; see
    :class:`~.guidance.Guidance`. ``overrides`` change fields of ``config``.

    When the output does not fit in the device's memory, ``config.tiling == 'auto'`` (the
    default) switches to tiled optimisation (see ``tiling.py``); the first event's
    ``message`` says so and the final event's ``info['tiled']`` describes the tiles.
    """
    guidance = take_guidance(guidance, overrides)
    config = with_overrides(config, overrides)
    yield from Stylizer(styles, config, guidance).run_iter(content, stop=stop)


def stylize(
    content: np.ndarray,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    stop: StopRequest = None,
    callback: Callable[[ProgressEvent], None] | None = None,
    **overrides: Any,
) -> np.ndarray:
    """Run the whole optimisation and return the result (content's dtype, channels, range)."""
    result = None
    for event in stylize_iter(content, styles, config, stop=stop, **overrides):
        if callback is not None:
            callback(event)
        if event.done:
            result = event.preview
    assert result is not None
    return result


def run_iter(
    content: Any,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    *,
    stack: StackOptions | None = None,
    guidance: Guidance | None = None,
    stop: StopRequest = None,
) -> Iterator[ProgressEvent] | Iterator[StackEvent]:
    """The one place that picks the engine function: a 2D run without ``stack``, else a stack run."""
    if stack is None:
        return stylize_iter(content, styles, config, guidance=guidance, stop=stop)
    return stylize_stack_iter(content, styles, config, stack=stack, guidance=guidance, stop=stop)


__all__ = ["run_iter", "stylize", "stylize_iter"]
