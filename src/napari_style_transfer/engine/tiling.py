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

The whole output lives in host memory (about ``HOST_BYTES_PER_PIXEL`` bytes per output
pixel); only one tile at a time is on the device.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from . import transfer as _transfer
from .images import resize
from .masks import Region
from .memory import estimate_peak_memory, largest_fitting_size
from .runtime import deterministic_algorithms
from .transfer import (
    MIN_SCALE_SIDE,
    MemoryLimitError,
    ProgressEvent,
    StopRequest,
    StyleTransferError,
    _closure,
    _final_event,
    _LoopState,
    _make_optimizer,
    _Prepared,
    _Problem,
    _scale_loop,
    _should_stop,
    scale_sizes,
)

#: Host memory per output pixel held by a tiled run (content, coarse result, canvas, weights, output).
HOST_BYTES_PER_PIXEL = 128
#: Automatic tile size: the largest that fits, at most this (bigger tiles gain little).
MAX_AUTO_TILE = 1024
#: Smallest automatic tile size; below it a tiled run is refused.
MIN_AUTO_TILE = 64
#: Tile size when the device's free memory is unknown (e.g. Apple MPS).
FALLBACK_TILE = 512
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


def _largest_tiled_side(shape: tuple[int, int], host_budget: int) -> int:
    h, w = shape
    ratio = min(h, w) / max(h, w)
    side = math.sqrt(max(0, host_budget) / HOST_BYTES_PER_PIXEL / ratio)
    return int(side) // 16 * 16


