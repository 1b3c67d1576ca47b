"""Dask plumbing: the worker plugin that carries a job to every worker, the embedded cluster, the client.

Imported only when a batch runs, so the rest of the package works without ``distributed``.
No scheduler, queue or retry loop of our own: futures, ``retries=``, a worker plugin and
``as_completed`` do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
from distributed import Client, LocalCluster, WorkerPlugin

from ..messages import first_line
from .allocator import nanny_environ
from .items import BatchError
from .work import INPUT_ERRORS, BatchJob, install_job, prepared, remove_job

#: torch threads per worker when the embedded CPU cluster picks the split itself (see docs/scale_out.md).
DEFAULT_CPU_THREADS = 1
#: Run in each embedded worker process at start: it leaves the terminal's process group (see worker_setup.py).
PRELOAD = "napari_style_transfer.batch.worker_setup"
#: Memory one CPU worker needs for the network, its caches and a 512 px item, with margin.
CPU_WORKER_MEMORY = 3 * 2**30


class BatchPlugin(WorkerPlugin):
    """Installs a :class:`~.work.BatchJob` in each worker (now and any that joins later) and prepares it
    there once, off the worker's event loop; the teardown frees it."""

    def __init__(self, job: BatchJob, prepare: bool = True):
        self.job = job
        self.prepare = prepare

    async def setup(self, worker: Any) -> None:
        install_job(self.job)
        if self.prepare:
            await asyncio.get_running_loop().run_in_executor(None, prepared, self.job.key, worker.name)

    def teardown(self, worker: Any) -> None:
        remove_job(self.job.key)


def plugin_name(job: BatchJob) -> str:
    return f"napari-style-transfer-{job.key}"


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cpu_split(workers: int | None = None, threads: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads each) for a CPU cluster on this machine.

    Default: :data:`DEFAULT_CPU_THREADS` threads per worker and as many workers as the cores
    and the free memory allow; ``workers`` / ``threads`` override.
    """
    n_cores = cores()
    if workers is None:
        import psutil

        by_memory = max(1, int(psutil.virtual_memory().available // CPU_WORKER_MEMORY))
        workers = max(1, min(n_cores // (threads or DEFAULT_CPU_THREADS), by_memory))
    return workers, threads or max(1, n_cores // workers)


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@contextlib.contextmanager
def _sigint_held_back() -> Iterator[None]:
    """Hold back SIGINT while the embedded cluster starts, so that a Ctrl-C pressed meanwhile arrives
    (as KeyboardInterrupt) once the cluster exists and can be closed cleanly. Threads created in
    here inherit the block; the workers leave the terminal's process group through :data:`PRELOAD`."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@dataclass
class Cluster:
    """A client and, for the embedded cluster, the cluster it owns (closed by :meth:`close`)."""

    client: Client
    local: Any = None
    torch_threads: int | None = None
    kind: str = "external"

    @property
    def dashboard(self) -> str | None:
        """The dashboard's link when the cluster serves one (an embedded cluster: when bokeh is installed)."""
        if self.local is not None and not _has_bokeh():
            return None
        try:
            return (
                self.client.dashboard_link
                if self.client.scheduler_info().get("services", {}).get("dashboard")
                else None
            )
        except Exception:  # noqa: BLE001 - no dashboard is not an error
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.local is not None:
            with contextlib.suppress(Exception):
                self.local.close()


def _has_bokeh() -> bool:
    """The dashboard's pages need bokeh; without it the link leads to an install hint."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def start_local(workers: int | None = None, threads: int | None = None, in_process: bool = False) -> Cluster:
    """The embedded cluster: one worker per CUDA GPU (dask-cuda when installed), else the CPU split;
    ``in_process``: one worker thread in this process (see :func:`start_in_process`)."""
    if workers is not None and workers < 1:
        raise BatchError(f"--workers: must be an integer >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise BatchError(f"--threads-per-worker: must be an integer >= 1, got {threads}")
    try:
        return start_in_process() if in_process else _start_local(workers, threads)
    except Exception as exc:  # noqa: BLE001 - a cluster that cannot start is one line for the caller
        raise BatchError(
            f"cannot start the local Dask cluster: {type(exc).__name__}: {first_line(exc)}"
        ) from None


def _start_local(workers: int | None, threads: int | None) -> Cluster:
    gpus = _cuda_count()
    common = dict(dashboard_address="127.0.0.1:0", threads_per_worker=1, preload=[PRELOAD])
    settings = {
        "distributed.nanny.pre-spawn-environ": nanny_environ(
            dask.config.get("distributed.nanny.pre-spawn-environ", {})
        ),
        # The statistical profiler takes the GIL every 10 ms to sample the task's stack: 5-8 % of an item here.
        "distributed.worker.profile.enabled": False,
    }
    with _sigint_held_back(), dask.config.set(settings):
        if gpus and workers is None:
            try:
                from dask_cuda import LocalCUDACluster

                local, kind = LocalCUDACluster(**common), "dask-cuda"
            except ImportError:  # one worker per GPU, pinned by its number (work.pick_device)
                local, kind = LocalCluster(n_workers=gpus, processes=True, **common), "local-gpu"
            torch_threads = threads
        else:
            n, torch_threads = cpu_split(workers, threads) if not gpus else (workers, threads)
            local, kind = LocalCluster(n_workers=n, processes=True, **common), "local"
        client = Client(local)
    return Cluster(client, local, torch_threads, kind)


def start_in_process() -> Cluster:
    """One Dask worker running as one thread of this process, for a GUI: nothing to start or to load
    again (the network stays in this process), results come back without being copied, a stop
    reaches the item at once; torch keeps its threads (one item at a time uses them all). No
    preload: the process stays in its process group. Not the process's default client: the host's
    own dask arrays (napari's lazy layers) keep being computed by dask's local scheduler."""
    local = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    return Cluster(Client(local, set_as_default=False), local, None, "in-process")


def connect(address: str, timeout: float | None = None) -> Cluster:
    """A client of an existing cluster (``dask scheduler``/``dask worker``, dask-jobqueue, Kubernetes).

    ``timeout``: seconds to wait for the scheduler (None: Dask's ``distributed.comm.timeouts.connect``).
    """
    kwargs = {} if timeout is None else {"timeout": timeout}
    try:
        client = Client(address, **kwargs)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchError(f"--scheduler: cannot reach {address}: {first_line(exc)}") from None
    return Cluster(client)


def install(cluster: Cluster, job: BatchJob) -> str:
    """Send ``job`` to every worker through :class:`BatchPlugin` and wait until each has prepared it.

    A worker's input error (weights, device, config) comes back as it is; anything else as a
    one-line BatchError.
    """
    name = plugin_name(job)
    try:
        cluster.client.register_plugin(BatchPlugin(job), name=name)
    except INPUT_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a worker raised, one line for the caller
        raise BatchError(
            f"the workers could not prepare the batch: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    return name


def uninstall(cluster: Cluster, name: str) -> None:
    with contextlib.suppress(Exception):
        cluster.client.unregister_worker_plugin(name)
