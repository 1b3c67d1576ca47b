"""A run's progress as the widget shows it: one update shape for 2D and stack runs, the preview
rate limit, the speed and time left, and the status texts.

No Qt here. :func:`as_update` turns the engine's events (a ``ProgressEvent`` of a 2D run,
or a ``StackEvent`` of an all-slices run) into one :class:`RunUpdate`, so the widget has one
path for both.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import ProgressEvent, StackEvent, expected_steps

#: At most this many preview images per second reach the result layer.
MAX_PREVIEWS_PER_SECOND = 10.0
#: Showing previews may take at most this share of the run's time, counted in GUI-thread
#: ``show`` time: slower previews are shown less often (the latest one wins). Under software
#: OpenGL (Xvfb) a preview's whole cost, its draw and the window's composition included, was
#: about 6x its ``show`` time (117 ms against 20 ms at 256 px), all on the cores the engine
#: runs on; 0.5 % of ``show`` time keeps all previews within about 3 % of one core, so that
#: the widget as a whole stays within 5 % of a 2-core machine (docs/benchmarks.md, "Widget
#: overhead").
PREVIEW_TIME_SHARE = 0.005
#: The same share for runs on a GPU, whose engine leaves the CPU cores mostly free.
PREVIEW_TIME_SHARE_GPU = 0.025
#: The status line and the progress bars are redrawn at most this many times a second
#: (each redraw composes the whole window; the final state is always shown).
MAX_REFRESHES_PER_SECOND = 2.0
#: ... and less often when a redraw is slow: the redraws may take at most this share of the
#: run's time on the GUI thread. Moving the activity dock's bar took 20 ms on the GUI thread
#: under Xvfb (and about as much again to compose the window), at every step of a 256 px CPU
#: run: 3 % of a core. 1 % spaces them about 2 s apart there (docs/benchmarks.md).
REFRESH_TIME_SHARE = 0.01
#: The same share for runs on a GPU.
REFRESH_TIME_SHARE_GPU = 0.05


@dataclass(frozen=True)
class RunUpdate:
    """One engine event, in the same shape for 2D and all-slices runs.

    ``image`` goes into the result layer: a 2D run's preview (rate-limited), or, in a stack
    run, the slice at ``index`` that just finished (always shown). On the last update
    (``done``), ``final`` is the whole result: the final image, or the whole stack (None
    for a stopped stack: its finished slices are already in the layer).
    """

    event: ProgressEvent
    step: int
    total_steps: int
    done: bool = False
    stopped: bool = False
    image: np.ndarray | None = None
    index: tuple[int, ...] | None = None
    final: np.ndarray | None = None
    #: Stack runs: the slice in progress (1-based) and the number of slices (0: a 2D run).
    slice_number: int = 0
    slice_count: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_stack(self) -> bool:
        return self.slice_count > 0

    @property
    def throttled(self) -> bool:
        """Whether ``image`` may be dropped for a newer one (previews yes, finished slices no)."""
        return self.index is None


def as_update(event: ProgressEvent | StackEvent) -> RunUpdate:
    """The engine's event as a :class:`RunUpdate`."""
    if isinstance(event, StackEvent):
        return RunUpdate(
            event=event.event,
            step=event.step,
            total_steps=event.total_steps,
            done=event.done,
            stopped=event.stopped,
            image=event.slice_result,
            index=None if event.slice_result is None else tuple(event.index),
            final=None if event.stopped else event.result,
            slice_number=event.number,
            slice_count=event.count,
            info=dict(event.info),
        )
    return RunUpdate(
        event=event,
        step=event.step,
        total_steps=event.total_steps,
        done=event.done,
        stopped=event.stopped,
        image=event.preview,
        final=event.preview if event.done else None,
        info=dict(event.info),
    )


class AdaptiveSpacing:
    """At most ``per_second`` times a second, and further apart when what each time costs
    (reported to :meth:`spent`) is more than ``time_share`` of the interval between them."""

    def __init__(self, per_second: float, clock: Callable[[], float], time_share: float):
        self.base_interval = 1.0 / per_second if per_second > 0 else 0.0
        self.interval = self.base_interval
        self.time_share = time_share
        self.cost: float | None = None
        self._clock = clock
        self._last: float | None = None

    def spent(self, seconds: float) -> None:
        """The last one took ``seconds`` (GUI thread): space the next ones accordingly."""
        self.cost = seconds if self.cost is None else 0.5 * (self.cost + seconds)
        if self.time_share > 0:
            self.interval = max(self.base_interval, self.cost / self.time_share)

    def wait_time(self) -> float:
        """Seconds until the next one may come (0 when it may come now)."""
        if self._last is None:
            return 0.0
        return max(0.0, self.interval - (self._clock() - self._last))


class PreviewThrottle(AdaptiveSpacing):
    """Latest-wins rate limiter for preview images, adaptive to what showing one costs.

    ``offer`` returns the image to show now, or keeps it as *pending* when the last one was
    shown less than ``interval`` ago (a newer offer replaces an older pending one, so
    previews arriving faster are dropped); ``take_pending`` hands it over once the interval
    has passed. ``interval`` is ``1 / max_per_second``, or longer when ``shown`` reports
    that showing an image takes more than ``time_share`` of that. The final image bypasses
    this class (it is always shown).
    """

    def __init__(
        self,
        max_per_second: float = MAX_PREVIEWS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        time_share: float = PREVIEW_TIME_SHARE,
    ):
        super().__init__(max_per_second, clock, time_share)
        self.pending: Any = None
        self.dropped = 0

    #: Showing the last image took this many seconds.
    shown = AdaptiveSpacing.spent

    def offer(self, item: Any) -> Any:
        if self.wait_time() <= 0:
            self.pending = None
            self._last = self._clock()
            return item
        if self.pending is not None:
            self.dropped += 1
        self.pending = item
        return None

    def take_pending(self) -> Any:
        if self.pending is None or self.wait_time() > 0:
            return None
        item, self.pending = self.pending, None
        self._last = self._clock()
        return item

    def clear(self) -> None:
        if self.pending is not None:
            self.dropped += 1
        self.pending = None


