"""What both commands share: the one-line parser, the one error path, the progress bar, the signals.

Every failure a user can cause ends as one line on stderr, ``<prog>: error: <first line>``, and
exit code 2 (:func:`fail`); Ctrl-C and SIGTERM end as one line and 130 / 143
(:func:`interrupted`). Nothing here imports torch, so the CLI can answer before the engine loads.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from ..messages import first_line

PROG = "napari-style-transfer"


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), like the CLI's other errors."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(message: object, prog: str = PROG) -> int:
    """Print ``<prog>: error: <the message's first line>`` on stderr; the exit code (2)."""
    print(f"{prog}: error: {first_line(message, 'unknown error')}", file=sys.stderr)  # one line, always
    return 2


class Progress:
    """A progress bar on stderr (none with ``--quiet``) and lines printed above it, each notice once."""

    def __init__(self, quiet: bool, unit: str, desc: str):
        self.quiet, self.unit, self.desc = quiet, unit, desc
        self.bar: Any = None
        self.notices: list[str] = []

    def open(self, total: int, done: int = 0) -> None:
        if not self.quiet and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=self.unit, desc=self.desc, dynamic_ncols=True, file=sys.stderr)
            self.bar.update(done)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def notice(self, message: str | None) -> None:
        """``message`` once per run (the engine repeats its notices at every step)."""
        if message and message not in self.notices:
            self.notices.append(message)
            self.write(message)

    def show(self, done: int, total: int, **postfix: str) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.set_postfix(**postfix, refresh=False)
            self.bar.refresh()

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n >= self.bar.total:
                self.close()  # at once: the rate and the time stay the work's, not the shutdown's

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs (exit 143)."""


#: The interrupt a signal handler raised that no ``except`` has reported yet. Python prints and
#: drops an exception raised inside a finaliser (``__del__``: Dask's futures release themselves
#: there) or a callback, so a signal that lands there would be lost; the run's loops call
#: :func:`check_interrupted` to raise it again.
_PENDING: list[KeyboardInterrupt] = []


def raise_terminated(signum: int, frame: Any) -> None:
    """SIGTERM's handler: raise :class:`Terminated`, and remember it (see :func:`check_interrupted`)."""
    exc = Terminated()
    _PENDING[:] = [exc]
    raise exc


def raise_interrupt(signum: int, frame: Any) -> None:
    """SIGINT's handler: raise KeyboardInterrupt, as Python's own does, and remember it."""
    exc = KeyboardInterrupt()
    _PENDING[:] = [exc]
    raise exc


def check_interrupted() -> None:
    """Raise again a Ctrl-C or SIGTERM whose exception a finaliser or callback swallowed."""
    if _PENDING:
        raise _PENDING[0]


def ignore_further_signals() -> None:
    """While a run says why it ended, a second Ctrl-C or SIGTERM must not interrupt the saying."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread: the caller's handlers stay
            break


def interrupted(exc: KeyboardInterrupt, detail: str = "", prog: str = PROG) -> int:
    """Say why the run ended, once; 130 after Ctrl-C, 143 after SIGTERM. ``detail`` follows a colon."""
    ignore_further_signals()
    _PENDING.clear()  # reported: nothing left to raise again
    word = "terminated" if isinstance(exc, Terminated) else "interrupted"
    print(f"{prog}: {word}{': ' + detail if detail else ''}", file=sys.stderr)
    return 143 if isinstance(exc, Terminated) else 130


def one_line_warning(
    message: Any, category: type, filename: str, lineno: int, line: str | None = None
) -> str:
    return f"{PROG}: warning: {first_line(message, category.__name__)}\n"


__all__ = [
    "PROG",
    "OneLineParser",
    "Progress",
    "Terminated",
    "check_interrupted",
    "fail",
    "ignore_further_signals",
    "interrupted",
    "one_line_warning",
    "raise_interrupt",
    "raise_terminated",
]
