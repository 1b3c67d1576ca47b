"""A hint under the settings: a grey content styled after a colour image can come back in colour.

With the default ``result_colour='content'`` a single-channel micrograph styled after a
stained (colour) image comes back grey, which is rarely what a user making training data
"look like another stain" wants. When the content is single-channel, a style is in colour
and the result would be grey, this row says so and offers one click to switch. It looks
at layer kinds only (``rgb``), never at pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from magicgui.widgets import Container, Label, PushButton

from .form import SettingsForm, value_widgets

HINT = "The content is grey and a style is in colour: the result will be grey."


def is_colour_style(style: Any) -> bool:
    """An RGB(A) Image layer, or a file or gallery picture (read later; style files are usually colour)."""
    rgb = getattr(style, "rgb", None)
    return True if rgb is None else bool(rgb)


def suggests_colour(content: Any, styles: Iterable[Any], result_colour: str) -> bool:
    """Whether to offer ``result_colour='style'``: a single-channel content, a colour style, a grey result."""
    if content is None or result_colour != "content" or getattr(content, "rgb", True):
        return False
    return any(style is not None and is_colour_style(style) for style in styles)


class ColourHint:
    """The row: a sentence and a button that sets "Result colours" to the style's."""

    def __init__(self, form: SettingsForm):
        self.form = form
        self.text = Label(value=HINT)
        self.text.native.setWordWrap(True)
        self.button = PushButton(
            text="Use the style's colours", tooltip="Set 'Result colours' to the style's (an RGB result)"
        )
        self.button.changed.connect(self.use_style_colours)
        self.row = Container(widgets=[self.text, self.button], labels=False, label="")
        self.row.margins = (0, 0, 0, 0)
        self.row.visible = False
        #: Whether the hint is offered now (the row may still be hidden with its dock).
        self.shown = False
        self._last: tuple[Any, list[Any]] = (None, [])
        control = form.controls["result_colour"]
        for widget in value_widgets(control.row):
            widget.changed.connect(lambda *_: self.update(*self._last))

    def update(self, content: Any, styles: Iterable[Any]) -> None:
        """Show the row when :func:`suggests_colour` holds for these layers and the form's choice."""
        self._last = (content, list(styles))
        self.shown = suggests_colour(content, self._last[1], self.form.controls["result_colour"].get())
        self.row.visible = self.shown

    def use_style_colours(self, *_: Any) -> None:
        self.form.controls["result_colour"].set("style")
        self.update(*self._last)


__all__ = ["ColourHint", "is_colour_style", "suggests_colour"]
