"""Outputs larger than the device's memory: coarse-to-fine optimisation in overlapping tiles.

1. An untiled (multi-scale) run at a size that fits (half the output's long side, or less;
   small outputs: up to 200 px) fixes the large-scale structure; it is upsampled to the
   output size.
2. The style Gram targets are computed once, from the whole style image at the output's
   scale (accumulated tile by tile, so the style image never has to fit in one pass).
3. The output is cut into overlapping tiles; each tile is optimised at full resolution
   against its own content features and the shared style targets, starting from the
   current canvas (the coarse result, with already finished neighbours blended in).
4. Tiles are blended with cosine ramps across the overlaps. The 1D weights are normalised
   to sum to one at every pixel (a partition of unity), so no seam and no brightness step.

The whole output lives in host memory (about ``memory.HOST_BYTES_PER_PIXEL`` bytes per output
pixel); only one tile at a time is on the device. Every tile goes through the one loop
(:func:`~.optimise.optimise`); the coarse pass is the multi-scale driver.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from . import memory
from .content_run import ContentRun, RunEnd
from .events import ProgressEvent, StopRequest
from .images import resize
from .multiscale import run_scales
from .optimise import Steps, optimise
from .scales import MIN_SCALE_SIDE, scale_sizes
from .stopping import Numbering, scale_budgets

#: Ramp weights never drop below this inside a tile (keeps the normalisation well defined).
_WEIGHT_FLOOR = 1e-3


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) of tiles of ``tile`` pixels covering ``length`` with at least ``overlap`` between neighbours."""
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    n = max(n, 2)
    starts = [round(i * (length - tile) / (n - 1)) for i in range(n)]
    return [(s, s + tile) for s in starts]


def ramp_weights(spans: list[tuple[int, int]], length: int, overlap: int) -> list[np.ndarray]:
    """1D blending weights of each span (over the span), cosine ramps, normalised to sum to one."""
    raw = []
    x = np.arange(length, dtype=np.float64)
    width = max(1, overlap)
    for start, end in spans:
        r = np.zeros(length)
        inside = (x >= start) & (x < end)
        d_left = np.where(start > 0, x - start, np.inf)
        d_right = np.where(end < length, end - 1 - x, np.inf)
        d = np.minimum(d_left, d_right)
        ramp = np.sin(0.5 * np.pi * np.clip((d + 0.5) / width, 0, 1)) ** 2
        r[inside] = np.maximum(ramp[inside], _WEIGHT_FLOOR)
        raw.append(r)
    total = np.sum(raw, axis=0)
    return [(r / total)[start:end].astype(np.float32) for r, (start, end) in zip(raw, spans)]


