"""Atomic file writes: a temporary file in the same folder, renamed into place when complete.

An interrupted or failed write (full disk, Ctrl-C, SIGTERM, a writer's error) leaves the
old file untouched and no partial or empty file behind: the temporary file is removed.

A temporary name says who made it: ``.nst-<host>-<pid>-<random>.tmp<suffix>``. What a killed
process left behind can then be told from what another process is writing right now:
:func:`abandoned` is true only when the owner is provably gone (this machine, no such process).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import stat
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

#: Temporary files are named ``.nst-<host>-<pid>-<random>.tmp<suffix>`` (short: any output name fits).
TEMP_PREFIX = ".nst-"
#: The owner part of a temporary name: this machine (a short hash of its name) and process.
_OWNED = re.compile(r"^\.nst-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]+\.tmp")


def host_tag() -> str:
    """Eight hex digits naming this machine (processes on another machine sharing a folder differ)."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def temp_name(folder: Path, suffix: str, kind: str = "tmp") -> Path:
    """A fresh temporary name in ``folder`` that says which process on which machine made it."""
    return folder / f"{TEMP_PREFIX}{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.{kind}{suffix}"


def owner(path: str | os.PathLike) -> tuple[str, int] | None:
    """(host tag, pid) of a temporary name made by :func:`temp_name`; None for any other name."""
    match = _OWNED.match(Path(path).name)
    return (match["host"], int(match["pid"])) if match else None


def abandoned(path: str | os.PathLike) -> bool:
    """Whether ``path`` is one of our temporary files whose process is gone: made on this machine by a
    process that no longer exists. Anything else (another machine's, a live process's, a name
    without an owner) may still be written to, and is left alone."""
    made_by = owner(path)
    if made_by is None or made_by[0] != host_tag():
        return False
    import psutil

    return not psutil.pid_exists(made_by[1]) and made_by[1] != os.getpid()


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
    temp = temp_name(path.parent, path.suffix)
    try:
        for _ in range(100):
            try:
                _create(temp)
                break
            except FileExistsError:  # a random name taken (someone else's file): another one
                temp = temp_name(path.parent, path.suffix)
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


__all__ = [
    "TEMP_PREFIX",
    "abandoned",
    "atomic_target",
    "atomic_write",
    "host_tag",
    "owner",
    "save_array_atomic",
    "temp_name",
    "write_json_atomic",
]
