"""What interrupted writes of a batch leave in its output folder, and removing only what is provably abandoned.

A temporary file belongs to the process that made it (its name says which, ``files/atomic.py``):
another process may be writing into the same folder right now, so a name that merely looks
like ours is never enough. A leftover is removed only when its owner is gone.
"""

from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import Path

from ..files.atomic import TEMP_PREFIX, abandoned

#: What an interrupted write may leave behind: the temporary names of ``files/atomic.py``.
PARTIAL_PATTERN = f"{TEMP_PREFIX}*.tmp*"


def remove_partials(folder: str | Path) -> int:
    """Delete the temporary files (or, for zarr stores, folders) in ``folder`` whose writer is gone;
    returns how many. A live process's files, another machine's and unnamed ones stay."""
    removed = 0
    for leftover in Path(folder).glob(PARTIAL_PATTERN):
        if not abandoned(leftover):
            continue
        with suppress(OSError):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            removed += 1
    return removed


__all__ = ["PARTIAL_PATTERN", "remove_partials"]
