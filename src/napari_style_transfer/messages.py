"""One-line messages: what the CLI, the widget, the batch report and the engine's errors show.

Kept free of heavy imports (no torch), so the command line can print an error before the
engine has loaded.
"""

from __future__ import annotations


def first_line(message: object, default: str | None = None) -> str:
    """The first line of a message, stripped: errors are shown on one line, never as a wall of text.

    An empty message gives ``default``; for an exception without one, its type's name.
    """
    lines = str(message).strip().splitlines()
    if lines:
        return lines[0].strip()
    if default is None and isinstance(message, BaseException):
        return type(message).__name__
    return default or ""


__all__ = ["first_line"]
