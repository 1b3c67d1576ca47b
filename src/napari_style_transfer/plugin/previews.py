"""Saving a run's previews to a folder, from the widget (the CLI's ``--save-every``, for napari).

No Qt here. The folder is checked on the GUI thread when Run is pressed; the files are
written in the worker thread, each atomically (``files.write_image``), named like the CLI's
intermediate files: ``<result name> <start time>.step00010.png``. uint8 and bool results
are saved as PNG, other dtypes (uint16, float…) as TIFF, which keeps their values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import StyleTransferError
from ..files.names import safe_stem, step_name
from .faults import UserError


def check_folder(folder: str | os.PathLike) -> Path:
    """The folder as a Path when it exists and is writable; UserError otherwise."""
    if not str(folder).strip():
        raise UserError("Save previews: choose the folder to write them to.")
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UserError(f"The preview folder '{folder}' does not exist; choose an existing folder.")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"The preview folder '{folder}' is not writable; choose another folder.")
    return path


@dataclass
class PreviewSaver:
    """Writes every ``every``-th preview of a run (and its final image) into ``folder``."""

    folder: Path
    every: int
    stem: str
    seen: int = 0
    written: list[Path] = field(default_factory=list)

    def path(self, step: int, dtype: Any) -> Path:
        suffix = ".png" if str(dtype) in ("uint8", "bool") else ".tif"
        return self.folder / step_name(self.stem, step, suffix)

    def offer(self, event: Any) -> Path | None:
        """Save the event's image if it is an Nth preview or the final image; the path written, or None."""
        image = getattr(event, "preview", None)
        if image is None:
            return None
        if not event.done:
            self.seen += 1
            if self.seen % self.every:
                return None
        from ..files import ImageFileError, write_image

        target = self.path(int(event.step), image.dtype)
        try:
            write_image(target, image)
        except ImageFileError as exc:
            raise StyleTransferError(f"saving the previews stopped: {exc}") from None
        self.written.append(target)
        return target


def make_saver(folder: str | os.PathLike | None, every: int, name: str) -> PreviewSaver | None:
    """A checked :class:`PreviewSaver` for a run named ``name`` (``folder`` None: nothing saved)."""
    if folder is None:
        return None
    if int(every) < 1:
        raise UserError("Save every Nth preview: N must be 1 or more.")
    return PreviewSaver(check_folder(folder), int(every), safe_stem(name))


__all__ = ["PreviewSaver", "check_folder", "make_saver"]
