"""The style rows: one style each (an image layer, an image file or a gallery picture) with its
blend weight, a "…" menu to pick a file or a gallery style, and a remove button; below it, while
the viewer has Shapes layers, an optional region: a Shapes layer whose shapes select the part
of that style image its statistics come from (``plugin/shapes.py``).

A file or gallery picture picked in any row joins every row's list (after the layers), shown
as "name (file)" / "name (gallery)". Nothing is read here: the pixels are read in the run's
worker thread (``plugin/sources.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton
from qtpy.QtWidgets import QFileDialog, QMenu

from ..plugin.sources import GalleryChoice, StyleFile, StyleSource, gallery_choices, is_source

#: What the file dialog offers (any format the CLI reads; "All files" too).
FILE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.gif *.webp);;All files (*)"


class StyleRow(Container):
    """One style: layer or source, blend weight, the "…" (file / gallery) menu, remove button;
    below them the style's region (a Shapes layer, or none: the whole image)."""

    def __init__(
        self,
        choices: Callable[..., list],
        on_remove: Callable[[StyleRow], None],
        on_source: Callable[[StyleRow, StyleSource], None],
        region_choices: Callable[..., list] | None = None,
    ):
        self.layer = ComboBox(
            choices=choices,
            tooltip="The image whose look (texture, colours, strokes) to copy: a layer, a file or a gallery style",
        )
        self.weight = FloatSpinBox(
            value=1.0,
            min=0.0,
            max=100.0,
            step=0.1,
            tooltip="Blend weight of this style (relative to the other styles)",
        )
        self.pick_button = PushButton(text="…", tooltip="Use an image file or a style of the gallery")
        self.remove_button = PushButton(text="✕", tooltip="Remove this style")
        self.weight.native.setMaximumWidth(70)
        self.pick_button.native.setMaximumWidth(28)
        self.pick_button.native.setStyleSheet("QPushButton::menu-indicator { width: 0px; image: none; }")
        self.remove_button.native.setMaximumWidth(28)
        self._on_source = on_source
        self.menu = self._make_menu()
        self.pick_button.native.setMenu(self.menu)
        self.remove_button.changed.connect(lambda: on_remove(self))
        line = Container(
            widgets=[self.layer, self.weight, self.pick_button, self.remove_button],
            layout="horizontal",
            labels=False,
        )
        line.margins = (0, 0, 0, 0)
        self.region = ComboBox(
            choices=region_choices or (lambda *_: []),
            nullable=True,
            value=None,
            tooltip="Optional Shapes layer: its shapes (rectangles, polygons, ellipses) over this style "
            "image select the part whose look is copied (none: the whole image)",
        )
        self.region_row = Container(
            widgets=[Label(value="region:"), self.region], layout="horizontal", labels=False
        )
        self.region_row.margins = (0, 0, 0, 0)
        super().__init__(widgets=[line, self.region_row], layout="vertical", labels=False)
        self.margins = (0, 0, 0, 0)

    def _make_menu(self) -> QMenu:
        menu = QMenu(self.pick_button.native)
        menu.addAction("Image file…", self.choose_file)
        gallery = menu.addMenu("Gallery")
        for choice in gallery_choices():
            gallery.addAction(choice.name, lambda key=choice.key: self.use_gallery(key))
        return menu

    def choose_file(self) -> None:
        """Ask for an image file (only its name is taken here; it is read when a run starts)."""
        path, _ = QFileDialog.getOpenFileName(self.native, "Style image", "", FILE_FILTER)
        if path:
            self.use_file(path)

    def use_file(self, path: str | Path) -> StyleFile:
        """Use the image file ``path`` as this row's style."""
        source = StyleFile(Path(path).expanduser())
        self._on_source(self, source)
        return source

    def use_gallery(self, key: str) -> GalleryChoice:
        """Use the gallery style ``key`` (see ``samples.GALLERY``) as this row's style."""
        source = GalleryChoice(key)
        self._on_source(self, source)
        return source


class StyleRows(Container):
    """The style rows (at least one). ``on_change`` is called when a row's style, or the rows, change."""

    def __init__(
        self,
        choices: Callable[..., list],
        on_change: Callable[[], None],
        region_choices: Callable[..., list] | None = None,
    ):
        super().__init__(labels=False, layout="vertical")
        self.margins = (0, 0, 0, 0)
        self._layer_choices = choices
        self._region_choices = region_choices
        self._on_change = on_change
        #: Files and gallery styles picked so far (every row lists them after the layers).
        self.sources: list[StyleSource] = []
        self._removed: int | None = None  # the row being removed, while the table rebuilds

    def _choices(self, *args: Any) -> list[tuple[str, Any]]:
        return [*self._layer_choices(*args), *((source.label, source) for source in self.sources)]

    def add(self, layer: Any = None, weight: float = 1.0, pick: Callable[[], Any] | None = None) -> StyleRow:
        """Append a row showing ``layer`` (or a source); None: ``pick()`` (asked once the row is in),
        else the last row's style."""
        row = StyleRow(self._choices, self.remove, self._use_source, self._region_choices)
        self.append(row)
        row.reset_choices()
        self.show_regions()
        if layer is None and pick is not None:
            layer = pick()
        if layer is None and len(self) > 1:
            layer = self[-2].layer.value  # every image is in use: repeat the last style
        if layer is not None:
            if is_source(layer) and layer not in self.sources:
                self.sources.append(layer)  # a file or gallery style given by a script
                row.reset_choices()
            row.layer.value = layer
        row.weight.value = weight
        row.layer.changed.connect(lambda *_: (self.show_regions(), self._on_change()))
        self._update_rows()
        self._on_change()
        return row

    def _use_source(self, row: StyleRow, source: StyleSource) -> None:
        if source not in self.sources:
            self.sources.append(source)
        for each in self:
            each.reset_choices()
        row.layer.value = next(s for s in self.sources if s == source)

    def remove(self, row: StyleRow) -> None:
        """Remove a row (the last one stays); the mask table hears which (:meth:`take_removed`)."""
        if len(self) > 1:
            self._removed = list(self).index(row)
            super().remove(row)
            self._update_rows()
            self._on_change()
            self._removed = None

    def take_removed(self) -> int | None:
        """The index of the row just removed (None: none), for the mask table to move its choices."""
        return self._removed

    def _update_rows(self) -> None:
        several = len(self) > 1
        for row in self:
            row.weight.visible = several
            row.remove_button.visible = several

    def show_regions(self) -> None:
        """Show the region choice while the viewer has a Shapes layer, on rows whose style is a layer
        (a file or gallery style cannot take one), and on any row that uses one (to clear it)."""
        shapes = bool(self._region_choices and self._region_choices())
        for row in self:
            layer_style = not is_source(row.layer.value)
            row.region_row.visible = (shapes and layer_style) or row.region.value is not None

    @property
    def regions(self) -> list[Any]:
        """Per row, the Shapes layer of its style region (None: the whole style image)."""
        return [row.region.value for row in self]

    @property
    def styles(self) -> list[tuple[Any, float]]:
        """The chosen (style layer or source, blend weight) pairs."""
        return [(row.layer.value, float(row.weight.value)) for row in self]

    def names(self) -> list[str]:
        """The rows' style names ('?' for a row without a style)."""
        return [row.layer.value.name if row.layer.value is not None else "?" for row in self]