def plan_tiled_run(prep: _Prepared, reason: str) -> TilePlan:
    """Choose tile size, overlap and coarse size for ``prep``'s run; refuse what cannot fit."""
    config = prep.config
    out_shape = prep.output_shape
    out_long = max(out_shape)
    budget = _transfer.available_memory(prep.device)
    host_bytes = out_shape[0] * out_shape[1] * HOST_BYTES_PER_PIXEL
    device_budget = budget
    if budget is not None:
        host_budget = budget if prep.device.type == "cpu" else _transfer.available_memory(torch.device("cpu"))
        if host_budget is not None:
            if prep.device.type == "cpu":
                host_budget -= estimate_peak_memory((MIN_AUTO_TILE, MIN_AUTO_TILE), config.deepest_layer).total_bytes
            if host_bytes > host_budget:
                largest = _largest_tiled_side(out_shape, host_budget)
                raise MemoryLimitError(
                    f"size: {out_long} px needs about {host_bytes / 2**30:.1f} GiB of host memory even in tiles "
                    f"but only {max(host_budget, 0) / 2**30:.1f} GiB are free; the largest size that fits is about "
                    f"{largest} px",
                    largest,
                )
            if prep.device.type == "cpu":
                device_budget = budget - host_bytes
    precision, optimizer, deepest = prep.runtime.precision, config.optimizer, config.deepest_layer
    if config.tile_size is not None:
        tile = config.tile_size
        if device_budget is not None:
            need = estimate_peak_memory((tile, tile), deepest, precision, optimizer).total_bytes
            if need > device_budget:
                fits = largest_fitting_size((1, 1), device_budget, deepest, precision, optimizer)
                raise MemoryLimitError(
                    f"tile_size: {tile} px tiles need about {need / 2**30:.1f} GiB on {prep.device} but only "
                    f"{device_budget / 2**30:.1f} GiB are free; the largest tile that fits is about {fits} px",
                    fits,
                )
    elif device_budget is None:
        tile = FALLBACK_TILE
    else:
        tile = min(MAX_AUTO_TILE, largest_fitting_size((1, 1), device_budget, deepest, precision, optimizer))
        if tile < MIN_AUTO_TILE:
            raise MemoryLimitError(
                f"size: {out_long} px needs more memory than {prep.device} has free ({max(budget or 0, 0) / 2**30:.2f} GiB), "
                f"even in tiles; the largest size that fits is about 0 px",
                0,
            )
    tile = min(tile, out_long)
    overlap = config.tile_overlap if config.tile_overlap is not None else max(8, tile // 4)
    overlap = min(overlap, (tile - 1) // 2)
    # The coarse pass: half the output's long side (as the next-coarser scale of a multi-scale
    # run would be), but not below the coarsest multi-scale side unless the output is smaller.
    coarse_long = max(16, out_long // 2, min(out_long, MIN_SCALE_SIDE))
    if device_budget is not None:
        fits = largest_fitting_size(out_shape, device_budget, deepest, precision, optimizer)
        coarse_long = max(16, min(coarse_long, fits))
    coarse_sizes = scale_sizes(prep.content_shape, config.replace(size=coarse_long))
    return TilePlan(
        out_shape, tile, overlap, tile_spans(out_shape[0], tile, overlap), tile_spans(out_shape[1], tile, overlap),
        coarse_sizes, reason,
    )  # fmt: skip


def tiled_iter(prep: _Prepared, plan: TilePlan, stop: StopRequest = None) -> Iterator[ProgressEvent]:
    """The tiled run's events: the coarse pass (``tile == 0``), then each tile's steps."""
    config = prep.config
    n_tiles = plan.n_tiles
    sizes = [*plan.coarse_sizes, plan.output_shape]
    n_scales = len(sizes)
    total_steps = len(plan.coarse_sizes) * config.iterations + n_tiles * config.iterations
    fields = {"n_tiles": n_tiles}
    info = {"tiled": plan.describe()}
    device = prep.device
    with deterministic_algorithms(config.deterministic):
        st = yield from _scale_loop(
            prep, plan.coarse_sizes, stop, total_steps=total_steps, final=False, n_scales=n_scales,
            event_fields=fields, message=plan.message,
        )  # fmt: skip
        if st.stopped:
            yield _final_event(prep, st, sizes, total_steps, n_scales=n_scales, extra_info=info, event_fields=fields)
            return
        tiles_start = time.perf_counter()
        out_shape = plan.output_shape
        # Style statistics of the whole style image at the output's scale, once for all tiles.
        style_ts = prep.style_tensors(max(out_shape))
        if prep.guided:
            region_targets = prep.region_targets(style_ts, tile=plan.tile_size)
            targets = None
        else:
            targets = prep.blended_targets(style_ts, tile=plan.tile_size)
            region_targets = None
        del style_ts
        content_out = resize(prep.content_full, out_shape)
        assert st.image is not None
        coarse_up = resize(st.image.detach().float().cpu(), out_shape).clamp(0, 1)
        region_out = [resize(p, out_shape).clamp(0, 1) for p in prep.region_planes] if prep.guided else []
        consistency_out = (
            resize(prep.consistency_full, out_shape).clamp(0, 1) if prep.consistency_full is not None else None
        )
        acc = torch.zeros_like(coarse_up)
        wsum = torch.zeros((1, 1, *out_shape))
        wy = ramp_weights(plan.rows, out_shape[0], plan.overlap)
        wx = ramp_weights(plan.cols, out_shape[1], plan.overlap)
        final_losses: list[dict[str, float]] = []
        step = st.step
        tile_times: list[float] = []
        k = 0
        for r, (y0, y1) in enumerate(plan.rows):
            for c, (x0, x1) in enumerate(plan.cols):
                k += 1
                tile_start = time.perf_counter()
                crop = (..., slice(y0, y1), slice(x0, x1))
                content_t = content_out[crop].to(device)
                regions = None
                if region_targets is not None:
                    regions = [Region(m[crop].to(device), t) for m, t in zip(region_out, region_targets)]
                consistency = consistency_out[crop].to(device) if consistency_out is not None else None
                problem = _Problem(
                    prep.net, prep.convention, config, prep.runtime, content_t, [], [], style_targets=targets,
                    regions=regions, consistency=consistency, consistency_weight=prep.consistency_weight,
                )  # fmt: skip
                init = acc[crop] + (1 - wsum[crop]) * coarse_up[crop]
                image = init.to(device).contiguous().requires_grad_(True)
                optimizer = _make_optimizer(config, image)
                terms_box: dict[str, torch.Tensor] = {}
                closure = _closure(optimizer, problem, image, terms_box, prep.runtime.loss_scale)
                weight = torch.from_numpy(wy[r][:, None] * wx[c][None, :])[None, None]
                losses: dict[str, float] = {}
                for iteration in range(1, config.iterations + 1):
                    if _should_stop(stop):
                        # Keep what this tile reached: blend it in like a finished one.
                        acc[crop] += weight * image.detach().float().cpu().clamp(0, 1)
                        wsum[crop] += weight
                        end = _LoopState(None, step, losses or st.losses, st.scale_times, True, n_scales - 1, out_shape, iteration - 1)
                        canvas = acc + (1 - wsum) * coarse_up
                        yield _final_event(
                            prep, end, sizes, total_steps, image=prep.render(canvas), n_scales=n_scales,
                            extra_info=info, event_fields={"n_tiles": n_tiles, "tile": k},
                        )  # fmt: skip
                        return
                    optimizer.step(closure)
                    step += 1
                    losses = {key: float(v.detach()) for key, v in terms_box.items()}
                    if not np.isfinite(losses.get("total", 0.0)):
                        raise StyleTransferError(
                            "the optimisation diverged (loss is not finite); lower the learning rate or use L-BFGS"
                        )
                    tile_done = iteration == config.iterations
                    if tile_done:
                        acc[crop] += weight * image.detach().float().cpu().clamp(0, 1)
                        wsum[crop] += weight
                    if tile_done and k == n_tiles:
                        break
                    preview = None
                    if tile_done and config.preview_every:
                        with torch.no_grad():
                            preview = prep.render(acc + (1 - wsum) * coarse_up)
                    yield ProgressEvent(
                        n_scales - 1, n_scales, out_shape, iteration, config.iterations, step, total_steps, losses,
                        time.perf_counter() - prep.start, preview, tile=k, n_tiles=n_tiles,
                    )  # fmt: skip
                final_losses.append(losses)
                tile_times.append(time.perf_counter() - tile_start)
                del problem, optimizer, closure, image, terms_box
    canvas = acc + (1 - wsum) * coarse_up
    mean_losses = {key: float(np.mean([d[key] for d in final_losses])) for key in final_losses[-1]}
    end = _LoopState(None, step, mean_losses, [*st.scale_times, time.perf_counter() - tiles_start], False, n_scales - 1, out_shape, config.iterations)
    info["tiled"]["tile_times_s"] = [round(t, 3) for t in tile_times]
    yield _final_event(
        prep, end, sizes, total_steps, image=prep.render(canvas), n_scales=n_scales, extra_info=info,
        event_fields={"n_tiles": n_tiles, "tile": n_tiles},
    )  # fmt: skip


__all__ = ["HOST_BYTES_PER_PIXEL", "TilePlan", "plan_tiled_run", "ramp_weights", "tile_spans", "tiled_iter"]
