"""The style rows: one image layer and its blend weight each, with a remove button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton


class StyleRow(Container):
    """One style image: layer, blend weight, remove button."""

    def __init__(self, choices: Callable[..., list], on_remove: Callable[[StyleRow], None]):
        self.layer = ComboBox(
            choices=choices, tooltip="An image layer whose look (texture, colours, strokes) to copy"
        )
        self.weight = FloatSpinBox(
            value=1.0,
            min=0.0,
            max=100.0,
            step=0.1,
            tooltip="Blend weight of this style (relative to the other styles)",
        )
        self.remove_button = PushButton(text="✕", tooltip="Remove this style")
        self.weight.native.setMaximumWidth(70)
        self.remove_button.native.setMaximumWidth(28)
        self.remove_button.changed.connect(lambda: on_remove(self))
        super().__init__(
            widgets=[self.layer, self.weight, self.remove_button], layout="horizontal", labels=False
        )
        self.margins = (0, 0, 0, 0)


class StyleRows(Container):
    """The style rows (at least one). ``on_change`` is called when a row's layer, or the rows, change."""

    def __init__(self, choices: Callable[..., list], on_change: Callable[[], None]):
        super().__init__(labels=False, layout="vertical")
        self.margins = (0, 0, 0, 0)
        self._choices = choices
        self._on_change = on_change

    def add(self, layer: Any = None, weight: float = 1.0, pick: Callable[[], Any] | None = None) -> StyleRow:
        """Append a row showing ``layer``; None: ``pick()`` (asked once the row is in),
        else the last row's layer."""
        row = StyleRow(self._choices, self.remove)
        self.append(row)
        row.reset_choices()
        if layer is None and pick is not None:
            layer = pick()
        if layer is None and len(self) > 1:
            layer = self[-2].layer.value  # every image is in use: repeat the last style
        if layer is not None:
            row.layer.value = layer
        row.weight.value = weight
        row.layer.changed.connect(lambda *_: self._on_change())
        self._update_rows()
        self._on_change()
        return row

    def remove(self, row: StyleRow) -> None:
        """Remove a row (the last one stays)."""
        if len(self) > 1:
            super().remove(row)
            self._update_rows()
            self._on_change()

    def _update_rows(self) -> None:
        several = len(self) > 1
        for row in self:
            row.weight.visible = several
            row.remove_button.visible = several

    @property
    def styles(self) -> list[tuple[Any, float]]:
        """The chosen (style layer, blend weight) pairs."""
        return [(row.layer.value, float(row.weight.value)) for row in self]

    def names(self) -> list[str]:
        """The rows' layer names ('?' for a row without a layer)."""
        return [row.layer.value.name if row.layer.value is not None else "?" for row in self]
