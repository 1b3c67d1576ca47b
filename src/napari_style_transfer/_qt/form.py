"""The settings form: one control per StyleConfig option, built from the engine's option specs.

Each :class:`~napari_style_transfer.engine.options.OptionSpec` gives a control by its kind
(int and float spin boxes, check boxes, combo boxes, text fields; an optional value gets an
"auto"-style check box beside it that means None). A few options get a special control:
the output size's "original" box, the style strength's log slider, the weights source with
its file picker, and the devices this machine has. ``config_kwargs`` and ``set_config`` go
through the controls by field name, so a new StyleConfig field appears here by itself.
Options of the group "inputs" come from layers and style rows, not from this form. The output
options (``settings.OUTPUT_SPECS``: the full-size result) get controls the same way;
``values`` / ``set_values`` read and set every control as plain settings values.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    Slider,
    SpinBox,
)
from magicgui.widgets.bases import ValueWidget, Widget
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QLabel, QWidget

from ..engine import ConfigError
from ..engine.options import OptionSpec, option_specs
from ..settings import OUTPUT_SPECS

#: Option groups and where the form puts them (the others come from layers and rows).
FORM_GROUPS = {"main": "main", "advanced": "advanced", "tiling": "advanced", "output": "main"}
#: Spin-box limits for options without a maximum (Qt's spin boxes are 32-bit).
INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e5
#: Text beside a check box, where the option's label alone reads oddly.
CHECKBOX_TEXT = {
    "multiscale": "coarse to fine",
    "compile": "torch.compile",
    "full_size": "upsampled to the content's size",
}
#: Text of the None box of an optional value, where ``none_label`` is too long for a row.
NONE_TEXT = {"size": "original"}
#: Choices the form does not offer (none now: init 'image' gets its start layer from the widget's row).
HIDDEN_CHOICES: dict[str, tuple[str, ...]] = {}


class Control:
    """One option's control: the row it adds to the form, and its value as StyleConfig takes it."""

    def __init__(self, spec: OptionSpec, widget: ValueWidget, row: Widget | None = None):
        self.spec = spec
        self.widget = widget  # the value widget (what the dock widget exposes by the field name)
        self.row = row if row is not None else widget

    def get(self) -> Any:
        return self.widget.value

    def set(self, value: Any) -> None:
        self.widget.value = value

    def shows(self, value: Any) -> bool:
        """Whether the control now shows ``value`` itself (not a rounded, clipped or converted one)."""
        return same_value(self.get(), value)

    def try_set(self, value: Any) -> bool:
        """Set ``value`` if the control can show it exactly; otherwise leave every widget of the
        row as it was (a compound control may have changed a part before refusing) and say False."""
        widgets = value_widgets(self.row)
        before = [widget.value for widget in widgets]
        try:
            self.set(value)
            shown = self.shows(value)
        except (ValueError, TypeError, OverflowError, ConfigError):
            shown = False
        if not shown:
            restore_widgets(widgets, before)
        return shown


class LayersControl(Control):
    """VGG layer names as comma-separated text."""

    def get(self) -> tuple[str, ...]:
        return layer_names(self.widget.value)

    def set(self, value: Any) -> None:
        self.widget.value = value if isinstance(value, str) else ", ".join(value)

    def shows(self, value: Any) -> bool:
        return same_value(self.get(), layer_names(value) if isinstance(value, str) else value)


def layer_names(text: Any) -> tuple[str, ...]:
    """'relu1_1, relu2_1' → ('relu1_1', 'relu2_1')."""
    return tuple(v for v in str(text).replace(",", " ").split() if v)


class NumbersControl(Control):
    """Numbers as comma-separated text; empty text is None."""

    def get(self) -> tuple[float, ...] | None:
        text = str(self.widget.value).replace(",", " ").split()
        if not text:
            return None
        try:
            return tuple(float(v) for v in text)
        except ValueError:
            raise ConfigError(
                f"{self.spec.name}: must be numbers separated by commas, got {self.widget.value!r}"
            ) from None

    def set(self, value: Any) -> None:
        self.widget.value = "" if value is None else ", ".join(number_text(v) for v in value)


def number_text(value: Any) -> str:
    """A number as short text that reads back as the same float ('0.5', '1e-05', '0.123456789')."""
    number = float(value)
    text = f"{number:g}"
    return text if float(text) == number else repr(number)


