"""What goes wrong in the widget, said in one sentence, and the memory a failed run held, given back.

No Qt and no napari here. :class:`UserError` is a bad choice of layers or values (shown as
a warning before a run starts); :func:`error_message` turns any exception into the one line
a notification shows; :func:`run_failure` turns a run's exception into what the user should
read, after dropping the tensors its traceback held.
"""

from __future__ import annotations

import gc
import traceback
from typing import Any

from ..arrays import MIN_SIDE
from ..engine import (
    ConfigError,
    ImageError,
    MemoryLimitError,
    StyleTransferError,
    WeightsError,
    memory,
    select_device,
)
from ..messages import first_line


class UserError(ValueError):
    """A problem with the user's choices; ``str(exc)`` is one sentence to show as a notification."""

    def __init__(self, message: str, severity: str = "warning"):
        super().__init__(message)
        self.severity = severity


def error_message(exc: BaseException) -> str:
    """One sentence, on one line, for a notification (never a traceback)."""
    if isinstance(exc, UserError):
        return first_line(exc)  # already the sentence to show
    text = first_line(exc).rstrip(".")
    if isinstance(exc, MemoryLimitError):
        if exc.largest_size < MIN_SIDE:
            text = text.split("; the largest size that fits", 1)[0]
            return (
                f"Not enough memory — {text}; not even the smallest size fits: "
                "free some memory or use another device."
            )
        what = "use tiles of" if "largest tile" in text else "set the output size to"
        return f"Not enough memory — {text}: {what} {exc.largest_size} px or less."
    if is_out_of_memory(exc):
        return (
            "Out of memory: lower the output size, the style scale or the number of style images, "
            "or use another device."
        )
    if isinstance(exc, ConfigError):
        text = with_labels(text)
    for kind, start in _KIND_STARTS:
        if isinstance(exc, kind):
            return f"{start} — {text}."
    return f"Style transfer failed unexpectedly ({type(exc).__name__}: {text})."


def with_labels(text: str) -> str:
    """A config message for the widget: each setting it names by its field name also by the label
    the widget shows ("result_colour" → "Result colours (result_colour)")."""
    import re

    from ..engine.options import option_specs

    labels = {spec.name: re.sub(r"\s*\(.*\)$", "", spec.label) for spec in option_specs() if spec.label}
    if not labels:
        return text
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(map(re.escape, sorted(labels, key=len, reverse=True))) + r")(?![\w-])"
    )
    return pattern.sub(lambda match: f"{labels[match.group(1)]} ({match.group(1)})", text)


#: Exception kinds and how their sentence starts (the first match wins).
_KIND_STARTS: tuple[tuple[type[BaseException], str], ...] = (
    (ConfigError, "Invalid setting"),
    (ImageError, "Cannot use this image"),
    (WeightsError, "Could not load the VGG-19 weights"),
    (StyleTransferError, "Style transfer failed"),
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for MemoryError, torch's OutOfMemoryError and allocator RuntimeErrors."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    return False


def run_device(request: Any) -> Any:
    """The torch device a :class:`RunRequest` runs on (None if it cannot be resolved)."""
    try:
        return select_device(request.config.device)
    except Exception:  # noqa: BLE001 - callers only use it for clean-up and advice
        return None


def release_memory(device: Any = None, *, collect: bool | None = None) -> None:
    """Free what a finished or failed run held: cyclic garbage, and the device allocator's cache.

    ``collect`` runs the garbage collector (a third of a second with napari loaded); by
    default only on a GPU (CUDA, MPS), where the cache can only give back what was collected.
    On the CPU reference counting frees a run's tensors as soon as it ends.
    """
    import torch

    from ..engine.memory import release_cached_memory

    kind = None if device is None else getattr(device, "type", str(device)).split(":")[0]
    if kind == "cpu" or (kind is None and not torch.cuda.is_available()):
        if collect:
            gc.collect()
        return
    release_cached_memory(device, collect=collect is not False)


def forget_frames(exc: BaseException) -> None:
    """Drop an exception's tracebacks, and the tensors their frames hold.

    Clearing the frames' locals is not enough: a frame also keeps its function alive, and
    the optimiser's closure holds the image being optimised. Log a traceback before this.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
            exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


def run_failure(exc: BaseException, request: Any) -> BaseException:
    """What a run's exception becomes for the user, with the memory it held released.

    ``request`` is the run's :class:`RunRequest`. The exception loses its traceback (which
    holds the run's tensors); log it first. Running out of memory (CUDA's OutOfMemoryError,
    or MemoryError) becomes a :class:`MemoryLimitError` naming the output size and a size
    that should fit, estimated from the memory free after the failed run's tensors are gone.
    Other exceptions are returned as they are (their frames' tensors dropped).
    """
    forget_frames(exc)
    device = run_device(request)
    release_memory(device, collect=True)
    if not is_out_of_memory(exc):
        return exc
    h, w = request.sizes[-1] if request.sizes else (0, 0)
    where = str(device) if device is not None else "the device"
    largest = largest_size_now(request.config, request.sizes[-1] if request.sizes else None, device)
    return MemoryLimitError(
        f"the run at {w}×{h} px ran out of memory on {where}; the largest size that fits is about {largest} px",
        largest,
    )


def largest_size_now(config: Any, failed_hw: tuple[int, int] | None, device: Any) -> int:
    """A size that should fit now, from the engine's memory model (``engine.memory``), below the one that failed."""
    below = int(max(failed_hw) * 0.75) // 16 * 16 if failed_hw else 0
    if device is None or failed_hw is None:
        return below
    try:
        return memory.largest_size_now(failed_hw, config, device)
    except Exception:  # noqa: BLE001 - advice only
        return below
