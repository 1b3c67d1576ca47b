"""``stylize_batch``: many contents, one set of styles and settings, on a Dask cluster.

The CLI's ``batch`` command is a thin layer over it. Without a client it starts an embedded
cluster on this machine and closes it at the end; with one it uses that cluster as it is.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.config import ConfigError, StyleConfig
from ..engine.events import StopRequest, should_stop
from ..engine.guidance import Guidance, StackOptions
from ..engine.scales import scale_sizes
from ..files import ImageFileError, check_writable
from ..files.fingerprint import file_sha256, fingerprint
from ..messages import first_line
from .items import BatchError, BatchItem, array_digest, is_reader, settings_id, settings_record
from .options import BatchOptions, BatchStart, RunOptions, run_options
from .partials import remove_partials
from .plan import Plan, StackState, is_array, make_plan
from .report import (
    IDENTITY_KEYS,
    BatchReport,
    BatchResult,
    entry_is_current,
    is_current,
    load_previous,
    load_previous_chunks,
)
from .stacks import assemble_stack, finish_zarr, remove_parts
from .work import JOB_LIMITS, BatchJob, run_chunk, run_item, stack_limits, stop_job

#: How long a stop waits for running items to end (they stop after their current step).
HALT_WAIT_S = 15.0
#: How much longer a stop waits for the items that were already writing their output.
WRITE_WAIT_S = 120.0


def stylize_batch(
    contents: Any,
    styles: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    client: Any = None,
    *,
    options: BatchOptions | None = None,
    guidance: Guidance | None = None,
    stack: StackOptions | None = None,
    stop: StopRequest = None,
) -> Iterator[BatchResult]:
    """Stylise every item of ``contents`` with the same styles and config; yield a
    :class:`~.report.BatchResult` as each item finishes (in finishing order).

    ``contents``: a path, folder or glob pattern; a sequence of paths, arrays and readers (objects
    whose ``read()`` returns the image, called by the worker that stylises it); or one array
    (numpy or dask) whose leading axes, beyond one image's, are the items. ``client``: a
    ``distributed.Client``; None starts an embedded cluster (one worker per GPU on CUDA
    machines). ``options`` (:class:`BatchOptions`) say where outputs go; with an ``out_dir`` a
    re-run skips the outputs the last report says these settings made (unless ``overwrite``).
    Stack chunks are coherent inside a chunk (see ``stack``). A failed item does not stop the
    others; a worker that dies mid-item has the item rerun elsewhere. ``stop`` ends the batch
    between items: running items are cancelled and yielded as ``cancelled``.
    """
    internal = run_options(options or BatchOptions(), guidance, stack, stop)
    run = _BatchRun(contents, styles, config or StyleConfig(), client, internal)
    yield from run.results()


def _style_list(styles: Any) -> tuple[np.ndarray, ...]:
    listed = [styles] if is_array(styles) else list(styles)
    if not listed:
        raise ConfigError("styles: must be at least one style image, got none")
    return tuple(np.asarray(s) for s in listed)


class _BatchRun:
    """One call of :func:`stylize_batch`: plan, skip, submit, collect, and always clean up."""

    def __init__(self, contents: Any, styles: Any, config: StyleConfig, client: Any, options: RunOptions):
        self.config, self.options, self.client = config, options, client
        self.styles = _style_list(styles)
        extra: dict[str, Any] = {"chunk": options.chunk}
        if options.contrast_limits is not None:
            extra["contrast_limits"] = [None if v is None else list(v) for v in options.contrast_limits]
        if options.chunk is not None:
            stack = options.stack or StackOptions()
            extra["stack"] = {
                "coherence": stack.coherence,
                "motion": stack.motion,
                "consistency_weight": stack.consistency_weight,
            }
        self.settings = settings_record(config, self.styles, options.guidance, extra)
        self.settings_id = settings_id(self.settings)
        if options.out_dir is not None:
            try:
                options.out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ImageFileError(f"OUT_DIR: cannot create {options.out_dir}: {first_line(exc)}") from None
        self.plan: Plan = make_plan(
            contents,
            options.out_dir,
            ext=options.ext,
            chunk=options.chunk,
            settings_id=self.settings_id,
            limits=options.contrast_limits,
            protect=options.protect,
        )
        self.report = None
        if options.out_dir is not None:
            self.report = BatchReport(options.out_dir, self.settings, self.settings_id)
            check_writable(self.report.path, (".json",))  # a folder in its place, a read-only folder…
        self.finished: set[int] = set()
        self.cancelled: set[int] = set()
        self.writing: set[int] = set()  # items the workers said were writing when the batch stopped
        self.before: dict[int, tuple | None] = {}  # outputs as they were before the items ran
        self.futures: dict[Any, BatchItem] = {}
        self.cluster: Any = None
        self.plugin: str | None = None
        self.current_stacks: set[str] = set()

    def results(self) -> Iterator[BatchResult]:
        try:
            yield from self._known_outcomes()
            todo = [item for item in self.plan.items if item.index not in self.finished]
            start = BatchStart(len(self.plan.items), len(todo), self.report.path if self.report else None)
            if todo:
                self._start_cluster(start)
            if self.options.on_start is not None:
                self.options.on_start(start)
            if todo:
                self._submit(todo)
                yield from self._collect()
        finally:
            self._finish()

    # -- before any cluster: failures found while planning, and outputs a re-run keeps
    def _known_outcomes(self) -> Iterator[BatchResult]:
        for result in self.plan.failed:
            yield self._record(result)
        out_dir = self.options.out_dir
        if out_dir is None:
            return
        remove_partials(out_dir)
        for state in self.plan.stacks.values():
            state.identity = fingerprint(state.source)
        if self.options.overwrite:
            for state in self.plan.stacks.values():
                remove_parts(state.folder)
            return
        previous, chunks = load_previous(out_dir), load_previous_chunks(out_dir)
        for state in self.plan.stacks.values():
            if is_current(previous, state.output, self.settings_id, state.identity):
                self.current_stacks.add(state.source)
        for item in self.plan.items:
            if item.index in self.finished:
                continue
            if item.slices is None:
                entry = previous.get(item.output) if item.output is not None else None
                if entry is not None and entry_is_current(
                    entry, item.output, self.settings_id, self._input_identity(item)
                ):
                    yield self._record(self._plain(item, "skipped", identity=_kept(entry)))
            elif item.source in self.current_stacks or self._part_current(item, chunks):
                yield from self._chunk_finished(item, self._plain(item, "skipped"))

    def _input_identity(self, item: BatchItem) -> dict[str, Any] | None:
        """What the item's input is now (None: it cannot be told without reading it: never skipped)."""
        if item.source is not None:
            return fingerprint(item.source)
        array = self.plan.arrays.get(item.index)
        return {"digest": array_digest(array)} if isinstance(array, np.ndarray) else None

    def _plain(self, item: BatchItem, status: str, message: str = "", **fields: Any) -> BatchResult:
        return BatchResult(
            item.index,
            item.name,
            item.label,
            item.output,
            status,
            message,
            kind=item.kind,
            slices=item.slices,
            **fields,
        )

    def _part(self, item: BatchItem) -> Path:
        state = self.plan.stacks[str(item.source)]
        return next(
            path for start, _, path in state.parts if item.slices is not None and start == item.slices[0]
        )

    def _part_current(self, item: BatchItem, chunks: dict[tuple[str, int], dict[str, Any]]) -> bool:
        """A chunk an interrupted run finished from this very stack: its part is there and still what
        that run wrote (for zarr, a marker and the store), and the stack is the same file content."""
        state = self.plan.stacks[str(item.source)]
        part = self._part(item)
        if not part.is_file() or (state.store is not None and not state.store.is_dir()):
            return False
        entry = chunks.get((str(item.source), item.slices[0])) if item.slices is not None else None
        return entry_is_current(entry, part, self.settings_id, state.identity)

    def _record(self, result: BatchResult) -> BatchResult:
        if result.kind != "stack":
            self.finished.add(result.index)
            (self.cancelled.add if result.status == "cancelled" else self.cancelled.discard)(result.index)
        if self.report is not None:
            self.report.add(result)
        return result

    # -- the cluster
    def _start_cluster(self, start: BatchStart) -> None:
        from . import plumbing

        options = self.options
        if self.client is not None:
            self.cluster = plumbing.Cluster(self.client, torch_threads=options.threads_per_worker)
        else:
            self.cluster = plumbing.start_local(
                options.workers, options.threads_per_worker, options.in_process
            )
        key = f"{self.settings_id}-{uuid.uuid4().hex[:8]}"
        job = BatchJob(
            key, self.styles, self.config, options.guidance, options.stack, self.cluster.torch_threads
        )
        self.job_key = key
        self.plugin = plumbing.install(self.cluster, job)
        start.cluster, start.dashboard = self.cluster.kind, self.cluster.dashboard
        start.workers = len(self.cluster.client.nthreads())

    def _contents(self, todo: list[BatchItem]) -> dict[int, Any]:
        """Array items: numpy arrays travel inside their task (the scheduler keeps them until the item
        is done, so a rerun elsewhere still has them); dask slices are computed on the cluster, and
        since an item's task has the higher priority, a worker stylises what it has read before it
        reads the next: a lazy stack larger than memory streams through, a slice or two at a time."""
        arrays, client = self.plan.arrays, self.cluster.client
        indices = [i.index for i in todo if i.index in arrays]
        lazy = [i for i in indices if hasattr(arrays[i], "dask")]
        readers = [i for i in indices if is_reader(arrays[i])]
        contents = {i: np.asarray(arrays[i]) for i in indices if i not in lazy and i not in readers}
        if lazy:
            contents.update(zip(lazy, client.compute([arrays[i] for i in lazy])))
        if readers:  # handed over as they are (an in-process worker gets the very objects, unpickled)
            contents.update(zip(readers, client.scatter([arrays[i] for i in readers], hash=False)))
        return contents

    def _submit(self, todo: list[BatchItem]) -> None:
        client, retries = self.cluster.client, self.options.retries
        contents = self._contents(todo)
        scans: dict[str, Any] = {}
        for item in todo:
            if item.slices is None:
                self.before[item.index] = file_identity(item.output)
                limits = self.plan.limits.get(item.index, JOB_LIMITS)
                future = client.submit(  # before any other item's read (see _contents)
                    run_item,
                    self.job_key,
                    item,
                    contents.get(item.index),
                    limits,
                    retries=retries,
                    pure=False,
                    priority=1,
                )
            else:
                state = self.plan.stacks[str(item.source)]
                if state.source not in scans:
                    self._prepare_stack(state)
                    scans[state.source] = client.submit(
                        stack_limits,
                        state.source,
                        state.header,
                        self.config.contrast_limits,
                        retries=retries,
                        pure=False,
                    )
                future = client.submit(
                    run_chunk,
                    self.job_key,
                    item,
                    state.header,
                    scans[state.source],
                    str(self._part(item)),
                    None if state.store is None else str(state.store),
                    retries=retries,
                    pure=False,
                )
            self.futures[future] = item

    def _prepare_stack(self, state: StackState) -> None:
        """The stack's parts folder and, for zarr output, its store (kept from an interrupted run)."""
        state.folder.mkdir(parents=True, exist_ok=True)
        if state.store is not None:
            from .zarr_stack import open_store

            output_hw = scale_sizes(state.header.slice_shape[:2], self.config)[-1]
            try:
                open_store(state.store, state.header, output_hw)
            except Exception as exc:  # noqa: BLE001 - whatever zarr raises, one line
                raise BatchError(
                    f"OUT_DIR: cannot create the zarr store {state.store}: {type(exc).__name__}: {first_line(exc)}"
                ) from None

    def _collect(self) -> Iterator[BatchResult]:
        from distributed import as_completed

        pending = as_completed(list(self.futures), loop=self.cluster.client.loop)  # not the default client's
        while not pending.is_empty():
            if should_stop(self.options.stop):
                yield from self._cancel_running()
                return
            ready = pending.next_batch(block=False)
            if not ready:
                time.sleep(0.05)
                continue
            for future in ready:
                item = self.futures.pop(future)
                result = self._outcome(item, future)
                if item.slices is None:
                    yield self._record(result)
                else:
                    yield from self._chunk_finished(item, result)

    def _outcome(self, item: BatchItem, future: Any) -> BatchResult:
        if future.status != "finished":
            try:
                exc = future.exception()
                message = (
                    f"{type(exc).__name__}: {first_line(exc)}"
                    if exc is not None
                    else f"the item was {future.status}"
                )
            except Exception as err:  # noqa: BLE001 - a cancelled future raises here
                message = f"{type(err).__name__}: {first_line(err)}"
            return self._plain(item, "failed", message)
        out = future.result()
        info = {k: out[k] for k in ("prep_id", "shape") if k in out}
        return self._plain(
            item,
            out["status"],
            out.get("message", ""),
            seconds=out["seconds"],
            worker=out["worker"],
            result=out.get("result"),
            info=info,
            identity=out.get("identity") or {},
        )

    def _halt(self) -> list[BatchResult]:
        """Stop the batch: running items end after their current step without writing, queued ones
        never start. The workers answer the stop with the items already writing their output;
        those are waited for (:data:`WRITE_WAIT_S`) and kept as they ended, like any item that
        finished meanwhile; the others are ``cancelled``. Everything is recorded; returns the results."""
        futures = list(self.futures)
        with suppress(Exception):
            answers = self.cluster.client.run(stop_job, self.job_key, on_error="ignore")
            self.writing.update(i for indices in answers.values() for i in indices or ())
        with suppress(KeyboardInterrupt):
            wait_done(futures, HALT_WAIT_S)
            wait_done([f for f in futures if self.futures[f].index in self.writing], WRITE_WAIT_S)
        results = []
        for future in futures:
            item = self.futures.pop(future)
            ended = future.status == "finished"
            result = (
                self._with_part_identity(item, self._outcome(item, future))
                if ended
                else self._plain(item, "cancelled", "stopped before it finished")
            )
            results.append(self._record(result))
        with suppress(Exception):
            self.cluster.client.cancel(futures)
        return results

    def _cancel_running(self) -> Iterator[BatchResult]:
        yield from self._halt()

    # -- stacks
    def _with_part_identity(self, item: BatchItem, result: BatchResult) -> BatchResult:
        """A finished chunk's result with what a re-run checks before it reuses the part (the stack's
        identity, the part's digest); other results as they are. Also for a chunk that finished
        while the batch was stopping: without it the report said ``done`` and a re-run redid it."""
        if item.kind == "chunk" and result.status in ("done", "skipped"):
            state = self.plan.stacks[str(item.source)]
            result.identity = {
                "input_identity": state.identity,
                "output_sha256": file_sha256(self._part(item)),
            }
        return result

    def _chunk_finished(self, item: BatchItem, result: BatchResult) -> Iterator[BatchResult]:
        state = self.plan.stacks[str(item.source)]
        self._with_part_identity(item, result)
        state.remaining.discard(item.index)
        state.failed = state.failed or result.status == "failed"
        yield self._record(result)
        if not state.remaining:
            yield self._record(self._stack_outcome(state))

    def _stack_outcome(self, state: StackState) -> BatchResult:
        base = dict(index=-1, name=state.name, input=state.source, output=state.output, kind="stack")
        if state.failed:
            return BatchResult(**base, status="failed", message="a chunk failed; the stack was not written")
        if state.source in self.current_stacks:
            identity = {"input_identity": state.identity, "output_sha256": file_sha256(state.output)}
            return BatchResult(**base, status="skipped", identity=identity)
        started = time.perf_counter()
        try:
            finish = finish_zarr if state.zarr else assemble_stack
            info = finish(state.source, state.header, state.parts, state.output)
        except Exception as exc:  # noqa: BLE001 - a reader's or zarr's error: the stack failed, one line
            return BatchResult(**base, status="failed", message=f"assembling the stack: {first_line(exc)}")
        remove_parts(state.folder)
        info["chunk"] = self.options.chunk
        identity = {"input_identity": state.identity, "output_sha256": file_sha256(state.output)}
        seconds = round(time.perf_counter() - started, 3)
        return BatchResult(**base, status="done", seconds=seconds, info=info, identity=identity)

    # -- always
    def _finish(self) -> None:
        """Cancel what still runs, free the workers' job, close an embedded cluster, drop partial
        files and write the final report (unfinished items as ``cancelled``)."""
        if self.futures and self.cluster is not None:
            self._halt()
        if self.cluster is not None:
            from . import plumbing

            if self.plugin is not None:
                plumbing.uninstall(self.cluster, self.plugin)
            if self.client is None:
                self.cluster.close()
        if self.options.out_dir is not None:
            remove_partials(self.options.out_dir)
        if self.report is not None:
            for item in self.plan.items:
                if item.index not in self.finished:
                    self._record(self._plain(item, "cancelled", "interrupted before it finished"))
            self._keep_late_outputs()
            self.report.save(finished=True)

    def _keep_late_outputs(self) -> None:
        """A cancelled item whose output was replaced during this run, whose task never came back
        (its worker was writing when the batch stopped, or wrote just before a Ctrl-C reached it
        and died with the process group): the file is whole (writes are atomic) and this run wrote
        it, so the report says ``done`` (no output is left that the report calls unfinished)."""
        for item in self.plan.items:
            if item.index not in self.cancelled or item.index not in self.before or item.kind == "chunk":
                continue  # (never submitted: an output there is an older run's)
            if file_identity(item.output) not in (None, self.before.get(item.index)):
                self._record(self._plain(item, "done", "finished while the batch was stopping"))


def _kept(entry: dict[str, Any] | None) -> dict[str, Any]:
    """The identity a kept output's entry carries forward (so the next re-run can check it again)."""
    return {k: entry[k] for k in IDENTITY_KEYS if entry and k in entry}


def wait_done(futures: Sequence[Any], timeout: float) -> bool:
    """Wait until every future has ended (or ``timeout`` seconds); True if they all did. (Dask's
    ``wait`` needs a default client, which an in-process cluster deliberately is not.)"""
    deadline = time.monotonic() + timeout
    while not all(f.done() for f in futures):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def file_identity(path: str | None) -> tuple[int, int, int] | None:
    """(device, inode, mtime in ns) of a file, None when there is none: an atomic write (a rename)
    changes it, whatever the clocks of the machines say."""
    if path is None:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns
