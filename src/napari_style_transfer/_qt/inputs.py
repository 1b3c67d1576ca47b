"""The rows that pick a run's inputs: the content (an image layer, or the canvas: the visible image
layers as napari draws them), the stack mode, the style rows (each with an optional region from a
Shapes layer), the mask (a Labels or a Shapes layer) and its label → style table.

A view: it holds the choices; :meth:`InputsView.content` turns the canvas entry into the layers
it takes when Run is pressed (``plugin/composite.py``), and nothing is read here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, PushButton

from ..plugin.composite import CANVAS, CANVAS_LABEL, canvas_layers, make_canvas
from ..plugin.layers import is_nd, is_result_layer
from ..plugin.run_request import STACK_MODES
from ..plugin.shapes import is_shapes_layer
from .label_table import LabelTable
from .results import unwrap
from .style_rows import StyleRow, StyleRows


class InputsView:
    """Content, stack, styles, mask and label table; ``folder_mode()`` says whether the batch takes
    its contents from a folder (the content row is hidden then)."""

    def __init__(self, viewer: Any, folder_mode: Callable[[], bool]):
        self._viewer = viewer
        self._folder_mode = folder_mode
        self._watched: Any = None  # the Shapes mask whose shapes the label table follows
        #: Called after the content or a style row changed (the widget's colour hint follows them).
        self.on_change: Callable[[], None] | None = None
        self.content_layer = ComboBox(
            label="Content",
            choices=self.content_choices,
            tooltip="The image to repaint (its shapes are kept), or the canvas: the visible image layers "
            "composited as shown (colormaps, contrast, opacity, blending; style layers and results left out)",
        )
        self.content_layer.changed.connect(self.update_stack_widgets)
        self.stack_mode = ComboBox(
            label="Stack",
            choices=[("current slice", "slice"), ("all slices", "all")],
            value=STACK_MODES[0],
            tooltip="An nD content (stack, time-lapse): stylise the slice shown, or every slice into one nD result",
        )
        self.coherent = CheckBox(
            text="coherent (start from previous slice)",
            value=True,
            tooltip="Start each slice from the previous slice's result: less flicker between slices",
        )
        self.stack_mode.changed.connect(self.update_stack_widgets)
        self.stack_row = Container(widgets=[self.stack_mode, self.coherent], labels=False, label="Stack")
        self.stack_row.margins = (0, 0, 0, 0)
        self.mask_layer = ComboBox(
            label="Mask",
            choices=self.mask_choices,
            nullable=True,
            value=None,
            tooltip="Optional Labels layer over the content (which style goes where), or a Shapes layer "
            "(each shape: a style or keep the content)",
        )
        self.mask_layer.changed.connect(lambda *_: self.rebuild_label_table())
        self.label_table = LabelTable()
        self.style_rows = StyleRows(self.image_choices, self.rebuild_label_table, self.shapes_choices)
        self.add_style_button = PushButton(text="+ add style", tooltip="Blend in another style image")
        self.add_style_button.changed.connect(lambda: self.add_style())
        self.styles_box = Container(
            widgets=[self.style_rows, self.add_style_button], labels=False, label="Style"
        )
        self.styles_box.margins = (0, 0, 0, 0)

    def rows(self) -> list[Any]:
        """The rows, top to bottom, for the widget's labelled form."""
        return [self.content_layer, self.stack_row, self.styles_box, self.mask_layer, self.label_table]

    # ------------------------------------------------------------------ layer lists

    def layers_of(self, *kinds: str) -> list[tuple[str, Any]]:
        """(name, layer) of the viewer's layers of these kinds ('Image', 'Labels', 'Shapes')."""
        import napari.layers

        types = tuple(getattr(napari.layers, kind) for kind in kinds)
        if self._viewer is None:
            return []
        # unwrap napari's proxies so that a layer compares by identity
        return [(layer.name, unwrap(layer)) for layer in self._viewer.layers if isinstance(layer, types)]

    def image_choices(self, *_: Any) -> list[tuple[str, Any]]:
        return self.layers_of("Image")

    def content_choices(self, *_: Any) -> list[tuple[str, Any]]:
        """The image layers, then the canvas (while there is an image layer)."""
        images = self.image_choices()
        return [*images, (CANVAS_LABEL, CANVAS)] if images else images

    def mask_choices(self, *_: Any) -> list[tuple[str, Any]]:
        return self.layers_of("Labels", "Shapes")

    def shapes_choices(self, *_: Any) -> list[tuple[str, Any]]:
        return self.layers_of("Shapes")

    # ------------------------------------------------------------------ the choices

    def content(self, content: Any = None, styles: Sequence[tuple[Any, float]] | None = None) -> Any:
        """The run's content: ``content`` (default: the chosen one), the canvas resolved to the
        viewer's visible image layers now, the ``styles``' layers (default: the rows') left out."""
        chosen = unwrap(self.content_layer.value if content is None else content)
        if chosen is not CANVAS:
            return chosen
        styles = self.style_rows.styles if styles is None else styles
        layers = [unwrap(layer) for layer in self._viewer.layers] if self._viewer is not None else []
        return make_canvas(layers, exclude=[unwrap(style) for style, _ in styles])

    def grid_layer(self) -> Any:
        """The layer the content lies on: the chosen layer, or the canvas's bottom-most layer."""
        chosen = unwrap(self.content_layer.value)
        if chosen is not CANVAS:
            return chosen
        layers = [unwrap(layer) for layer in self._viewer.layers] if self._viewer is not None else []
        found = canvas_layers(layers, exclude=[unwrap(style) for style, _ in self.style_rows.styles])
        return found[0] if found else None

    def update_stack_widgets(self, *_: Any) -> None:
        """The stack row for an nD content (not for a folder batch), "coherent" for all slices."""
        folder = self._folder_mode()  # its images are the contents
        self.content_layer.visible = not folder
        self.stack_row.visible = not folder and is_nd(self.grid_layer())
        self.coherent.visible = self.stack_mode.value == "all"
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def add_style(self, layer: Any = None, weight: float = 1.0) -> StyleRow:
        """Add a style row (the layer defaults to an image that is not used yet)."""
        return self.style_rows.add(layer, weight, pick=self.unused_image)

    def unused_image(self) -> Any:
        """An image layer that is neither the content nor a style yet (a plugin result last)."""
        used = {id(self.content_layer.value)} | {id(row.layer.value) for row in self.style_rows}
        candidates = [layer for _, layer in self.image_choices() if id(layer) not in used]
        candidates.sort(key=lambda layer: (is_result_layer(layer), "style" not in layer.name.lower()))
        return candidates[0] if candidates else None

    def layer_combos(self) -> list[Any]:
        """Every layer choice of the inputs: content, each style row's layer and region, the mask."""
        rows = [combo for row in self.style_rows for combo in (row.layer, row.region)]
        return [self.content_layer, *rows, self.mask_layer]

    def chosen_layers(self) -> list[tuple[Any, Any]]:
        """(choice, layer) of every layer choice that holds a layer: what :meth:`keep_chosen` restores."""
        return [(combo, combo.value) for combo in self.layer_combos() if combo.value is not None]

    def keep_chosen(self, chosen: list[tuple[Any, Any]]) -> None:
        """After the lists were refreshed: each choice holds its layer again while the layer is
        still listed (a refresh after a rename would drop it, or pick the first layer, silently)."""
        for combo, layer in chosen:
            listed = any(value is layer for value in combo.choices)
            if listed and combo.value is not layer:
                combo.value = layer

    def reset(self) -> None:
        """After the layer lists changed: a user image as the content (not a result), each style row
        showing a style that is not the content, the stack row, the regions and the label table."""
        self._canvas_last()
        content = self.content_layer.value
        if content is not None and is_result_layer(content):
            # prefer a user image as the default content
            for _, layer in self.image_choices():
                if not is_result_layer(layer):
                    self.content_layer.value = layer
                    content = layer
                    break
        if self._folder_mode():  # no content layer: keep the styles chosen
            content = None
        for row in self.style_rows:
            if row.layer.value is None or row.layer.value is content:
                replacement = self.unused_image()
                if replacement is not None:
                    row.layer.value = replacement
        self.style_rows.show_regions()
        self.update_stack_widgets()
        self.rebuild_label_table()

    def _canvas_last(self) -> None:
        """Keep the canvas entry below the layers (a refreshed list appends new layers after it)."""
        combo = self.content_layer
        names = [combo.native.itemText(i) for i in range(combo.native.count())]
        if CANVAS_LABEL not in names or names[-1] == CANVAS_LABEL:
            return
        value = combo.value
        with combo.changed.blocked():
            combo.del_choice(CANVAS_LABEL)
            combo.set_choice(CANVAS_LABEL, CANVAS)
            combo.value = value

    def rebuild_label_table(self) -> None:
        """The table for the chosen mask; a Shapes mask's table follows its shapes as they change."""
        mask = self.mask_layer.value
        watched = mask if is_shapes_layer(mask) else None
        if watched is not self._watched:
            if self._watched is not None:
                self._watched.events.data.disconnect(self._on_shapes_changed)
            if watched is not None:
                watched.events.data.connect(self._on_shapes_changed)
            self._watched = watched
        self.label_table.rebuild(mask, self.style_rows.names(), removed_style=self.style_rows.take_removed())
        self._changed()

    def close(self) -> None:
        """The widget went away: stop following the Shapes mask's shapes."""
        if self._watched is not None:
            self._watched.events.data.disconnect(self._on_shapes_changed)
            self._watched = None

    def _on_shapes_changed(self, event: Any = None) -> None:
        action = str(getattr(event, "action", ""))
        if action in ("adding", "removing", "changing"):  # rebuilt once it is done
            return
        removed = tuple(getattr(event, "data_indices", ()) or ()) if action == "removed" else ()
        self.label_table.rebuild(self.mask_layer.value, self.style_rows.names(), removed)


__all__ = ["InputsView"]