class OptionalControl(Control):
    """A value with a check box beside it that means None (the box's text says what None means)."""

    def __init__(self, spec: OptionSpec, widget: ValueWidget, none_box: CheckBox):
        row = Container(widgets=[widget, none_box], layout="horizontal", labels=False, label=spec.label)
        row.margins = (0, 0, 0, 0)
        super().__init__(spec, widget, row)
        self.none_box = none_box
        none_box.changed.connect(self._update)
        self._update()

    def _update(self, *_: Any) -> None:
        self.widget.enabled = not self.none_box.value

    def get(self) -> Any:
        return None if self.none_box.value else self.widget.value

    def set(self, value: Any) -> None:
        self.none_box.value = value is None
        if value is not None:
            self.widget.value = value


AUTO_TEXT = "Auto"


def show_lowest_as(spin: Any, text: str) -> None:
    """Show ``text`` for a spin box's lowest value, and accept it (or its first letters) typed.

    A QSpinBox does this with its special value text; magicgui's int box is superqt's
    ``QLargeIntSpinBox``, which ignores that text and shows the number, so its text updates
    are wrapped here (they are Python methods of the instance).
    """
    spin.setSpecialValueText(text)
    if not hasattr(spin, "_updateEdit") or not hasattr(spin, "_interpret"):
        return  # a Qt spin box: the special value text does it
    edit = spin.lineEdit()
    show_number, interpret = spin._updateEdit, spin._interpret

    def update_edit() -> None:
        if spin.value() == spin.minimum():
            if edit.text() != text:
                edit.setText(text)
        else:
            show_number()

    def interpret_text(policy: Any) -> None:
        typed = edit.displayText().strip()
        if typed and text.casefold().startswith(typed.casefold()):
            edit.setText(str(spin.minimum()))
        with contextlib.suppress(ValueError):  # neither a number nor the text: the value stays
            interpret(policy)
        update_edit()

    spin._updateEdit, spin._interpret = update_edit, interpret_text
    edit.setValidator(None)  # the box's own validator takes digits only; interpret_text checks
    update_edit()


class AutoControl(Control):
    """An int that also takes "auto": the spin box's lowest value, shown as "Auto"."""

    def __init__(self, spec: OptionSpec, widget: ValueWidget):
        super().__init__(spec, widget)
        widget.min = int(spec.minimum or 1) - 1
        show_lowest_as(widget.native, AUTO_TEXT)
        widget.tooltip = f"{spec.help} (Auto: {spec.auto_label}; type 'a' or step below 1)"
        self.set(spec.default)

    def get(self) -> Any:
        return "auto" if self.widget.value == self.widget.min else self.widget.value

    def set(self, value: Any) -> None:
        self.widget.value = self.widget.min if value == "auto" else value


class StrengthControl(Control):
    """The style weight on a log slider (0.1 to 100) with its number beside it."""

    def __init__(self, spec: OptionSpec):
        self.slider = Slider(
            value=strength_position(spec.default), min=0, max=300, readout=False, tooltip=spec.help
        )
        box = FloatSpinBox(
            value=spec.default,
            min=0.1,
            max=100.0,
            step=0.5,
            tooltip=f"{spec.help} (the content weight is 1)",
        )
        box.native.setMaximumWidth(80)
        self.slider.changed.connect(self._from_slider)
        box.changed.connect(self._from_box)
        row = Container(widgets=[self.slider, box], layout="horizontal", labels=False, label=spec.label)
        row.margins = (0, 0, 0, 0)
        super().__init__(spec, box, row)

    def _from_slider(self, position: int) -> None:
        value = 10 ** (position / 100 - 1)
        with self.widget.changed.blocked():
            self.widget.value = round(value, 2 if value < 10 else 1)

    def _from_box(self, value: float) -> None:
        with self.slider.changed.blocked():
            self.slider.value = strength_position(value)

    def get(self) -> float:
        return float(self.widget.value)


class WeightsControl(Control):
    """Where the VGG-19 weights come from: a named source, or a file (with its picker)."""

    def __init__(self, spec: OptionSpec):
        choices = list(zip(spec.choice_labels or spec.choices, spec.choices)) + [("file…", "file")]
        source = ComboBox(label=spec.label, choices=choices, value=spec.default, tooltip=spec.help)
        self.file = FileEdit(label="Weight file", mode="r", filter="*.pth *.pt *.bin *.safetensors")
        row = Container(widgets=[source, self.file], labels=False, label=spec.label)
        row.margins = (0, 0, 0, 0)
        super().__init__(spec, source, row)
        source.changed.connect(self._update)
        self.listeners: list[Callable[[bool], None]] = []
        self._update()

    @property
    def from_file(self) -> bool:
        return self.widget.value == "file"

    def _update(self, *_: Any) -> None:
        self.file.visible = self.from_file
        for listener in self.listeners:
            listener(self.from_file)

    def get(self) -> str:
        return str(self.file.value) if self.from_file else self.widget.value

    def set(self, value: Any) -> None:
        if value in self.spec.choices:
            self.widget.value = value
        else:
            self.widget.value = "file"
            self.file.value = value

    def shows(self, value: Any) -> bool:
        return self.get() == (value if value in self.spec.choices else str(Path(value)))


