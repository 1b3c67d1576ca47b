"""The mask table: one row per label value of the mask, each mapped to a style or "keep content";
for a Shapes mask one row per shape ("shape 1 (rectangle)", label 1) after "outside the shapes".

Finding the label values reads the whole mask. A lazy (dask, zarr) mask is read in a
background thread, never on the GUI thread: the table says so meanwhile and fills itself
when the values are known (kept per mask, so a rebuild does not read it again).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label

from ..plugin.label_masks import label_values, lazy_label_values
from ..plugin.layers import full_data
from ..plugin.shapes import is_shapes_layer, shape_labels

logger = logging.getLogger(__name__)

#: The table lists at most this many label values (others keep the content).
MAX_MASK_LABELS = 10
#: The choice meaning "keep the content here".
KEEP_CONTENT = -1


class LabelTable(Container):
    """label value → style row (or keep content), remembered across rebuilds."""

    def __init__(self) -> None:
        super().__init__(labels=True, label="Label → style")
        self.margins = (0, 0, 0, 0)
        self._kept: dict[int, int] = {}
        self._lazy_values: dict[int, list[int]] = {}  # id of a lazy mask's data → its label values
        self._reading: set[int] = set()
        self._shown: tuple[Any, list[str]] | None = None

    def rebuild(
        self,
        mask_layer: Any,
        style_names: Sequence[str],
        removed_shapes: Sequence[int] = (),
        removed_style: int | None = None,
    ) -> None:
        """One row per label value of ``mask_layer`` (up to MAX_MASK_LABELS); hidden without a mask.

        ``removed_shapes``: the indices of the shapes of a Shapes mask just deleted; the shapes after
        them move up a label, and their choices move with them. ``removed_style``: the style row
        just removed: its labels keep the content, and the choices of the rows after it follow them."""
        for widget in list(self):
            if isinstance(widget, ComboBox):
                self._kept[_label_of(widget)] = widget.value
        if removed_shapes:
            self._kept = shifted_choices(self._kept, removed_shapes)
        if removed_style is not None:
            self._kept = {
                label: KEEP_CONTENT if style == removed_style else style - (style > removed_style)
                for label, style in self._kept.items()
            }
        self.clear()
        self.visible = mask_layer is not None
        if mask_layer is None:
            return
        choices = [("keep content", KEEP_CONTENT)]
        choices += [(f"style {i + 1}: {name}", i) for i, name in enumerate(style_names)]
        valid = {value for _, value in choices}
        self._shown = (mask_layer, list(style_names))
        names = self._names_of(mask_layer)
        if names is None:
            self.append(Label(name="label_reading", value="reading the mask's label values…"))
            return
        values = list(names)
        for value in values[:MAX_MASK_LABELS]:
            default = KEEP_CONTENT if value == 0 else 0
            chosen = self._kept.get(value, default)
            where = f"inside {names[value]}" if value else names[value]
            self.append(
                ComboBox(
                    name=f"label_{value}",
                    label=names[value],
                    choices=choices,
                    value=chosen if chosen in valid else default,
                    tooltip=f"The style painted {where} ('keep content': leave the content there)",
                )
            )
        if len(values) > MAX_MASK_LABELS:
            rest = len(values) - MAX_MASK_LABELS
            what = "shape(s)" if is_shapes_layer(mask_layer) else "label value(s)"
            more = f"{rest} more {what} (from {names[values[MAX_MASK_LABELS]]}) keep the content"
            self.append(Label(name="label_more", value=more))

    def _names_of(self, mask_layer: Any) -> dict[int, str] | None:
        """Each label value of the mask with its row's name; None while a lazy mask is read."""
        if is_shapes_layer(mask_layer):
            return shape_labels(mask_layer)
        values = self._values_of(mask_layer)
        return None if values is None else {value: f"label {value}" for value in values}

    def _values_of(self, mask_layer: Any) -> list[int] | None:
        """The mask's label values; None while a lazy mask is read in the background."""
        data = full_data(mask_layer)
        if isinstance(data, np.ndarray):
            return label_values(mask_layer)
        key = id(data)
        if key in self._lazy_values:
            return self._lazy_values[key]
        if key not in self._reading:
            self._reading.add(key)
            self._read_in_background(mask_layer, key)
        return None

    def _read_in_background(self, mask_layer: Any, key: int) -> None:
        from napari.qt.threading import create_worker

        def done(values: list[int]) -> None:
            self._reading.discard(key)
            self._lazy_values[key] = values
            if self._shown is not None and self._shown[0] is mask_layer:
                self.rebuild(*self._shown)

        def read() -> list[int]:
            # Failures end here, not in `errored` (PySide6 and napari's errored slot: see
            # worker.RunFailed): the run reads the mask again and names the problem.
            try:
                return lazy_label_values(mask_layer)
            except Exception:  # noqa: BLE001
                logger.debug("reading the labels of %r failed", mask_layer, exc_info=True)
                return []

        worker = create_worker(read, _start_thread=False)
        worker.returned.connect(done)
        worker.start()

    def set_style(self, label: int, style: int | None) -> None:
        """Choose the style (0-based style row, None: keep content) for one label value."""
        self[f"label_{int(label)}"].value = KEEP_CONTENT if style is None else int(style)

    @property
    def label_styles(self) -> dict[int, int]:
        """label value → style index (labels keeping the content left out)."""
        return {
            _label_of(widget): int(widget.value)
            for widget in self
            if isinstance(widget, ComboBox) and widget.value != KEEP_CONTENT
        }


def shifted_choices(kept: dict[int, int], removed_shapes: Sequence[int]) -> dict[int, int]:
    """A Shapes mask's choices (label i + 1 is shape i) after the shapes ``removed_shapes`` were
    deleted: theirs dropped, each later shape's moved down by the number deleted before it."""
    gone = sorted({int(i) for i in removed_shapes})
    moved = {0: kept[0]} if 0 in kept else {}
    for label, choice in kept.items():
        shape = label - 1
        if label > 0 and shape not in gone:
            moved[label - sum(1 for i in gone if i < shape)] = choice
    return moved


def _label_of(widget: ComboBox) -> int:
    return int(widget.name.split("_")[1])
