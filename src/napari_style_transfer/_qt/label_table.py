"""The mask table: one row per label value of the mask, each mapped to a style or "keep content"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from magicgui.widgets import ComboBox, Container, Label

from .._layers import label_values

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

    def rebuild(self, mask_layer: Any, style_names: Sequence[str]) -> None:
        """One row per label value of ``mask_layer`` (up to MAX_MASK_LABELS); hidden without a mask."""
        for widget in list(self):
            if isinstance(widget, ComboBox):
                self._kept[_label_of(widget)] = widget.value
        self.clear()
        self.visible = mask_layer is not None
        if mask_layer is None:
            return
        choices = [("keep content", KEEP_CONTENT)]
        choices += [(f"style {i + 1}: {name}", i) for i, name in enumerate(style_names)]
        valid = {value for _, value in choices}
        values = label_values(mask_layer)
        for value in values[:MAX_MASK_LABELS]:
            default = KEEP_CONTENT if value == 0 else 0
            chosen = self._kept.get(value, default)
            self.append(
                ComboBox(
                    name=f"label_{value}",
                    label=f"label {value}",
                    choices=choices,
                    value=chosen if chosen in valid else default,
                    tooltip=f"The style painted where the mask is {value} ('keep content': leave the content there)",
                )
            )
        if len(values) > MAX_MASK_LABELS:
            rest = len(values) - MAX_MASK_LABELS
            more = f"{rest} more label value(s) (from {values[MAX_MASK_LABELS]}) keep the content"
            self.append(Label(name="label_more", value=more))

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


def _label_of(widget: ComboBox) -> int:
    return int(widget.name.split("_")[1])
