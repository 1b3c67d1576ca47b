"""Settings in the real widget, in real viewers (plugin loaded through its manifest): the last-used
settings survive closing napari, presets set the controls, and a result saved with File ▸ Save
Layer's writer runs again through the real CLI with the same settings."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import PLUGIN, open_widget

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image
from napari_style_transfer.settings import read_settings_file
from napari_style_transfer.settings.store import LAST_SETTINGS_FILE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=3, preview_every=1, multiscale=False, device="cpu")


def test_settings_survive_closing_napari_and_reset_to_defaults(make_napari_viewer, settings_dir, notes):
    first = make_napari_viewer()
    widget = open_widget(first)
    assert widget.config_kwargs()["iterations"] == "auto" and not widget.full_size.value
    widget.iterations.value = 77
    widget.preserve_colors.value = "luminance"
    widget.full_size.value = True
    first.close()  # napari closes: the settings are written at once

    widget = open_widget(make_napari_viewer())
    assert widget.iterations.value == 77
    assert widget.preserve_colors.value == "luminance" and widget.full_size.value

    widget.settings_view.reset_button.changed.emit(True)  # "Reset to defaults"
    assert widget.config_kwargs()["iterations"] == "auto" and widget.preserve_colors.value == "none"
    widget.settings_view.flush()
    assert read_settings_file(settings_dir / LAST_SETTINGS_FILE)["iterations"] == "auto"

    (settings_dir / LAST_SETTINGS_FILE).write_text("{not json")  # corrupt: ignored, said once
    from napari_style_transfer._qt.widget import StyleTransferWidget

    again = StyleTransferWidget(widget.viewer)
    assert again.config_kwargs()["iterations"] == "auto"
    said = [n.message for n in notes if "ignored the saved settings" in n.message]
    assert len(said) == 1 and "not valid JSON" in said[0]


def test_presets_then_a_saved_result_runs_again_from_the_cli(
    qtbot, make_napari_viewer, tmp_path, content_image, style_image
):
    viewer = make_napari_viewer()
    viewer.add_image(content_image, name="cat", rgb=True)
    viewer.add_image(style_image, name="swirls style", rgb=True)
    widget = open_widget(viewer)
    view = widget.settings_view

    view.apply_preset("Quick look")  # choosing a preset sets the controls
    assert (widget.size.value, widget.iterations.value, widget.multiscale.value) == (256, 50, False)
    widget.iterations.value = 60
    assert view.preset.value == ""  # the settings are no preset's any more
    assert view.save_preset("mine")
    view.apply_preset("Balanced")
    assert (widget.size.value, widget.config_kwargs()["iterations"]) == (512, "auto")
    view.apply_preset("mine")
    assert (widget.size.value, widget.iterations.value) == (256, 60)

    widget.set_config(**FAST)
    widget.full_size.value = True
    widget.preserve_colors.value = "luminance"
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    result = viewer.layers[-1]
    assert result.data.shape == content_image.shape  # full size: upsampled from 32 px
    settings = result.metadata["settings"]
    assert settings["full_size"] and settings["iterations"] == 3

    saved = tmp_path / "saved.png"
    viewer.layers.selection = {result}
    assert viewer.layers.save(str(saved), selected=True, plugin=PLUGIN) == [str(saved)]
    content, style = (
        write_image(tmp_path / "c.png", content_image),
        write_image(tmp_path / "s.png", style_image),
    )
    again = tmp_path / "again.png"
    assert run(["--config", str(saved), str(content), str(style), "-o", str(again), "-q"]) == 0
    used = read_settings_file(again)
    assert {k: v for k, v in used.items() if k != "preview_every"} == {
        k: v for k, v in settings.items() if k != "preview_every"
    }
    assert read_image(again).shape == content_image.shape
    assert np.array_equal(read_image(saved), np.asarray(result.data))