@dataclass(frozen=True)
class TilePlan:
    """How a tiled run goes: the coarse pass, the tile grid and why it is tiled."""

    output_shape: tuple[int, int]
    tile_size: int
    overlap: int
    rows: list[tuple[int, int]]  # [y0, y1) of each tile row
    cols: list[tuple[int, int]]  # [x0, x1) of each tile column
    coarse_sizes: list[tuple[int, int]]
    reason: str

    @property
    def n_tiles(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def message(self) -> str:
        why = "forced (tiling='on')" if self.reason == "tiling: on" else self.reason
        return (
            f"tiling: {why}; optimising {self.n_tiles} tiles of {self.tile_size} px (overlap {self.overlap} px) "
            f"after an untiled pass at {max(self.coarse_sizes[-1])} px"
        )

    def describe(self) -> dict:
        return {
            "tiles": self.n_tiles,
            "grid": [len(self.rows), len(self.cols)],
            "tile_size": self.tile_size,
            "overlap": self.overlap,
            "coarse_size": list(self.coarse_sizes[-1]),
            "reason": self.reason,
        }


def plan_tiled_run(run: ContentRun, reason: str) -> TilePlan:
    """Choose tile size, overlap and coarse size for ``run``; refuse (MemoryLimitError) what cannot fit."""
    config = run.config
    out_shape = run.output_shape
    out_long = max(out_shape)
    runtime = run.stylizer.runtime
    precision, optimizer, deepest = runtime.precision, config.optimizer, config.deepest_layer
    budget = memory.tiled_run_budget(out_shape, run.device, deepest)
    tile = memory.choose_tile_size(
        out_long, config.tile_size, budget, run.device, deepest, precision, optimizer
    )
    overlap = config.tile_overlap if config.tile_overlap is not None else max(8, tile // 4)
    overlap = min(overlap, (tile - 1) // 2)
    # The coarse pass: half the output's long side (as the next-coarser scale of a multi-scale
    # run would be), but not below the coarsest multi-scale side unless the output is smaller.
    coarse_long = max(16, out_long // 2, min(out_long, MIN_SCALE_SIDE))
    if budget.device_bytes is not None:
        fits = memory.largest_fitting_size(
            out_shape, budget.device_bytes, deepest, precision, optimizer, device=run.device
        )
        coarse_long = max(16, min(coarse_long, fits))
    coarse_sizes = scale_sizes(run.content_shape, config.replace(size=coarse_long))
    return TilePlan(
        out_shape,
        tile,
        overlap,
        tile_spans(out_shape[0], tile, overlap),
        tile_spans(out_shape[1], tile, overlap),
        coarse_sizes,
        reason,
    )


class _Canvas:
    """The output being assembled on the host: finished tiles blended over the upsampled coarse result."""

    def __init__(self, coarse: torch.Tensor, plan: TilePlan):
        self.coarse = resize(coarse.detach().float().cpu(), plan.output_shape).clamp(0, 1)
        self.acc = torch.zeros_like(self.coarse)
        self.wsum = torch.zeros((1, 1, *plan.output_shape))
        self.wy = ramp_weights(plan.rows, plan.output_shape[0], plan.overlap)
        self.wx = ramp_weights(plan.cols, plan.output_shape[1], plan.overlap)

    def start(self, crop: tuple) -> torch.Tensor:
        """A tile's starting image: what is there so far (finished neighbours, else the coarse result)."""
        return self.acc[crop] + (1 - self.wsum[crop]) * self.coarse[crop]

    def add(self, crop: tuple, row: int, col: int, image: torch.Tensor) -> None:
        weight = torch.from_numpy(self.wy[row][:, None] * self.wx[col][None, :])[None, None]
        self.acc[crop] += weight * image.detach().float().cpu().clamp(0, 1)
        self.wsum[crop] += weight

    def image(self) -> torch.Tensor:
        return self.acc + (1 - self.wsum) * self.coarse


def tiled_iter(run: ContentRun, plan: TilePlan, stop: StopRequest = None) -> Iterator[ProgressEvent]:
    """The tiled run's events: the coarse pass (``tile == 0``), then each tile's steps."""
    config = run.config
    n_tiles = plan.n_tiles
    sizes = [*plan.coarse_sizes, plan.output_shape]
    n_scales = len(sizes)
    budgets = scale_budgets(config.iterations, n_scales)
    n_coarse = len(plan.coarse_sizes)
    info = {"tiled": plan.describe()}
    numbering = Numbering(
        budgets[:-1] + [budgets[-1]] * n_tiles, n_scales, {"n_tiles": n_tiles}, plan.message
    )
    end = yield from run_scales(run, plan.coarse_sizes, stop, numbering, final=False)
    if end.stopped:
        yield run.final_event(end, sizes, numbering, n_scales=n_scales, extra_info=info, n_tiles=n_tiles)
        return
    tiles_start = time.perf_counter()
    long_side = max(plan.output_shape)
    content_out = resize(run.inputs.transfer_content, plan.output_shape)
    assert end.image is not None
    canvas = _Canvas(end.image, plan)
    tile_end = RunEnd(None, end.step, end.losses, end.scale_times, False, n_scales - 1, plan.output_shape, 0)
    final_losses: list[dict[str, float]] = []
    tile_times: list[float] = []
    grid = [(r, c, y, x) for r, y in enumerate(plan.rows) for c, x in enumerate(plan.cols)]

    def finish(tile: int) -> ProgressEvent:
        """The final event: the canvas as it is, after ``tile`` tiles."""
        image = run.render(canvas.image())
        extra = {"extra_info": info, "n_tiles": n_tiles, "tile": tile}
        return run.final_event(tile_end, sizes, numbering, image=image, n_scales=n_scales, **extra)

    for k, (r, c, (y0, y1), (x0, x1)) in enumerate(grid, start=1):
        tile_start = time.perf_counter()
        crop = (..., slice(y0, y1), slice(x0, x1))
        objective = run.objective_for(
            content_out[crop].to(run.device), long_side, crop=crop, tile=plan.tile_size
        )
        call = n_coarse + k - 1
        steps = Steps(
            optimise(
                canvas.start(crop).to(run.device), objective, numbering.budgets[call], run.settings, stop=stop
            )
        )
        for step in steps:
            tile_end.step += 1
            tile_end.iteration, tile_end.losses = step.iteration, step.losses
            numbering.expected[call] = tile_end.expected = step.expected
            tile_done = step.last
            if tile_done:
                canvas.add(crop, r, c, step.image)
                if k == n_tiles:
                    continue
            preview = run.render(canvas.image()) if tile_done and config.preview_every else None
            yield run.step_event(tile_end, numbering, preview=preview, tile=k, n_tiles=n_tiles)
        outcome = steps.outcome
        assert outcome is not None
        if outcome.stopped:
            # Keep what this tile reached: blend it in like a finished one.
            canvas.add(crop, r, c, outcome.image)
            tile_end.stopped, tile_end.iteration = True, outcome.iterations
            yield finish(k)
            return
        final_losses.append(tile_end.losses)
        tile_times.append(time.perf_counter() - tile_start)
        del objective, steps, outcome
    tile_end.losses = {key: float(np.mean([d[key] for d in final_losses])) for key in final_losses[-1]}
    tile_end.scale_times = [*end.scale_times, time.perf_counter() - tiles_start]
    info["tiled"]["tile_times_s"] = [round(t, 3) for t in tile_times]
    yield finish(n_tiles)


__all__ = ["TilePlan", "plan_tiled_run", "ramp_weights", "tile_spans", "tiled_iter"]
