"""Atomic file writes: a temporary file in the same folder, renamed into place when complete.

An interrupted or failed write (full disk, Ctrl-C, SIGTERM, a writer's error) leaves the
old file untouched and no partial or empty file behind: the temporary file is removed.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

#: Temporary files are named ``.nst-<random>.tmp<suffix>`` (short: any output name fits).
TEMP_PREFIX = ".nst-"


def _temp_name(folder: Path, suffix: str) -> Path:
    return folder / f"{TEMP_PREFIX}{secrets.token_hex(6)}.tmp{suffix}"


def _create(temp: Path) -> None:
    """Create ``temp`` (FileExistsError if the name is taken); the umask applies, as for open()."""
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends well.

    The temporary file has ``path``'s suffix (writers choose the format from it). An
    existing file's permissions are kept. On any exception, KeyboardInterrupt included,
    the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    # The name is chosen before the file exists, and created inside the try: an interrupt
    # landing just after the file was created still removes it.
    temp = _temp_name(path.parent, path.suffix)
    try:
        for _ in range(100):
            try:
                _create(temp)
                break
            except FileExistsError:  # a random name taken (someone else's file): another one
                temp = _temp_name(path.parent, path.suffix)
        else:
            raise FileExistsError(f"no free temporary file name in {path.parent}")
        yield temp
        with suppress(OSError):
            os.chmod(temp, stat.S_IMODE(os.stat(path).st_mode))
        _sync(temp)
        os.replace(temp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` over ``path``: readers see the old file or the whole new one."""
    with atomic_target(path) as tmp:
        write(tmp)
    return Path(path)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=1, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_array_atomic(path: str | Path, array: np.ndarray) -> Path:
    """An ``.npy`` file (a finished stack chunk waiting to be assembled), atomically."""
    return atomic_write(path, lambda tmp: np.save(tmp, array, allow_pickle=False))


__all__ = ["TEMP_PREFIX", "atomic_target", "atomic_write", "save_array_atomic", "write_json_atomic"]
