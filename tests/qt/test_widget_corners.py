"""The widget's corners in a real viewer (plugin opened through its manifest): an nD result over a
rotated and sheared stack, settings the form cannot show, labels of every integer type, Continue
on a layer that holds another image, and a mask rotated against the content.

Tiny data (32 px, 2 iterations, one scale) and the real engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity
from widget_helpers import open_widget

from napari_style_transfer.settings import check_values, save_last_settings, save_user_presets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 120_000
#: Valid settings that no control of the form can show: a seed beyond a spin box's 32 bits,
#: a weight finer than its spin box's steps, a style strength beyond its slider's range.
UNSHOWABLE = {"seed": 2**40, "content_weight": 1e-3, "style_weight": 1000.0}


def pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def warnings_of(notes):
    return [str(n.message) for n in notes if n.severity >= NotificationSeverity.WARNING]


def run_and_wait(qtbot, widget):
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def test_a_current_slice_result_is_laid_over_a_rotated_and_sheared_stack(viewer, qtbot):
    rotate = np.eye(3)
    rotate[1:, 1:] = [[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]]  # in the slices' plane
    stack = viewer.add_image(
        pixels((3, 40, 60)), name="stack", scale=(2.0, 1.5, 0.5), translate=(4.0, 1.0, -3.0), rotate=rotate
    )
    stack.shear = [0.0, 0.0, 0.3]
    viewer.add_image(pixels((32, 32, 3), 1), name="paint style", rgb=True)
    widget = open_widget(viewer, **FAST)
    widget.content_layer.value = stack
    widget.stack_mode.value = "slice"
    viewer.dims.set_current_step(0, 1)
    run_and_wait(qtbot, widget)
    result = viewer.layers[-1]
    assert "stylised" in result.name and result.data.shape == (1, 21, 32)
    for c_point, r_point in [
        ((1, -0.5, -0.5), (0, -0.5, -0.5)),
        ((1, 39.5, 59.5), (0, 20.5, 31.5)),
        ((1, -0.5, 59.5), (0, -0.5, 31.5)),
    ]:
        np.testing.assert_allclose(stack.data_to_world(c_point), result.data_to_world(r_point), atol=1e-9)


def test_remembered_settings_and_a_preset_the_form_cannot_show_leave_those_settings_alone(
    make_napari_viewer, notes
):
    save_last_settings(check_values({**UNSHOWABLE, "iterations": 77}))
    widget = open_widget(make_napari_viewer())
    seed = widget.form.controls["seed"]
    assert widget.iterations.value == 77  # what the form can show is restored
    kwargs = widget.config_kwargs()
    assert kwargs["seed"] == 0 and not seed.none_box.value and seed.widget.value == 0  # the default
    assert kwargs["content_weight"] == 1.0 and kwargs["style_weight"] == 30.0
    said = [str(n.message) for n in notes if "saved settings" in str(n.message)]
    assert len(said) == 1
    assert "seed = 1099511627776" in said[0] and "content_weight = 0.001" in said[0]
    assert said[0].endswith("those settings were left as they were.")

    save_user_presets({"odd": {**UNSHOWABLE, "size": 256}})
    view = widget.settings_view
    view.preset.reset_choices()
    widget.seed.value = 5
    seed.none_box.value = True  # a random seed (None); the spin box keeps 5 beside it
    before = widget.config_kwargs()
    view.apply_preset("odd")
    after = widget.config_kwargs()
    assert after["size"] == 256  # the rest of the preset applies
    kept = {"seed": None, "content_weight": 1.0, "style_weight": 30.0}
    assert {k: after[k] for k in UNSHOWABLE} == {k: before[k] for k in UNSHOWABLE} == kept
    assert seed.none_box.value and widget.seed.value == 5 and not widget.seed.enabled  # the control too
    assert view.preset.value == ""  # the settings are not the preset's: "custom"
    (warning,) = [w for w in warnings_of(notes) if "preset 'odd'" in w]
    assert "seed = 1099511627776" in warning and "style_weight = 1000.0" in warning
    assert "left as they were" in warning


def test_uint64_and_negative_labels_drive_the_run_and_continue_refuses_another_content(viewer, qtbot, notes):
    cat = viewer.add_image(pixels((32, 32, 3)), name="cat", rgb=True)
    viewer.add_image(pixels((32, 32, 3), 1), name="paint style", rgb=True)
    widget = open_widget(viewer, **FAST)
    negative = np.zeros((32, 32), np.int8)
    negative[:, 16:] = -128
    negative[:8] = -5
    widget.mask_layer.value = viewer.add_labels(negative, name="negative")
    assert [w.label for w in widget.label_table] == ["label -128", "label -5", "label 0"]
    widget.set_label_style(-128, None)
    assert widget.label_styles == {-5: 0}

    labels = np.zeros((32, 32), np.uint64)
    labels[:, 16:] = 2**64 - 1
    labels[:8] = 2**63 + 5
    mask = viewer.add_labels(labels, name="big labels")
    widget.mask_layer.value = mask
    assert [w.label for w in widget.label_table] == [
        "label 0",
        "label 9223372036854775813",
        "label 18446744073709551615",
    ]
    assert widget.label_styles == {2**63 + 5: 0, 2**64 - 1: 0}
    widget.set_label_style(2**63 + 5, None)
    assert widget.label_styles == {2**64 - 1: 0}
    run_and_wait(qtbot, widget)
    result = viewer.layers[-1]
    assert result.metadata["done"], warnings_of(notes)
    assert result.metadata["info"]["regions"] == [{"labels": [2**64 - 1], "style": 0}]
    assert result.metadata["label_styles"] == {str(2**64 - 1): 0}
    np.testing.assert_array_equal(mask.data, labels)

    cat.data = pixels((32, 32, 3), 7)  # another image under the same name
    assert not widget.continue_run(result, 2)
    (warning,) = [w for w in warnings_of(notes) if "no longer" in w]
    assert warning.startswith(
        "The content layer 'cat' is no longer the image this result was made from (its pixels are not the same)"
    )


def test_a_mask_rotated_against_the_content_is_one_notification(viewer, notes):
    viewer.add_image(pixels((32, 32, 3)), name="cat", rgb=True)
    viewer.add_image(pixels((32, 32, 3), 1), name="paint style", rgb=True)
    widget = open_widget(viewer, **FAST)
    widget.mask_layer.value = viewer.add_labels(np.ones((32, 32), np.int32), name="tilted", rotate=20)
    assert not widget.run()
    assert warnings_of(notes)[-1].startswith(
        "The mask 'tilted' is rotated or sheared against 'cat' in the viewer;"
    )
