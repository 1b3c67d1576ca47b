"""Styles that are not layers: an image file, or a picture of the style gallery.

No Qt here. A style row holds either an Image layer or one of these; like a layer, a source
is only named on the GUI thread (:meth:`StyleFile.check` looks at the file's metadata, not
its pixels) and read in the worker thread (:class:`SourceRead`), reduced on reading to the
size the run needs. :func:`describe_style` and :func:`resolve_style` turn a row's choice into
what a result layer records and back (Continue).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import ImageError
from ..samples import GALLERY, gallery_image
from .faults import UserError


@dataclass(frozen=True)
class StyleFile:
    """An image file chosen as a style (any format the CLI reads: PNG, JPEG, TIFF…)."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.path.name} (file)"

    def check(self) -> None:
        """Raise UserError unless the file is a readable, non-empty regular file (no pixels read)."""
        from ..files import ImageFileError, check_input_file

        try:
            check_input_file(self.path)
        except ImageFileError as exc:
            raise UserError(f"Style file: {exc}.") from None

    def read(self, long_side: int | None) -> np.ndarray:
        """The pixels, reduced on reading for a style of ``long_side`` px (worker thread)."""
        from ..files import ImageFileError, read_image

        try:
            return read_image(self.path, long_side)
        except ImageFileError as exc:
            raise ImageError(f"style file: {exc}") from None


@dataclass(frozen=True)
class GalleryChoice:
    """A picture of the style gallery (:data:`~napari_style_transfer.samples.GALLERY`)."""

    key: str

    @property
    def name(self) -> str:
        return GALLERY[self.key].name

    @property
    def label(self) -> str:
        return f"{self.name} (gallery)"

    def check(self) -> None:
        if self.key not in GALLERY:
            raise UserError(f"There is no gallery style '{self.key}'; choose one of {', '.join(GALLERY)}.")

    def read(self, long_side: int | None) -> np.ndarray:
        return gallery_image(self.key)


StyleSource = StyleFile | GalleryChoice


def is_source(obj: Any) -> bool:
    """Whether a style row's choice is a file or a gallery picture (not a layer)."""
    return isinstance(obj, (StyleFile, GalleryChoice))


@dataclass(frozen=True)
class SourceRead:
    """A source to read in the worker, at ``long_side`` (None: as it is)."""

    source: StyleSource
    long_side: int | None = None

    def read(self) -> np.ndarray:
        return self.source.read(self.long_side)


def gallery_choices() -> list[GalleryChoice]:
    """Every gallery picture, in the gallery's order."""
    return [GalleryChoice(key) for key in GALLERY]


def describe_style(choice: Any) -> dict[str, str]:
    """What a result records of a style: {'layer': name}, {'file': path} or {'gallery': key}."""
    if isinstance(choice, StyleFile):
        return {"file": str(choice.path)}
    if isinstance(choice, GalleryChoice):
        return {"gallery": choice.key}
    return {"layer": str(choice.name)}


def resolve_style(record: Any, layers: Iterable[Any]) -> Any:
    """The layer, file or gallery picture a recorded style names; UserError when it is gone."""
    if isinstance(record, dict) and "file" in record:
        source: StyleSource = StyleFile(Path(record["file"]))
        source.check()
        return source
    if isinstance(record, dict) and "gallery" in record:
        source = GalleryChoice(str(record["gallery"]))
        source.check()
        return source
    name = record.get("layer") if isinstance(record, dict) else record
    for layer in layers:
        if layer.name == name:
            return layer
    raise UserError(f"The style layer '{name}' of this result is gone; open it again to continue.")


__all__ = [
    "GalleryChoice",
    "SourceRead",
    "StyleFile",
    "StyleSource",
    "describe_style",
    "gallery_choices",
    "is_source",
    "resolve_style",
]
