"""The one rule that keeps a run off the user's files: nothing it writes may be a file it reads.

Before anything is written, every path a run will write (results, stack outputs, chunk parts,
step files, reports, zarr stores) is checked against every file it reads (contents, styles,
masks, start images, settings files, weights) by file identity — device and inode, so the
same file is found through a symbolic link, a hard link, ``..`` or another spelling, and a
case variant on a file system that folds case — never by comparing names. Temporary files
cannot collide (they are created exclusively under fresh names, ``atomic.py``), and their
rename lands on a checked path.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ImageFileError, shown

#: (device, inode) of an existing file.
Identity = tuple[int, int]


def identity(path: str | os.PathLike) -> Identity | None:
    """(device, inode) of what ``path`` names (links followed), or None when nothing is there."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


@dataclass(frozen=True)
class ReadFile:
    """A file the run reads: what it is to the user ('content', 'style 2', '--mask'…) and where."""

    what: str
    path: str


class ReadFiles:
    """Every file a run reads, by identity: what nothing of the run may write over."""

    def __init__(self, named: Iterable[tuple[str, str | os.PathLike | None]] = ()):
        self.by_identity: dict[Identity, ReadFile] = {}
        for what, path in named:
            self.add(what, path)

    def add(self, what: str, path: str | os.PathLike | None) -> None:
        if path is None:
            return
        key = identity(path)
        if key is not None:
            self.by_identity.setdefault(key, ReadFile(what, os.fspath(path)))

    def reader_of(self, path: str | os.PathLike) -> ReadFile | None:
        """The input that ``path`` is (through any link or spelling), or None."""
        key = identity(path)
        return None if key is None else self.by_identity.get(key)

    def check(self, what: str, path: str | os.PathLike, instead: str = "another output file") -> None:
        """ImageFileError when writing ``path`` (``what`` the run writes there) would replace an input."""
        read = self.reader_of(path)
        if read is not None:
            raise ImageFileError(
                f"{what}: {shown(path)} is the {read.what} file ({shown(read.path)}); writing there would "
                f"destroy it — choose {instead}"
            )

    def check_all(
        self, writes: Iterable[tuple[str, str | os.PathLike | None]], instead: str = "another output file"
    ) -> None:
        for what, path in writes:
            if path is not None:
                self.check(what, path, instead)

    def check_pattern(
        self, what: str, folder: str | os.PathLike, pattern: str, target: Callable[[str], str] | None = None
    ) -> None:
        """Check the files a run may write in ``folder`` under names like ``pattern`` (e.g. the step
        files ``out.step*.png``, however many steps it takes).

        Names are matched without case; ``target`` maps an existing name to the name the run would
        write for it (the same step number in the run's own spelling), so that on a file system
        that folds case the two are one file, and on one that does not they are two.
        """
        if not self.by_identity:
            return
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            if fnmatch.fnmatchcase(name.lower(), pattern.lower()):
                self.check(what, Path(folder) / (target(name) if target else name), "another output name")


__all__ = ["Identity", "ReadFile", "ReadFiles", "identity"]
