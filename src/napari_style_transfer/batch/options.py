"""How a batch runs: :class:`BatchOptions` as callers give them, :class:`RunOptions` as a run uses
them (checked, with the guidance, stack options and stop request), and :class:`BatchStart`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..engine.config import ConfigError
from ..engine.events import StopRequest
from ..engine.guidance import Guidance, StackOptions
from .items import check_chunk


@dataclass
class BatchStart:
    """What a batch is about to do (given to ``on_start`` before the first result)."""

    total: int  # items: images, array items and stack chunks
    to_run: int  # items that will run (the others are skipped or failed already)
    report: Path | None
    cluster: str = ""  # 'local', 'local-gpu', 'dask-cuda', 'in-process', 'external'; '' when nothing runs
    workers: int = 0
    dashboard: str | None = None


@dataclass(frozen=True)
class BatchOptions:
    """Where the outputs go and how the batch runs.

    ``out_dir``: each item is written to ``out_dir/<stem>.<ext>`` atomically and
    ``out_dir/batch-report.json`` records every item (None: results come back as arrays).
    ``workers`` / ``threads_per_worker``: the embedded cluster's processes and their torch
    threads (ignored with a client). ``in_process``: the embedded cluster is one worker
    thread in this process (a GUI: nothing to start, the network and the results stay here,
    torch's threads are left as they are). ``chunk``: path contents are nD TIFF stacks cut
    into chunks of so many slices. ``ext``: the output format ('zarr': stacks into a zarr
    store). ``overwrite``: redo outputs a previous run made. ``retries``: how often Dask
    reruns an item whose code raised. ``contrast_limits``: one (low, high) or None per entry
    of a sequence of contents: that entry's value range (None: its own robust range) instead
    of the config's. ``on_start`` gets a :class:`BatchStart` before the first result.
    ``protect``: the other files the caller read for this batch, as (what, path) pairs (its
    style files, start image, settings file): like the contents, nothing the batch writes may
    replace them (checked by file identity before anything is written).
    """

    out_dir: str | Path | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    in_process: bool = False
    chunk: int | None = None
    ext: str | None = None
    overwrite: bool = False
    retries: int = 2
    contrast_limits: Sequence[tuple[float, float] | None] | None = None
    on_start: Callable[[BatchStart], None] | None = None
    protect: Sequence[tuple[str, str | Path]] = ()


@dataclass(frozen=True)
class RunOptions:
    """:class:`BatchOptions` checked, with what else one call of ``stylize_batch`` was given."""

    out_dir: Path | None
    guidance: Guidance | None
    workers: int | None
    threads_per_worker: int | None
    in_process: bool
    chunk: int | None
    stack: StackOptions | None
    ext: str | None
    overwrite: bool
    retries: int
    contrast_limits: tuple[tuple[float, float] | None, ...] | None
    stop: StopRequest
    on_start: Callable[[BatchStart], None] | None
    protect: tuple[tuple[str, str], ...] = ()


def run_options(
    o: BatchOptions, guidance: Guidance | None, stack: StackOptions | None, stop: StopRequest
) -> RunOptions:
    """Check ``o`` (one message per bad field) and bundle it with the call's other arguments."""
    limits = None
    if o.contrast_limits is not None:
        limits = tuple(None if v is None else _limits(v) for v in o.contrast_limits)
    return RunOptions(
        Path(o.out_dir) if o.out_dir is not None else None,
        guidance,
        o.workers,
        o.threads_per_worker,
        bool(o.in_process),
        None if o.chunk is None else check_chunk(o.chunk),
        stack,
        o.ext,
        o.overwrite,
        int(o.retries),
        limits,
        stop,
        o.on_start,
        tuple((str(what), str(path)) for what, path in o.protect),
    )


def _limits(value: object) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        low = high = float("nan")
    if not low < high:
        raise ConfigError(f"contrast_limits: each must be None or (low, high) with low < high, got {value!r}")
    return low, high
