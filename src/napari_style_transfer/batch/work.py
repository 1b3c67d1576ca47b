"""The worker's side of a batch: the job's state, prepared once per worker process, and the tasks.

A :class:`BatchJob` (styles, config, guidance) reaches each worker once, through the worker
plugin in ``plumbing.py``; it is prepared (network loaded, caches warm) once per process and
kept under the job's key. A task names the key and its item; the weights and the styles never
travel with an item. Nothing here imports dask at module level.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.config import ConfigError, StyleConfig
from ..engine.events import StopRequest, StyleTransferError
from ..engine.guidance import Guidance, StackOptions
from ..engine.images import ImageError
from ..engine.stack import stack_contrast_limits, stylize_stack_iter
from ..engine.stylizer import Stylizer
from ..engine.vgg import WeightsError
from ..files import ImageFileError, read_image, write_image
from ..files.atomic import atomic_write, save_array_atomic
from ..files.fingerprint import file_sha256, fingerprint
from ..files.tiff_stack import StackHeader, TiffSlices, read_slices
from ..messages import first_line
from .allocator import restore_allocator_reuse
from .items import BatchItem, array_digest, is_reader
from .zarr_stack import write_slices

#: Errors that the same input would raise again: the item fails at once (no retry).
INPUT_ERRORS = (ImageFileError, ImageError, ConfigError, WeightsError, StyleTransferError)
#: ``run_item``'s ``limits`` when the item maps its values with the job's config.
JOB_LIMITS = "job"


@dataclass(frozen=True)
class BatchJob:
    """What every item of one batch shares; sent to each worker once."""

    key: str
    styles: tuple[np.ndarray, ...]
    config: StyleConfig
    guidance: Guidance | None = None
    #: Stack chunks: motion and consistency (coherence is on inside a chunk of 2+ slices).
    stack: StackOptions | None = None
    #: torch intra-op threads in each worker process (None: torch's default).
    torch_threads: int | None = None


class PreparedJob:
    """A job made ready in this process: device picked, network loaded, caches warm."""

    def __init__(self, job: BatchJob, worker_name: Any = None):
        restore_allocator_reuse()  # a Dask nanny's worker otherwise remaps every tensor each step
        if job.torch_threads:
            import torch

            torch.set_num_threads(job.torch_threads)
        device = pick_device(job.config.device, worker_name)
        self.job = job
        self.config = job.config if device == job.config.device else job.config.replace(device=device)
        self.prep_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        self.engine = _prepare_engine(job.styles, self.config, job.guidance)
        self.prepare_s = time.perf_counter() - started
        self._by_limits: dict[Any, Stylizer] = {}
        self._lock = threading.Lock()

    def engine_for(self, limits: Any = JOB_LIMITS) -> Stylizer:
        """The engine for contents mapped with ``limits`` (:data:`JOB_LIMITS`: the job's config);
        another value range gets its own engine, made once (the network is shared)."""
        if limits == JOB_LIMITS or limits == self.config.contrast_limits:
            return self.engine
        key = None if limits is None else tuple(limits)
        with self._lock:
            if key not in self._by_limits:
                config = self.config.replace(contrast_limits=key)
                self._by_limits[key] = _prepare_engine(self.job.styles, config, self.job.guidance)
            return self._by_limits[key]


_JOBS: dict[str, BatchJob] = {}
_PREPARED: dict[str, PreparedJob] = {}
_STOPPED: set[str] = set()
#: Items of each job whose result is being written in this process (past the point of no return).
_WRITING: dict[str, set[int]] = {}
_LOCK = threading.Lock()


def stop_job(key: str) -> list[int]:
    """Ask this process's running items of job ``key`` to end after their current step, unwritten
    (the client runs it on every worker when the batch is stopped or interrupted).

    Returns the items that were already writing their output: they finish, and the client
    waits for them; every other item of the job writes nothing from now on.
    """
    with _LOCK:
        _STOPPED.add(key)
        return sorted(_WRITING.get(key, ()))


def _stop_flag(key: str) -> Callable[[], bool]:
    return lambda: key in _STOPPED


@contextmanager
def claim_write(key: str, index: int) -> Iterator[bool]:
    """Claim the right to write item ``index``: False when the job was stopped first. The claim
    and :func:`stop_job` take the same lock, so the client learns exactly which items still write."""
    with _LOCK:
        allowed = key not in _STOPPED
        if allowed:
            _WRITING.setdefault(key, set()).add(index)
    try:
        yield allowed
    finally:
        if allowed:
            with _LOCK:
                _WRITING.get(key, set()).discard(index)


def install_job(job: BatchJob) -> None:
    """Make ``job`` known in this process (the worker plugin's setup)."""
    with _LOCK:
        _JOBS[job.key] = job


def remove_job(key: str) -> None:
    """Forget a job and its prepared state (the worker plugin's teardown)."""
    with _LOCK:
        _JOBS.pop(key, None)
        _PREPARED.pop(key, None)


def prepared(key: str, worker_name: Any = None) -> PreparedJob:
    """The job's prepared state in this process, made on first use (later callers wait for it)."""
    with _LOCK:
        state = _PREPARED.get(key)
        if state is None:
            job = _JOBS.get(key)
            if job is None:
                raise RuntimeError(
                    f"batch job {key} is not installed in this process (its worker plugin did not run)"
                )
            state = _PREPARED[key] = PreparedJob(job, worker_name)
    return state


def pick_device(name: str, worker_name: Any) -> str:
    """With several visible GPUs and no pinning (no dask-cuda), worker number N takes GPU N mod count."""
    if name not in ("auto", "cuda"):
        return name
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return name
    text = str(worker_name)
    if not text.isdigit():
        return name
    return f"cuda:{int(text) % torch.cuda.device_count()}"


def _prepare_engine(
    styles: tuple[np.ndarray, ...], config: StyleConfig, guidance: Guidance | None
) -> Stylizer:
    """Prepare once per worker: styles converted, device and precision picked, network loaded
    (the style targets of each output size are then computed on first use and kept)."""
    stylizer = Stylizer(list(styles), config, guidance)
    stylizer.extractor()
    return stylizer


def _stylize_item(engine: Stylizer, content: np.ndarray, stop: StopRequest = None) -> np.ndarray | None:
    """One 2D content through the worker's prepared engine; None when ``stop`` ended it early."""
    for event in engine.run_iter(content, stop=stop):
        if event.done:
            return None if event.stopped else event.preview
    return None


def read_here(reader: Any) -> np.ndarray:
    """Call a reader's ``read()`` in this worker: dask arrays it computes use dask's local threads
    (inside a Dask worker they would otherwise go back to the cluster as new tasks, and their
    graphs, a layer's open files and locks included, would have to be pickled)."""
    import dask

    with dask.config.set(scheduler="threads"):
        return np.asarray(reader.read())


def _worker() -> tuple[str, Any]:
    """(address, name) of the Dask worker running this task; ('local', None) outside one."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return worker.address, worker.name
    except (ImportError, ValueError):
        return "local", None


def _outcome(item: BatchItem, status: str, start: float, worker: str, **fields: Any) -> dict[str, Any]:
    return {
        "index": item.index,
        "status": status,
        "seconds": round(time.perf_counter() - start, 3),
        "worker": worker,
        **fields,
    }


def run_item(
    key: str, item: BatchItem, content: np.ndarray | None = None, limits: Any = JOB_LIMITS
) -> dict[str, Any]:
    """The task for one image: read (in the worker), stylise, write atomically (or return the result).

    ``limits``: the item's own value range (None: its robust range), or :data:`JOB_LIMITS`.
    Input errors end the item as ``failed`` with a one-line message; anything else (a device
    error, a worker dying) propagates so that Dask retries the item.
    """
    start = time.perf_counter()
    address, name = _worker()
    identity: dict[str, Any] = {}
    try:
        state = prepared(key, name)
        if item.source is not None and content is None:
            identity["input_identity"] = fingerprint(item.source)  # before it is read: an edit shows
        elif isinstance(content, np.ndarray):
            identity["input_identity"] = {"digest": array_digest(content)}
        if is_reader(content):
            try:
                content = read_here(content)
            except Exception as exc:  # noqa: BLE001 - its input is unreadable: fails alone, no retry
                message = f"cannot read the content: {type(exc).__name__}: {first_line(exc)}"
                return _outcome(item, "failed", start, address, message=message)
        image = content if content is not None else read_image(item.source)
        engine = state.engine_for(limits)
        result = _stylize_item(engine, np.asarray(image), stop=_stop_flag(key))
        with claim_write(key, item.index) as allowed:
            if result is None or not allowed:
                return _outcome(item, "cancelled", start, address, message="stopped before it finished")
            if item.output is not None:
                write_image(item.output, result)  # atomic: a temporary file, then a rename
                identity["output_sha256"] = file_sha256(item.output)
    except INPUT_ERRORS as exc:
        message = first_line(exc)
        if isinstance(exc, ImageError) and message.startswith("content:") and item.source is not None:
            message += " (for a stack of 2D slices use --stack)"
        return _outcome(item, "failed", start, address, message=message)
    return _outcome(
        item,
        "done",
        start,
        address,
        prep_id=state.prep_id,
        shape=list(result.shape),
        result=None if item.output is not None else result,
        identity=identity,
    )


def _stylize_chunk(
    state: PreparedJob, data: np.ndarray, rgb: bool, limits: tuple[float, float], stop: StopRequest = None
) -> np.ndarray | None:
    """Consecutive slices (k, H, W[, C]) in one value range, coherent inside the chunk; None when
    ``stop`` ended it early."""
    options = state.job.stack or StackOptions()
    stack = StackOptions(
        rgb=rgb,
        coherence=len(data) > 1 and options.coherence,
        motion=options.motion,
        consistency_weight=options.consistency_weight,
    )
    config = state.config.replace(contrast_limits=limits)
    result = None
    for event in stylize_stack_iter(
        data, list(state.job.styles), config, stack=stack, guidance=state.job.guidance, stop=stop
    ):
        if event.done:
            result = None if event.stopped else event.result
    return result


def run_chunk(
    key: str, item: BatchItem, header: StackHeader, scan: dict[str, Any], part: str, store: str | None = None
) -> dict[str, Any]:
    """The task for a chunk of a stack: read its slices, stylise them, save them as a part file
    (or, with a zarr ``store``, write them into it and leave the part as a marker).

    ``scan`` is the stack's :func:`stack_limits` outcome (a Dask dependency of every chunk).
    """
    start = time.perf_counter()
    address, name = _worker()
    assert item.source is not None and item.slices is not None
    if "message" in scan:
        return _outcome(item, "failed", start, address, message=scan["message"])
    limits = tuple(scan["limits"])
    try:
        state = prepared(key, name)
        data = read_slices(item.source, *item.slices, header)
        result = _stylize_chunk(state, data, header.rgb, limits, stop=_stop_flag(key))
        with claim_write(key, item.index) as allowed:
            if result is None or not allowed:
                return _outcome(item, "cancelled", start, address, message="stopped before it finished")
            if store is None:
                save_array_atomic(part, result)
            else:
                write_slices(store, item.slices[0], header.lead, result)
                atomic_write(part, lambda tmp: tmp.write_bytes(b""))
    except INPUT_ERRORS as exc:
        return _outcome(item, "failed", start, address, message=first_line(exc))
    return _outcome(item, "done", start, address, prep_id=state.prep_id, shape=list(result.shape))


def stack_limits(
    path: str, header: StackHeader, contrast_limits: tuple[float, float] | None = None
) -> dict[str, Any]:
    """The task that finds one value range for a whole stack (sampled slices) before its chunks run:
    ``{'limits': (low, high)}``, or ``{'message': ...}`` when the stack cannot be read."""
    try:
        return {"limits": stack_contrast_limits(TiffSlices(path, header), header.rgb, contrast_limits)}
    except INPUT_ERRORS as exc:
        return {"message": first_line(exc)}