def strength_position(value: float) -> int:
    """Slider position (0-300) of a style weight (0.1-100, log scale)."""
    return int(round(100 * (math.log10(min(max(value, 0.1), 100.0)) + 1)))


def device_choices() -> list[tuple[str, str]]:
    """The devices this machine has, as (label, value) pairs."""
    import torch

    choices = [("auto (GPU if there is one)", "auto"), ("cpu", "cpu")]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        choices.append(("cuda", "cuda"))
        if count > 1:
            choices += [(f"cuda:{i} ({torch.cuda.get_device_name(i)})", f"cuda:{i}") for i in range(count)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        choices.append(("mps (Apple GPU)", "mps"))
    return choices


def _number_widget(spec: OptionSpec) -> ValueWidget:
    """A spin box over the spec's range (clipped to what Qt's spin boxes hold)."""
    is_int = spec.kind == "int"
    limit = INT_LIMIT if is_int else FLOAT_LIMIT
    low = -limit if spec.minimum is None else max(spec.minimum, -limit)
    high = limit if spec.maximum is None else min(spec.maximum, limit)
    if spec.name == "learning_rate":  # its minimum 0 is exclusive
        low = spec.step or 0.01
    default = spec.default if isinstance(spec.default, (int, float)) else (0 if is_int else 1.0)
    kind = SpinBox if is_int else FloatSpinBox
    step = spec.step or 1
    return kind(
        label=spec.label,
        value=min(max(default, low), high),
        min=low,
        max=high,
        step=int(step) if is_int else step,
        tooltip=spec.help,
    )


def _plain_control(spec: OptionSpec) -> Control:
    """A control by kind (before the None box of an optional value)."""
    if spec.kind in ("int", "float"):
        return Control(spec, _number_widget(spec))
    if spec.kind == "bool":
        box = CheckBox(text=CHECKBOX_TEXT.get(spec.name, ""), value=spec.default, tooltip=spec.help)
        row = Container(widgets=[box], labels=False, label=spec.label)
        row.margins = (0, 0, 0, 0)
        return Control(spec, box, row)
    if spec.kind == "choice":
        hidden = HIDDEN_CHOICES.get(spec.name, ())
        pairs = [(label, value) for label, value in zip(spec.choice_labels or spec.choices, spec.choices)]
        pairs = [(label, value) for label, value in pairs if value not in hidden]
        return Control(spec, ComboBox(label=spec.label, choices=pairs, value=spec.default, tooltip=spec.help))
    if spec.kind == "layers":
        edit = LineEdit(label=spec.label, value=", ".join(spec.default), tooltip=spec.help)
        edit.native.setCursorPosition(0)  # show the start of the list
        return LayersControl(spec, edit)
    if spec.kind == "floats":
        placeholder = f"empty: {spec.none_label}" if spec.none_label else ""
        edit = LineEdit(
            label=spec.label, value="", tooltip=f"{spec.help}, separated by commas ({placeholder})"
        )
        edit.native.setPlaceholderText(placeholder)
        control = NumbersControl(spec, edit)
        control.set(spec.default)
        return control
    return Control(spec, LineEdit(label=spec.label, value=str(spec.default), tooltip=spec.help))


def make_control(spec: OptionSpec) -> Control:
    """The control for one option: a special one for a few names, else one by kind."""
    if spec.name == "style_weight":
        return StrengthControl(spec)
    if spec.name == "weights":
        return WeightsControl(spec)
    if spec.name == "device":
        return Control(
            spec, ComboBox(label=spec.label, choices=device_choices(), value=spec.default, tooltip=spec.help)
        )
    control = _plain_control(spec)
    if spec.auto_label:
        return AutoControl(spec, control.widget)
    if spec.optional and spec.kind in ("int", "float"):
        text = NONE_TEXT.get(spec.name) or (spec.none_label if len(spec.none_label) <= 20 else "auto")
        box = CheckBox(text=text, value=spec.default is None, tooltip=f"Checked: {spec.none_label}")
        return OptionalControl(spec, control.widget, box)
    return control


class SettingsForm:
    """The controls of every option the form shows, by field name, in the spec's order."""

    def __init__(self) -> None:
        self.controls: dict[str, Control] = {}
        for spec in (*option_specs(), *OUTPUT_SPECS):
            if spec.group in FORM_GROUPS:
                self.controls[spec.name] = make_control(spec)
        self.output_names = tuple(spec.name for spec in OUTPUT_SPECS)
        self.advanced = Container(widgets=self.rows("advanced"), labels=True)
        weights, convention = self.controls.get("weights"), self.controls.get("weights_convention")
        if isinstance(weights, WeightsControl) and convention is not None:
            weights.listeners.append(lambda from_file: setattr(convention.row, "visible", from_file))
            weights.listeners[-1](weights.from_file)

    def rows(self, place: str) -> list[Widget]:
        """The rows of the "main" or the "advanced" part of the form."""
        return [c.row for c in self.controls.values() if FORM_GROUPS[c.spec.group] == place]

    def config_kwargs(self) -> dict[str, Any]:
        """The StyleConfig fields set by the controls (the "inputs" ones come from layers and rows)."""
        return {name: c.get() for name, c in self.controls.items() if name not in self.output_names}

    def output_values(self) -> dict[str, Any]:
        """The output options (``settings.OUTPUT_SPECS``) set by the controls."""
        return {name: self.controls[name].get() for name in self.output_names}

    def values(self) -> dict[str, Any]:
        """Every control's value, by option name (StyleConfig fields and output options)."""
        return {name: control.get() for name, control in self.controls.items()}

    def set_config(self, **values: Any) -> None:
        """Set controls from StyleConfig field names."""
        for name, value in values.items():
            control = self.controls.get(name)
            if control is None:
                raise TypeError(f"set_config: unknown or unsupported setting {name!r}")
            control.set(value)

    def set_values(self, values: dict[str, Any]) -> list[str]:
        """Set the controls of the options in ``values`` (others are left out: they are no control's).

        Returns the names whose value a control cannot show (a choice it does not offer, a
        number beyond its range or finer than its steps, a value of the wrong kind): those
        settings are left exactly as they were, every widget of their row included.
        """
        controls = self.controls
        return [
            name for name, value in values.items() if name in controls and not controls[name].try_set(value)
        ]

    def connect_changed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever the user changes any control (every value widget of every row)."""
        for control in self.controls.values():
            for widget in value_widgets(control.row):
                widget.changed.connect(lambda *_: callback())


def same_value(shown: Any, wanted: Any) -> bool:
    """Whether a control's value is ``wanted`` itself: the same kind (a check box's True is no 1)
    and, for numbers, the same number (a spin box's rounding or clipping is another value)."""
    if isinstance(wanted, (list, tuple)):
        alike = isinstance(shown, (list, tuple)) and len(shown) == len(wanted)
        return alike and all(same_value(a, b) for a, b in zip(shown, wanted))
    if isinstance(wanted, bool) or isinstance(shown, bool):
        return isinstance(wanted, bool) and isinstance(shown, bool) and wanted == shown
    if isinstance(wanted, (int, float)) and isinstance(shown, (int, float)):
        return shown == wanted or math.isclose(shown, wanted, rel_tol=1e-9, abs_tol=0.0)
    return type(shown) is type(wanted) and shown == wanted


def restore_widgets(widgets: list[ValueWidget], values: list[Any]) -> None:
    """Put each widget back to its value, as a change (so that what follows a widget follows it
    back); a widget that another one moved on the way (a slider beside its number) is put back
    quietly."""
    for widget, value in zip(widgets, values):
        if widget.value != value:
            widget.value = value
    for widget, value in zip(widgets, values):
        if widget.value != value:
            with widget.changed.blocked():
                widget.value = value


def value_widgets(widget: Widget) -> list[ValueWidget]:
    """The value widgets in a row (the row itself, or those of a Container, recursively)."""
    if isinstance(widget, ValueWidget):
        return [widget]
    if isinstance(widget, Container):
        return [inner for child in widget for inner in value_widgets(child)]
    return []


class LabelAligner(QObject):
    """Gives the label column of magicgui forms one width, measured with the styled font.

    magicgui sizes each label on its own when a Container is built in one go, and napari's
    stylesheet changes the font afterwards; so measure when the form is shown or restyled.
    """

    def __init__(self, *forms: Container):
        super().__init__(forms[0].native)
        self._forms = [form.native for form in forms]
        for form in self._forms:
            form.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Show, QEvent.Type.StyleChange, QEvent.Type.FontChange):
            self.align(obj)
        return False

    @staticmethod
    def _labels(form: QWidget) -> list[QLabel]:
        labels = []
        layout = form.layout()
        for i in range(layout.count() if layout is not None else 0):
            row = layout.itemAt(i).widget()
            inner = row.layout() if row is not None else None
            if inner is not None and inner.count() and isinstance(inner.itemAt(0).widget(), QLabel):
                labels.append(inner.itemAt(0).widget())
        return labels

    def align(self, form: QWidget) -> None:
        labels = self._labels(form)
        if labels:
            width = max(label.sizeHint().width() for label in labels)
            for label in labels:
                label.setMinimumWidth(width)
