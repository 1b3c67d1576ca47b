"""Output names, made in one place: results, step files, a stack's chunk parts.

The CLI's ``--save-every`` files and the widget's saved previews share :func:`step_name`; a
batch names each result after its input's stem (:func:`result_name`) with the suffix
:func:`output_suffix` chooses, and keeps a stack's finished chunks under :func:`parts_folder`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from .paths import WRITABLE_SUFFIXES

#: Where a batch keeps a stack's finished chunks until the stack is assembled (inside OUT_DIR).
PARTS_FOLDER = ".nst-parts"


def safe_stem(name: str, when: float | None = None) -> str:
    """'<name> <yyyymmdd-hhmmss>' with characters that are unsafe in file names replaced by '_'."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return re.sub(r"[^\w\-. ()\[\],+]", "_", f"{name} {stamp}").strip()


def step_name(stem: str, step: int, suffix: str) -> str:
    """The file name of step ``step``'s image: '<stem>.step00010.png' (the widget's saved previews
    and the CLI's ``--save-every`` files alike)."""
    return f"{stem}.step{step:05d}{suffix}"


def step_path(output: str | Path, step: int) -> Path:
    """The CLI's ``--save-every`` file of ``step`` next to ``output`` ('out.step00010.png')."""
    output = Path(output)
    return output.with_name(step_name(output.stem, step, output.suffix))


def output_suffix(source: Path | None, ext: str | None, stack: bool = False) -> str:
    """A batch result's suffix: ``ext`` if given, else the input's when writable (else .png;
    arrays .tif); stacks: .zarr when ``ext`` is zarr, else .tif. ValueError for a bad ``ext``."""
    suffix = (ext.lower() if ext.startswith(".") else f".{ext.lower()}") if ext else None
    if stack:
        return ".zarr" if suffix == ".zarr" else ".tif"
    if suffix == ".zarr":
        raise ValueError("--ext zarr: only applies to stacks (--stack); a zarr store holds a stack's slices")
    if suffix:
        if suffix not in WRITABLE_SUFFIXES:
            raise ValueError(
                f"--ext: must be one of {', '.join(s[1:] for s in WRITABLE_SUFFIXES)}, got {ext!r}"
            )
        return suffix
    if source is None:
        return ".tif"
    suffix = source.suffix.lower()
    return suffix if suffix in WRITABLE_SUFFIXES else ".png"


def result_name(stem: str, suffix: str) -> str:
    """A batch result's file name: its input's stem and the output suffix."""
    return f"{stem}{suffix}"


def parts_folder(out_dir: str | Path, stem: str, settings_id: str) -> Path:
    """Where a stack's chunk results wait; the settings id in the name keeps other settings' parts apart."""
    return Path(out_dir) / PARTS_FOLDER / f"{stem}-{settings_id}"


def part_path(folder: Path, start: int, stop: int, zarr: bool = False) -> Path:
    """A chunk's result (.npy), or for a zarr stack the marker saying its slices are in the store."""
    return folder / f"slices-{start:06d}-{stop:06d}.{'done' if zarr else 'npy'}"


__all__ = [
    "PARTS_FOLDER",
    "output_suffix",
    "part_path",
    "parts_folder",
    "result_name",
    "safe_stem",
    "step_name",
    "step_path",
]
