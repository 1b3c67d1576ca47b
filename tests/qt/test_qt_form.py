"""The settings form, built from the engine's option specs, in a real napari viewer.

Nothing here lists StyleConfig fields by hand: the values come from each field's spec.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from napari.layers import Image
from widget_helpers import open_widget

from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.engine.options import OptionSpec, option_specs
from napari_style_transfer.plugin.run_request import prepare_run
from napari_style_transfer.settings import OUTPUT_SPECS, settings_specs

#: Groups the form shows; "inputs" come from layers and style rows ("output": settings.OUTPUT_SPECS).
FORM_GROUPS = ("main", "advanced", "tiling", "output")


def other_value(spec: OptionSpec, control) -> object:
    """A valid value other than the default, derived from the spec (and what a combo box offers)."""
    if spec.kind == "bool":
        return not spec.default
    offered = getattr(control.widget, "choices", None)
    if offered is not None:
        return next(value for value in offered if value != spec.default and value in spec.choices)
    if spec.kind in ("int", "float"):
        step = spec.step or 1
        start = spec.default if isinstance(spec.default, (int, float)) else (spec.minimum or 0) + step
        value = start + step if spec.maximum is None or start + step <= spec.maximum else start - step
        return int(value) if spec.kind == "int" else float(value)
    if spec.kind == "layers":
        return ("relu2_1", "relu3_1") if tuple(spec.default) != ("relu2_1", "relu3_1") else ("relu1_1",)
    if spec.kind == "floats":
        return (0.5, 2.0)
    if spec.kind == "str":
        return f"{spec.default}-other"
    raise AssertionError(f"no test value for kind {spec.kind!r} ({spec.name})")


def test_every_option_round_trips_through_the_form(viewer):
    widget = open_widget(viewer)
    controls = widget.form.controls
    specs = [spec for spec in settings_specs() if spec.group in FORM_GROUPS]
    assert {spec.name for spec in specs} == set(controls) == set(widget.form.values())
    assert set(widget.config_kwargs()) == set(controls) - {spec.name for spec in OUTPUT_SPECS}
    for spec in specs:
        value = other_value(spec, controls[spec.name])
        widget.set_config(**{spec.name: value})
        assert widget.form.values()[spec.name] == value, spec.name
        if spec.optional:
            widget.set_config(**{spec.name: None})
            assert widget.form.values()[spec.name] is None, spec.name
        widget.set_config(**{spec.name: spec.default})
        assert widget.form.values()[spec.name] == spec.default, spec.name
    # every control's value is the one the dock widget exposes under the field's name
    assert all(getattr(widget, name) is control.widget for name, control in controls.items())


def test_a_new_form_shows_the_config_defaults(viewer):
    widget = open_widget(viewer)
    assert StyleConfig(**widget.config_kwargs()) == StyleConfig()


def test_every_field_is_reachable_from_the_widget(viewer):
    """Form fields through the form; "inputs" fields through the layers and rows (prepare_run fills them)."""
    widget = open_widget(viewer)
    fields = {f.name for f in dataclasses.fields(StyleConfig)}
    form = set(widget.form.controls)
    inputs = {spec.name for spec in option_specs() if spec.group == "inputs"}
    output = {spec.name for spec in OUTPUT_SPECS}
    assert form | inputs == fields | output and not form & inputs
    gray = Image(np.linspace(0, 9, 600, dtype=np.float32).reshape(20, 30), contrast_limits=(1, 8), name="c")
    styles = [(Image(np.zeros((20, 20), np.uint8), name=n), w) for n, w in (("a", 1.0), ("b", 3.0))]
    config = prepare_run(gray, styles, widget.config_kwargs()).config
    assert config.contrast_limits == (1.0, 8.0) and config.style_blend_weights == (1.0, 3.0)


def test_special_controls(viewer, tmp_path):
    widget = open_widget(viewer)
    weights = tmp_path / "vgg19.pth"
    weights.write_bytes(b"x")
    widget.set_config(weights=str(weights), size=None, style_weight=3.0)
    kwargs = widget.config_kwargs()
    assert kwargs["weights"] == str(weights) and kwargs["size"] is None and kwargs["style_weight"] == 3.0
    convention = widget.form.controls["weights_convention"].row.native
    assert not convention.isHidden()  # a weight file's convention is shown only for a file
    # the style strength's log slider follows its number, and the other way round
    strength = widget.form.controls["style_weight"]
    assert strength.slider.value == 148  # log10(3) ≈ 0.477
    strength.slider.value = 300
    assert widget.config_kwargs()["style_weight"] == 100.0
    widget.set_config(weights="embedded")
    assert convention.isHidden()
    with pytest.raises(TypeError, match="unknown or unsupported setting 'contrast_limits'"):
        widget.set_config(contrast_limits=(0, 1))


def test_iterations_auto_reads_auto_and_takes_it_typed(viewer, qtbot):
    """magicgui's int box (superqt) ignores Qt's special value text: "Auto" must still show."""
    from qtpy.QtCore import Qt

    widget = open_widget(viewer)
    box = widget.form.controls["iterations"].widget
    edit = box.native.lineEdit()
    assert widget.config_kwargs()["iterations"] == "auto" and edit.text() == "Auto"
    widget.set_config(iterations=77)
    assert edit.text() == "77"
    box.native.stepBy(-77)  # stepping below 1
    assert edit.text() == "Auto" and widget.config_kwargs()["iterations"] == "auto"
    for typed, expected in (("120", 120), ("a", "auto"), ("nonsense", "auto")):
        edit.setText(typed)
        qtbot.keyClick(box.native, Qt.Key.Key_Return)
        assert widget.config_kwargs()["iterations"] == expected, typed
    assert edit.text() == "Auto"
