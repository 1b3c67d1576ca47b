"""What interrupted writes of a batch leave in its output folder, and removing it."""

from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import Path

from ..files.atomic import TEMP_PREFIX

#: What an interrupted write leaves behind: the temporary names of ``files/atomic.py``.
PARTIAL_PATTERN = f"{TEMP_PREFIX}*.tmp*"


def remove_partials(folder: str | Path) -> int:
    """Delete what interrupted writes left in ``folder`` (names like :data:`PARTIAL_PATTERN`, files
    or, for zarr stores, folders); returns how many."""
    removed = 0
    for leftover in Path(folder).glob(PARTIAL_PATTERN):
        with suppress(OSError):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            removed += 1
    return removed
