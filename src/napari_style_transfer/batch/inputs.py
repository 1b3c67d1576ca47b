"""A batch's INPUT words → image paths: files, folders (their images) and glob patterns.

Folders and patterns take every format the single-image command reads (:data:`IMAGE_SUFFIXES`:
PNG, JPEG, TIFF, WebP, BMP, GIF, PNM…). A recursive pattern (``**``) follows symbolic links to
folders but visits each real folder once, so a link that points back up the tree ends the walk
instead of looping. Only regular files are taken: a FIFO, a socket or a device in a folder
is passed over, never opened.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from ..files.guard import identity
from .items import BatchError

#: The image formats a folder or a pattern contributes, when this Pillow reads them (TIFF always).
CANDIDATE_SUFFIXES = (
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".webp", ".bmp", ".dib",
    ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".qoi", ".avif", ".jp2", ".j2k",
)  # fmt: skip


@lru_cache(maxsize=1)
def image_suffixes() -> tuple[str, ...]:
    """:data:`CANDIDATE_SUFFIXES` that this installation can read (Pillow's plugins vary)."""
    from PIL import Image

    Image.init()
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return tuple(s for s in CANDIDATE_SUFFIXES if s in readable or s in (".tif", ".tiff"))


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in image_suffixes()


def _regular(path: Path) -> bool:
    try:
        return path.is_file()  # follows links; False for FIFOs, sockets, devices, loops, broken links
    except OSError:
        return False


def images_in(folder: Path) -> list[Path]:
    """The folder's image files, sorted (hidden names and special files left out)."""
    return sorted(
        p for p in folder.iterdir() if not p.name.startswith(".") and is_image_name(p) and _regular(p)
    )


def _segment_regex(segment: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(segment))


def _walk_once(root: Path) -> Iterator[Path]:
    """Every file under ``root``, links to folders followed, each real folder visited once."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield from (Path(folder) / name for name in files if not name.startswith("."))


def _matches(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Whether path segments match pattern segments, ``**`` standing for any number of folders."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and bool(_segment_regex(pattern[0]).fullmatch(parts[0]))
        and _matches(parts[1:], pattern[1:])
    )


def safe_glob(pattern: str) -> list[Path]:
    """``glob.glob(pattern, recursive=True)`` that ends on folder-link loops (see the module's docstring)."""
    if "**" not in pattern:
        return [Path(p) for p in glob.glob(pattern)]
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    rest = parts[fixed:]
    found = []
    for path in _walk_once(root):
        if _matches(path.relative_to(root).parts, rest):
            found.append(path if fixed else Path(os.path.relpath(path)))
    return found


def same_file_key(path: Path) -> object:
    """What makes two inputs one file: its identity, or for what cannot be looked at (a link loop,
    a broken link) its absolute spelling. Never raises (``Path.resolve`` does on a loop)."""
    return identity(path) or os.path.abspath(path)


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns → the list of image paths, in order.

    A named file is kept even when it is not readable (its item fails with a message); a
    folder without images or a pattern matching nothing stops the batch (BatchError).
    """
    paths: list[Path] = []
    for entry in inputs:
        text = str(entry)
        path = Path(text).expanduser()
        if path.is_dir():
            found = images_in(path)
            if not found:
                names = ", ".join(s[1:] for s in image_suffixes())
                raise BatchError(f"INPUT: folder {path} holds no images ({names})")
        elif not path.exists() and glob.has_magic(text):
            found = sorted(p for p in safe_glob(str(path)) if is_image_name(p) and _regular(p))
            if not found:
                raise BatchError(f"INPUT: pattern {text!r} matches no image")
        else:
            found = [path]
        paths.extend(found)
    seen: set[object] = set()
    unique = []
    for path in paths:
        key = same_file_key(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    if not unique:
        raise BatchError("INPUT: no images given")
    return unique


__all__ = [
    "CANDIDATE_SUFFIXES",
    "expand_inputs",
    "image_suffixes",
    "images_in",
    "safe_glob",
    "same_file_key",
]