class RefreshGate(AdaptiveSpacing):
    """Says when the status line and the bars may be redrawn: at most ``per_second`` times a
    second, and less often when :meth:`spent` reports that a redraw costs more than
    ``time_share`` of the interval."""

    def __init__(
        self,
        per_second: float = MAX_REFRESHES_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        time_share: float = REFRESH_TIME_SHARE,
    ):
        super().__init__(per_second, clock, time_share)

    def due(self) -> bool:
        if self.wait_time() > 0:
            return False
        self._last = self._clock()
        return True


class RateMeter:
    """Iterations per second over the recent steps, and the time left (bigger scales cost more)."""

    def __init__(self, sizes: Sequence[tuple[int, int]], iterations: int | str, window: int = 20):
        self.sizes = [tuple(s) for s in sizes]
        self.expected = expected_steps(iterations, len(self.sizes))  # refined by the events' estimates
        self._samples: deque[tuple[int, float]] = deque(maxlen=window)

    def add(self, event: ProgressEvent) -> None:
        self._samples.append((event.step, event.elapsed))

    @property
    def rate(self) -> float | None:
        """Steps per second at the current scale (None until two steps were seen)."""
        if len(self._samples) < 2:
            return None
        (s0, t0), (s1, t1) = self._samples[0], self._samples[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        return (s1 - s0) / (t1 - t0)

    def seconds_left(self, event: ProgressEvent) -> float | None:
        rate = self.rate
        if rate is None or not self.sizes:
            return None
        scale = min(event.scale, len(self.sizes) - 1)
        here = max(1, self.sizes[scale][0] * self.sizes[scale][1])
        remaining = max(0, event.iterations - event.iteration) * 1.0
        for expected, (h, w) in zip(self.expected[scale + 1 :], self.sizes[scale + 1 :]):
            remaining += expected * (h * w) / here
        return remaining / rate


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def format_status(event: ProgressEvent, meter: RateMeter | None = None) -> str:
    """One line: where the run is, the loss, the speed and the time left."""
    parts = [f"Iteration {event.iteration}/{'~' if event.estimated else ''}{event.iterations}"]
    if event.n_scales > 1:
        h, w = event.shape
        parts[0] += f" · scale {event.scale + 1}/{event.n_scales} ({w}×{h})"
    loss = event.losses.get("total")
    if loss is not None:
        parts.append(f"loss {loss:.3g}")
    if meter is not None:
        rate = meter.rate
        if rate is not None:
            parts.append(f"{rate:.1f} it/s")
            left = meter.seconds_left(event)
            if left is not None:
                parts.append(f"{format_duration(left)} left")
    return " · ".join(parts)


def format_final(event: ProgressEvent, reason: str | None = None) -> str:
    """The status line after a run: finished or stopped, how long, where."""
    device = event.info.get("device", "?") if event.info else "?"
    rate = event.step / event.elapsed if event.elapsed > 0 else 0.0
    if event.stopped:
        why = f" ({reason})" if reason else ""
        return (
            f"Stopped{why} at step {event.step}/{event.total_steps} after "
            f"{format_duration(event.elapsed)} on {device}; the last image is kept."
        )
    return f"Done: {event.step} steps in {format_duration(event.elapsed)} on {device} ({rate:.1f} it/s)."


def tile_text(tiling_message: str | None, event: ProgressEvent) -> str:
    """' · tiled: tile 2/4' while a tiled run optimises its tiles (empty for untiled runs)."""
    if not tiling_message:
        return ""
    n_tiles = getattr(event, "n_tiles", 0)
    tile = getattr(event, "tile", 0)
    return f" · tiled: tile {tile}/{n_tiles}" if n_tiles and tile else " · tiled"


def running_text(update: RunUpdate, meter: RateMeter | None, tiling_message: str | None) -> str:
    """The status line during a run (stack runs say which slice)."""
    status = format_status(update.event, meter) + tile_text(tiling_message, update.event)
    if update.is_stack:
        return f"Slice {update.slice_number}/{update.slice_count} · {status}"
    return status


def starting_text(request: Any) -> str:
    """The status line when a :class:`RunRequest` starts."""
    h, w = request.sizes[-1]
    slices = f", {request.slice_count} slices" if request.stack == "all" else ""
    return f"Starting: {w}×{h} px{slices}, {request.total_steps} steps (loading VGG-19)…"


def no_result_text(update: RunUpdate) -> str:
    """The status line of a run stopped before it had anything to show."""
    if update.is_stack:
        return "Stopped before the first slice was finished; there is no result."
    return "Stopped before the first iteration; there is no result."


def final_text(
    update: RunUpdate, reason: str | None, tiling_message: str | None, slices_done: int = 0
) -> str:
    """The status line after a run that has a result."""
    tiled = f" Tiled: {tiling_message}." if tiling_message else ""
    if not update.is_stack:
        return format_final(update.event, reason) + tiled
    if update.stopped:
        why = f" ({reason})" if reason else ""
        return (
            f"Stopped{why} after {slices_done}/{update.slice_count} slices; the finished slices are kept "
            "(the others are zero)."
        )
    last = format_final(update.event)[len("Done: ") :]
    return f"Done: {update.slice_count} slices; last slice {last}{tiled}"
