"""The one error type of file reading and writing, and how paths and reasons are shown in it."""

from __future__ import annotations

import os
from pathlib import Path

from ..messages import first_line


class ImageFileError(OSError):
    """An image file could not be read or written; the message says which and why."""


def reason(exc: BaseException) -> str:
    """'Type: first line' of an exception's message (readers add multi-line hints)."""
    text = first_line(exc, "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def shown(path: str | os.PathLike) -> str:
    """A path as printable text on one line: bytes that are not UTF-8 and control characters
    (a newline in a file name) appear as escapes, so printing never fails nor breaks the line."""
    try:
        raw = os.fsencode(path)
    except (TypeError, ValueError):
        return repr(path)
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def as_path(path: str | os.PathLike) -> Path:
    return path if isinstance(path, Path) else Path(path)


__all__ = ["ImageFileError", "as_path", "reason", "shown"]
