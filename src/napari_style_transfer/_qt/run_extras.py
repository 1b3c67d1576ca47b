"""Small views around a run: the start image ("Start from: an image"), saving every Nth
preview to a folder, and Continue (N more iterations from a selected result layer).

Each view only holds the user's choice; the widget turns it into a run
(``plugin/run_request.RunChoices``), and the files are read and written in the worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton, SpinBox

from ..plugin.continuation import continue_choices
from ..plugin.layers import is_result_layer
from ..plugin.run_request import RunChoices
from .form import SettingsForm
from .results import unwrap


class StartImageRow(ComboBox):
    """The image layer to start from, shown beside "Start from" while that says "an image"."""

    def __init__(self, init: ComboBox, choices: Callable[..., list]):
        super().__init__(
            label="Start image",
            choices=choices,
            tooltip="Any image layer to start from, e.g. an earlier result (read at the run's size)",
        )
        self._init = init
        init.changed.connect(self._update)
        self._update()

    def _update(self, *_: Any) -> None:
        self.visible = self._init.value == "image"

    @property
    def layer(self) -> Any:
        """The start layer when starting from an image (None otherwise)."""
        return unwrap(self.value) if self._init.value == "image" else None


class SavePreviewsRow(Container):
    """Save every Nth preview (and the final image) of a run into a folder."""

    def __init__(self) -> None:
        self.enabled_box = CheckBox(text="every", value=False, tooltip="Save previews to a folder")
        self.every = SpinBox(
            value=1,
            min=1,
            max=100_000,
            tooltip="Save every Nth preview (previews come every 'Preview every' iterations) and the final image",
        )
        self.folder = FileEdit(mode="d", tooltip="The folder the preview images are written to")
        row = Container(widgets=[self.enabled_box, self.every], layout="horizontal", labels=False)
        row.margins = (0, 0, 0, 0)
        super().__init__(widgets=[row, self.folder], labels=False, label="Save previews")
        self.margins = (0, 0, 0, 0)
        self.enabled_box.changed.connect(self._update)
        self._update()

    def _update(self, *_: Any) -> None:
        self.every.enabled = self.folder.enabled = bool(self.enabled_box.value)

    def use(self, folder: Any, every: int = 1) -> None:
        """Save every ``every``-th preview into ``folder`` (None: save nothing)."""
        self.enabled_box.value = folder is not None
        if folder is not None:
            self.folder.value = folder
            self.every.value = every

    @property
    def choice(self) -> tuple[Any, int] | None:
        """(folder, N) when saving is on, else None."""
        if not self.enabled_box.value:
            return None
        return self.folder.line_edit.value.strip(), int(self.every.value)


class ContinueRow(Container):
    """Continue [N] more iterations from the selected result layer (its recorded settings)."""

    def __init__(self, on_continue: Callable[[], Any], viewer: Any = None):
        self.iterations = SpinBox(value=50, min=1, max=100_000, tooltip="How many more iterations")
        self.button = PushButton(
            text="Continue", tooltip="Run N more iterations from the selected result layer, with its settings"
        )
        self.button.changed.connect(lambda: on_continue())
        super().__init__(widgets=[self.button, self.iterations], layout="horizontal", labels=False)
        self.margins = (0, 0, 0, 0)
        self._viewer = viewer
        if viewer is not None:  # the button is enabled while a result layer is selected
            viewer.layers.selection.events.active.connect(self.refresh)
        self.refresh()

    def selected(self) -> Any:
        """The selected result layer (None if the selected layer is not a result)."""
        layer = None if self._viewer is None else unwrap(self._viewer.layers.selection.active)
        return layer if layer is not None and is_result_layer(layer) else None

    def choices(self, result: Any, iterations: int | None, previews: tuple[Any, int] | None) -> RunChoices:
        """The run that continues ``result`` (default: the selected result layer) by ``iterations``
        (default: this row's number); UserError when it cannot."""
        layers = [unwrap(layer) for layer in self._viewer.layers]
        result = self.selected() if result is None else unwrap(result)
        n = self.iterations.value if iterations is None else iterations
        return continue_choices(result, layers, n, previews)

    def refresh(self, *_: Any) -> None:
        layer = self.selected()
        self.button.enabled = layer is not None
        self.button.tooltip = (
            f"Run {self.iterations.value} more iterations from '{layer.name}', with its settings"
            if layer is not None
            else "Select a result layer ('… stylised') to continue it"
        )


def add_run_extras(form: SettingsForm, choices: Callable[..., list]) -> tuple[StartImageRow, SavePreviewsRow]:
    """The start-image row (below "Start from") and the save-previews row (below "Preview every"),
    put into the form's Advanced part."""
    start, save = StartImageRow(form.controls["init"].widget, choices), SavePreviewsRow()
    for anchor, row in ((form.controls["init"].row, start), (form.controls["preview_every"].row, save)):
        form.advanced.insert(form.advanced.index(anchor) + 1, row)
    return start, save
