"""Replay a whole optimiser step (forward, backward, L-BFGS update) as one CUDA graph.

A step at 256–1024 px is bound by kernel launches: hundreds of small kernels, each queued by
Python. Captured once per image shape into a ``torch.cuda.CUDAGraph``, the step is replayed
with one launch. Capture needs a step that never waits for the host and static tensors (the
same addresses every step): :class:`~.device_lbfgs.DeviceLBFGS` on an image tensor that
lives for the whole run. Where that does not hold (CPU, MPS, another optimiser, a step that
fails to capture), :class:`GraphStep` runs the step eagerly and says why in one log line.

:class:`DeviceLossScaler` is :class:`~.runtime.LossScaler`'s dynamic fp16 loss scale kept
on the device: halved on an overflow, grown after a run of finite steps, by tensor
arithmetic, so that a captured step can carry it. An overflowing step is skipped by
DeviceLBFGS (nothing changes), and the next replay evaluates it again with half the scale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

import torch

from .device_lbfgs import DeviceLBFGS
from .runtime import checked_initial_scale

log = logging.getLogger(__name__)


class CudaGraphs:
    """How :class:`GraphStep` warms up, captures and replays on CUDA (a test may pass another)."""

    def unavailable(self, device: torch.device) -> str | None:
        """Why a step on ``device`` cannot be captured (None: it can)."""
        if device.type != "cuda":
            return f"CUDA graphs need a CUDA device, not {device.type!r}"
        if not torch.cuda.is_available():
            return "CUDA is not available"
        return None

    def warm_up(self, fn: Callable[[], Any]) -> Any:
        """One eager call on a side stream, as capture asks (lazy initialisation happens off the capture)."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            out = fn()
        torch.cuda.current_stream().wait_stream(stream)
        return out

    def capture(self, fn: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        """Record ``fn`` (nothing runs); its replay and the static outputs the replay refreshes."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
        return graph.replay, out


class GraphStep:
    """Runs ``step(*static)``: eagerly for ``warmup`` calls per shape, then as a replayed CUDA graph.

    ``static`` are the tensors the step reads and writes in place (the image being optimised);
    the graph of a shape is captured with those tensors and replays on them, so later calls
    must pass the same ones. A call returns what ``step`` returns (after capture: its static
    outputs, refreshed by each replay: read them before the next call). Falls back to eager
    steps, logging why once: off CUDA, for an optimiser that is not :class:`DeviceLBFGS`, and
    for a shape whose capture failed (never tried again).
    """

    def __init__(
        self,
        step: Callable[..., Any],
        device: torch.device,
        optimizer: torch.optim.Optimizer | None = None,
        warmup: int = 3,
        graphs: CudaGraphs | None = None,
    ):
        self.step, self.warmup = step, max(1, int(warmup))
        self.graphs = graphs or CudaGraphs()
        self.reason = self.graphs.unavailable(torch.device(device))
        if self.reason is None and optimizer is not None and not isinstance(optimizer, DeviceLBFGS):
            self.reason = (
                f"{type(optimizer).__name__} waits for the host each step; only DeviceLBFGS is captured"
            )
        #: True while a step is being captured (a step must not read values on the host then).
        self.capturing = False
        self.graphs_by_shape: dict[Hashable, tuple[Callable[[], None], Any, tuple[int, ...]]] = {}
        self.eager_shapes: set[Hashable] = set()
        self.calls: dict[Hashable, int] = {}
        self.logged = False

    @staticmethod
    def key(static: tuple[torch.Tensor, ...]) -> Hashable:
        """One graph per shapes and dtypes of the static tensors."""
        return tuple((tuple(t.shape), t.dtype) for t in static)

    def __call__(self, *static: torch.Tensor) -> Any:
        """One step (one eager call, or one replay)."""
        if self.reason is not None:
            if not self.logged:
                log.info("graph step: eager steps: %s", self.reason)
                self.logged = True
            return self.step(*static)
        key = self.key(static)
        if key in self.graphs_by_shape:
            replay, out, pointers = self.graphs_by_shape[key]
            if tuple(t.data_ptr() for t in static) != pointers:
                raise ValueError(
                    "graph step: a captured step must be called with the tensors it was captured with"
                )
            replay()
            return out
        if key in self.eager_shapes:
            return self.step(*static)
        count = self.calls.get(key, 0) + 1
        self.calls[key] = count
        if count <= self.warmup:
            return self.graphs.warm_up(lambda: self.step(*static))
        return self._capture(key, static)

    def _capture(self, key: Hashable, static: tuple[torch.Tensor, ...]) -> Any:
        """Capture the step for ``key`` and replay it once; on any failure, eager from now on for ``key``."""
        failure: Exception | None = None
        self.capturing = True
        try:
            replay, out = self.graphs.capture(lambda: self.step(*static))
        except Exception as error:  # noqa: BLE001 - any failure means: not capturable, run eagerly
            failure = error
        finally:
            self.capturing = False
        if failure is not None:
            self.eager_shapes.add(key)
            log.warning(
                "graph step: eager steps for shape %s: capture failed (%s: %s)",
                key,
                type(failure).__name__,
                failure,
            )
            return self.step(*static)
        self.graphs_by_shape[key] = (replay, out, tuple(t.data_ptr() for t in static))
        replay()
        return out


class DeviceLossScaler:
    """Dynamic fp16 loss scaling as :class:`~.runtime.LossScaler`, with its state in device tensors.

    :meth:`update` takes the step's finiteness flag (a device tensor) and returns, as a device
    tensor, whether the step must be evaluated again; nothing is read on the host.
    """

    def __init__(
        self,
        device: torch.device,
        initial: float = 2.0**16,
        growth_interval: int = 100,
        min_scale: float = 1.0,
        max_scale: float = 2.0**32,
    ):
        initial = checked_initial_scale(initial, growth_interval, min_scale, max_scale)
        self.value = torch.tensor(initial, device=device)
        self.growth_interval = int(growth_interval)
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)
        self.good_steps = torch.zeros((), dtype=torch.long, device=device)
        self.overflows = torch.zeros((), dtype=torch.long, device=device)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss times the current scale (call ``.backward()`` on this)."""
        return loss * self.value

    def unscale_(self, grad: torch.Tensor) -> torch.Tensor:
        """Divide ``grad`` by the scale in place (a power of two: exact); a 0-d bool flag: all finite."""
        grad.mul_(self.value.reciprocal().to(grad.dtype))
        return torch.isfinite(grad).all()

    def update(self, finite: torch.Tensor) -> torch.Tensor:
        """Record a step's outcome; a 0-d bool tensor: the step overflowed and the scale was halved."""
        good = torch.where(finite, self.good_steps + 1, 0)
        grow = finite & (good >= self.growth_interval)
        halve = ~finite & (self.value > self.min_scale)
        value = torch.where(grow, (self.value * 2).clamp_max(self.max_scale), self.value)
        self.value.copy_(torch.where(halve, (value / 2).clamp_min(self.min_scale), value))
        self.good_steps.copy_(torch.where(grow, 0, good))
        self.overflows.add_(halve.long())
        return halve


__all__ = ["CudaGraphs", "DeviceLossScaler", "GraphStep"]
