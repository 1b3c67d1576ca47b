"""Preloaded into the embedded cluster's worker processes (``dask_setup`` is Dask's preload hook).

Ctrl-C in a terminal sends SIGINT to the whole foreground process group; the client alone
should decide how a batch ends (stop the items, keep finished outputs, write the report), so
each embedded worker moves to a process group of its own. The nanny still stops it directly
(it signals the worker's pid), and the worker still exits when its parent goes away. External
clusters are left as they are. Each embedded worker also lets glibc keep freed memory for reuse
(``allocator.py``: a worker that inherits Dask's trim threshold remaps every tensor each step).
"""

from __future__ import annotations

import os
from typing import Any

from .allocator import restore_allocator_reuse


def dask_setup(worker: Any) -> None:
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    restore_allocator_reuse()
