"""The console entry point: the signals, then the one command or ``batch``.

SIGTERM ends a run like Ctrl-C (exit 143 against 130), warnings take one line, and nothing
half-written is left (every file is written atomically).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from .common import check_interrupted, interrupted, one_line_warning, raise_interrupt, raise_terminated


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit code (errors print one line on stderr).

    Ctrl-C (KeyboardInterrupt) and SIGTERM (see :func:`main`) end the run with one line and
    130 / 143.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] == "batch":
            from . import batch

            code = batch.run(argv[1:])
        else:
            from . import single

            code = single.run(argv)
        check_interrupted()  # a signal whose exception a finaliser swallowed still ends the run
        return code
    except KeyboardInterrupt as exc:
        return interrupted(exc)


def main(argv: Sequence[str] | None = None) -> None:
    """The console entry point: SIGTERM ends the run like Ctrl-C (exit 143); warnings take one line.

    Ctrl-C (SIGINT) raises KeyboardInterrupt even where the shell started the process with
    SIGINT ignored (``cmd &``), so ``kill -INT`` always stops a run cleanly.
    """
    try:
        signal.signal(signal.SIGTERM, raise_terminated)
        signal.signal(signal.SIGINT, raise_interrupt)  # also when started in the background
        import warnings

        warnings.formatwarning = one_line_warning
        code = run(argv)
    except KeyboardInterrupt as exc:  # a signal between the handlers and run()
        code = interrupted(exc)
    _forget_caught_interrupts()
    sys.exit(code)


def _forget_caught_interrupts() -> None:
    """Make ``python -m napari_style_transfer`` exit with our code, not by SIGINT.

    CPython marks a Ctrl-C as unhandled whenever a KeyboardInterrupt leaves code run by ``exec``
    or ``eval`` of a string (dataclass and namedtuple creation, often during an import), even when
    an outer ``except`` catches it. Under ``python -m`` the process then ends by SIGINT (-2)
    instead of 130; only the next ``exec`` of a string clears that mark. This is that ``exec``.
    """
    exec("pass")


__all__ = ["main", "run"]
