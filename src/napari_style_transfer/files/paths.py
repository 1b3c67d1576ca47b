"""Checks of the paths the user names, before anything is read or a long run starts.

Inputs must be regular files we can read (a FIFO, a socket or a device is refused, so
reading never blocks or runs forever); the output must be a place where a file can be
written, and never one of the inputs (also through a symbolic or hard link).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path

from .errors import ImageFileError, as_path, reason, shown

TIFF_SUFFIXES = (".tif", ".tiff")
WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Longest file name (bytes) when the file system does not say.
NAME_MAX = 255

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _stat_problem(exc: OSError) -> str:
    """Why a path could not be looked at, in words."""
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long for the file system"
    if exc.errno == errno.ELOOP:
        return "its symbolic links form a loop"
    if exc.errno == errno.EACCES:
        return "permission denied (a folder on the way cannot be entered)"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    return reason(exc)


def check_input_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is a readable, non-empty regular file; else ImageFileError saying why."""
    path = as_path(path)
    try:
        info = os.stat(path)
    except ValueError:  # an embedded NUL byte
        raise ImageFileError(f"cannot read {shown(path)}: the name contains a NUL character") from None
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageFileError(
                f"file not found: {shown(path)} (a broken symbolic link to {shown(os.readlink(path))})"
            ) from None
        raise ImageFileError(f"file not found: {shown(path)}") from None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise ImageFileError(f"file not found: {shown(path)} ({_stat_problem(exc)})") from None
        raise ImageFileError(f"cannot read {shown(path)}: {_stat_problem(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageFileError(f"{shown(path)} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageFileError(f"{shown(path)} is {_kind(info.st_mode)}, not an image file")
    if info.st_size == 0:
        raise ImageFileError(f"cannot read image {shown(path)}: the file is empty")
    if not os.access(path, os.R_OK):
        raise ImageFileError(f"cannot read {shown(path)}: permission denied")
    return path


def write_target(path: str | os.PathLike) -> Path:
    """Where writing ``path`` really lands: the target of a symbolic link (the link itself is kept)."""
    path = as_path(path)
    with suppress(OSError, ValueError):
        if os.path.islink(path):
            return Path(os.path.realpath(path))
    return path


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX


def check_writable(path: str | os.PathLike, suffixes: tuple[str, ...] = WRITABLE_SUFFIXES) -> Path:
    """Raise ImageFileError unless an image can be written to ``path`` (checked before a long run).

    The folder must exist and take a new file (tried for real, so a read-only file system
    is caught too); ``path`` must not be a directory, a FIFO or a device, nor an existing
    file we may not replace, and its name must fit the file system. Returns where the file
    will be written (through a symbolic link, its target).
    """
    path = as_path(path)
    if path.suffix.lower() not in suffixes:
        raise ImageFileError(f"cannot write {shown(path)}: use one of {', '.join(suffixes)}")
    if "\x00" in str(path):
        raise ImageFileError(f"cannot write {shown(path)}: the name contains a NUL character")
    target = write_target(path)
    size, limit = len(os.fsencode(target.name)), _name_max(target.parent)
    if size > limit:
        raise ImageFileError(
            f"cannot write {shown(path)}: the file name is {size} bytes long; this file system allows {limit}"
        )
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        if exc.errno != errno.ENOTDIR:
            raise ImageFileError(f"cannot write {shown(path)}: {_stat_problem(exc)}") from None
        info = None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise ImageFileError(f"cannot write {shown(path)}: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ImageFileError(
                f"cannot write {shown(path)}: it is {_kind(info.st_mode)}, not a regular file"
            )
        if not os.access(target, os.W_OK):
            raise ImageFileError(f"cannot write {shown(path)}: the file exists and is read-only")
    folder = target.parent
    if not folder.exists():
        raise ImageFileError(f"cannot write {shown(path)}: folder {shown(folder)} does not exist")
    if not folder.is_dir():
        raise ImageFileError(f"cannot write {shown(path)}: {shown(folder)} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ImageFileError(
            f"cannot write {shown(path)}: folder {shown(folder)} is not writable ({reason(exc)})"
        ) from exc
    return target


__all__ = [
    "NAME_MAX",
    "TIFF_SUFFIXES",
    "WRITABLE_SUFFIXES",
    "check_input_file",
    "check_writable",
    "write_target",
]
