"""How much a file may decode: checked from its header, before any pixel is decoded.

A small file can declare a huge image: a PNG or TIFF header saying 60000×60000 over a few
kilobytes of compressed zeros, a GIF or WebP whose hundreds of frames each cover a
2000×2000 canvas. Every reader reads the declared size first (width × height × frames ×
channels × bytes per sample) and refuses, in one sentence, a file that declares more
than :data:`MAX_PIXELS` pixels in all, or whose reading needs more memory than is free
(:func:`free_memory`: the host's available memory, and the room left under the
process's address-space limit). Pillow's own decompression-bomb check
(``Image.MAX_IMAGE_PIXELS``) still applies to every frame Pillow decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The most pixels (width × height × frames) one file may declare, all its frames together:
#: a guard against decompression bombs. Pillow refuses a single frame above about 179 million
#: pixels itself; this limit also covers TIFFs (tifffile has none) and whole animations.
#: Tests lower it by monkeypatching.
MAX_PIXELS = 2**30


class Refused(Exception):
    """The file is readable but will not be read; the message says why (and what to do), shown as it is."""


class TooLarge(Refused):
    """The file declares more pixels than :data:`MAX_PIXELS`, or more bytes than are free."""


def format_bytes(count: float) -> str:
    """'1.3 TiB', '12.0 GiB', '320 MiB', '12 KiB', '100 bytes'."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    if count >= 2**20:
        return f"{count / 2**20:.0f} MiB"
    return f"{count / 2**10:.0f} KiB" if count >= 2**10 else f"{int(count)} bytes"


def _count(pixels: int) -> str:
    """'1074 million px', '600 px'."""
    return f"{pixels / 1e6:.0f} million px" if pixels >= 10**6 else f"{pixels} px"


@dataclass(frozen=True)
class Declared:
    """What a file's header says it decodes to (the pixels are not read)."""

    width: int
    height: int
    frames: int = 1
    channels: int = 1
    itemsize: int = 1
    noun: str = "frames"

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames

    @property
    def nbytes(self) -> int:
        return self.pixels * self.channels * self.itemsize

    def __str__(self) -> str:
        frames = f" × {self.frames} {self.noun}" if self.frames != 1 else ""
        return f"{self.width}×{self.height} px{frames}, about {format_bytes(self.nbytes)} decoded"


def _room_under_rlimits() -> int | None:
    """Bytes the address-space (or data) limit still allows this process, or None without a limit."""
    try:
        import resource
    except ImportError:  # Windows: no such limits
        return None
    limits = []
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        soft, _hard = resource.getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    if not limits:
        return None
    import psutil

    return max(0, min(limits) - int(psutil.Process().memory_info().vms))


def free_memory() -> int:
    """Bytes a read may use now: the host's available memory, or less under an address-space limit."""
    import psutil

    free = int(psutil.virtual_memory().available)
    room = _room_under_rlimits()
    return free if room is None else min(free, room)


def check_declared(declared: Declared, need: int | None = None) -> None:
    """Raise :class:`TooLarge` unless the file's declared size is within :data:`MAX_PIXELS` and the free memory.

    ``need``: the bytes reading it will hold at its peak (the declared size when not given;
    less when it is reduced while read, more when it is converted after decoding).
    """
    if declared.pixels > MAX_PIXELS:
        raise TooLarge(
            f"it declares {declared}; the limit is {_count(MAX_PIXELS)} in all "
            "(a guard against decompression bombs)"
        )
    need = declared.nbytes if need is None else need
    free = free_memory()
    if need > free:
        needs = "" if need == declared.nbytes else f"; reading it needs about {format_bytes(need)}"
        raise TooLarge(f"it declares {declared}{needs}, but only {format_bytes(free)} of memory are free")


__all__ = ["MAX_PIXELS", "Declared", "Refused", "TooLarge", "check_declared", "format_bytes", "free_memory"]
