"""Stacks written to a zarr store: each chunk's worker writes its slices straight into the store
(one zarr chunk per slice, so no two workers touch the same file), the client never holds more
than two slices, and a stack larger than memory streams through.

The store is built under a temporary name in the batch's parts folder (same file system as
the output) and renamed into place when every chunk is in: a killed run never leaves a
half-filled ``OUT_DIR/<stem>.zarr``. A chunk that is in leaves a marker file beside the
store, so a re-run of an interrupted batch only runs the missing chunks.

``zarr`` is optional (the ``zarr`` extra); asking for zarr output without it is one sentence.
"""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from ..files.atomic import temp_name
from ..files.tiff_stack import StackHeader
from .items import BatchError

#: The output suffix of a zarr stack (``--ext zarr``).
ZARR_SUFFIX = ".zarr"
#: The store being filled, inside a stack's parts folder.
STORE_NAME = "stack.zarr"


def require_zarr() -> Any:
    """The zarr module, or a BatchError that says how to get it."""
    try:
        import zarr
    except ImportError:
        raise BatchError(
            "--ext zarr: needs the zarr package; install it with "
            "pip install 'napari-style-transfer[zarr]' (or write TIFF stacks: --ext tif)"
        ) from None
    return zarr


def result_shape(header: StackHeader, output_hw: tuple[int, int]) -> tuple[int, ...]:
    """The stylised stack's shape: the leading axes, the output size, the input's channels."""
    return (*header.lead, *output_hw, *header.slice_shape[2:])


def open_store(path: Path, header: StackHeader, output_hw: tuple[int, int]) -> Any:
    """The store at ``path``: kept when a previous run made it with this shape (resume), else made anew."""
    zarr = require_zarr()
    shape = result_shape(header, output_hw)
    dtype = np.dtype(header.dtype)
    if path.exists():
        with suppress(Exception):  # unreadable or another shape: start again
            store = zarr.open_array(str(path), mode="r+")
            if tuple(store.shape) == shape and np.dtype(store.dtype) == dtype:
                return store
        shutil.rmtree(path, ignore_errors=True)
    chunks = (1,) * len(header.lead) + shape[len(header.lead) :]
    return zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks, dtype=dtype)


def _index(flat: int, lead: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, lead)) if lead else ()


def write_slices(path: str | Path, start: int, lead: tuple[int, ...], result: np.ndarray) -> None:
    """Write a chunk's result slices (k, H, W[, C]) into the store, from flat slice ``start`` on."""
    zarr = require_zarr()
    store = zarr.open_array(str(path), mode="r+")
    inner = tuple(store.shape[len(lead) :])
    if tuple(result.shape[1:]) != inner:
        raise ValueError(
            f"a result slice has shape {tuple(result.shape[1:])}; the zarr store expects {inner}"
        )
    for offset, image in enumerate(result):
        store[_index(start + offset, lead)] = image


class StoreRows:
    """A chunk's result slices read from the store one at a time (``rows[offset]``)."""

    def __init__(self, store: Any, start: int, lead: tuple[int, ...]):
        self.store, self.start, self.lead = store, start, lead

    def __getitem__(self, offset: int) -> np.ndarray:
        return np.asarray(self.store[_index(self.start + offset, self.lead)])


def move_into_place(store: Path, output: Path) -> None:
    """Rename the finished store onto ``output``. A directory cannot be renamed over another, so
    an old output is first renamed aside (a temporary name that says whose it is: a later run removes it only once this process is gone)
    and deleted after: ``output`` is the old store, the whole new one, or for an instant none,
    never a half-written one."""
    old = None
    if output.exists() or output.is_symlink():
        old = temp_name(output.parent, ZARR_SUFFIX, kind="tmp-old")
        os.replace(output, old)
    try:
        os.replace(store, output)
    except BaseException:
        if old is not None:
            os.replace(old, output)
        raise
    if old is not None:
        remove_path(old)


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree (what is left of an old output)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink()
