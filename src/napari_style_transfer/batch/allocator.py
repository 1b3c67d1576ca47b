"""Dask's worker processes and glibc's allocator: keep freed tensor memory for reuse.

A Dask nanny starts its worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
``distributed.nanny.pre-spawn-environ``, meant to give memory back to the system sooner). Setting
that variable also turns off glibc's adaptive mmap threshold, so every tensor above 128 KiB is
mapped and unmapped again at each optimiser step, and each step pays the page faults: a 128 px
run took 1.8-2x as long in such a worker as in a plain process (docs/scale_out.md). The embedded
cluster starts its workers without the variable (:func:`nanny_environ`). A worker may still
inherit it: Dask's nanny also writes its pre-spawn environment into its own process's
``os.environ``, so every process started later by a process that once started a default
cluster has it. So each embedded worker at start, and every worker when it prepares a job,
calls :func:`restore_allocator_reuse`, which sets the thresholds back to what glibc's adaptive
rule reaches.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
#: glibc's ``mallopt`` parameters and the values its adaptive rule reaches on 64-bit Linux.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def nanny_environ(environ: dict[str, Any]) -> dict[str, Any]:
    """Dask's pre-spawn environment for worker processes, without the trim threshold."""
    return {name: value for name, value in environ.items() if name != TRIM_VARIABLE}


_restored_in_this_process = False


def allocator_restored() -> bool:
    """Whether :func:`restore_allocator_reuse` changed the thresholds in this process."""
    return _restored_in_this_process


def restore_allocator_reuse() -> bool:
    """In a process started with the trim threshold set: let glibc keep freed memory for reuse.

    Returns True when the thresholds were changed (Linux with glibc, variable set).
    """
    global _restored_in_this_process
    if TRIM_VARIABLE not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mmap_ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        trim_ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt thresholds)
        return False
    if mmap_ok and trim_ok:
        _restored_in_this_process = True
        return True
    return False


__all__ = ["allocator_restored", "nanny_environ", "restore_allocator_reuse"]
