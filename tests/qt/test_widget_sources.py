"""Styles from files and the gallery, saving previews, transparency, start images and Continue,
through the real widget in a real viewer (tiny images, a few iterations)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage
from widget_helpers import on_result_images, open_widget

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=4, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 60_000


def wait_done(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def warnings_of(notes):
    from napari.utils.notifications import NotificationSeverity

    return [n.message for n in notes if n.severity >= NotificationSeverity.WARNING]


def test_file_and_gallery_styles_save_previews_and_keep_transparent_pixels(
    qtbot, viewer, content_image, style_image, tmp_path, notes
):
    """A style from a file and one from the gallery run; every 2nd preview is saved as a valid
    image; an RGBA content's transparent pixels come back byte for byte, its alpha kept."""
    PILImage.fromarray(style_image).save(tmp_path / "style.png")
    alpha = np.full(content_image.shape[:2], 255, np.uint8)
    alpha[:, :20], alpha[:, 20:24] = 0, 128  # transparent, then semi-transparent columns
    rgba = np.dstack([content_image, alpha])
    rgba[alpha == 0, :3] = [7, 8, 9]  # colours hidden under alpha 0 stay as they are
    content = viewer.add_image(rgba, name="cat", rgb=True)
    widget = open_widget(viewer)
    widget.set_config(**{**FAST, "size": 64})  # the content's own size: pixels line up
    widget.style_rows[0].use_file(tmp_path / "style.png")
    widget.add_style().use_gallery("gravel")
    assert [row.layer.value.label for row in widget.style_rows] == ["style.png (file)", "Gravel (gallery)"]
    folder = tmp_path / "previews"
    folder.mkdir()
    widget.save_previews.use(folder, every=2)
    assert widget.run()
    wait_done(qtbot, widget)
    assert warnings_of(notes) == []
    result = viewer.layers["cat stylised"]
    assert result.metadata["styles"] == [{"file": str(tmp_path / "style.png")}, {"gallery": "gravel"}]
    out = result.data
    assert out.shape == rgba.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[alpha == 0], rgba[alpha == 0])  # byte-identical
    np.testing.assert_array_equal(out[..., 3], alpha)
    assert np.abs(out[alpha == 255, :3].astype(int) - rgba[alpha == 255, :3]).mean() > 1  # stylised
    np.testing.assert_array_equal(content.data, rgba)
    saved = sorted(p.name.rsplit(".", 2)[-2] for p in folder.iterdir())
    assert saved == ["step00002", "step00004"]
    for path in folder.iterdir():
        with PILImage.open(path) as image:
            assert image.size == (64, 43) and image.mode == "RGBA"


def test_a_missing_style_file_and_a_bad_folder_are_one_sentence(viewer, content_image, tmp_path, notes):
    viewer.add_image(content_image, name="cat", rgb=True)
    widget = open_widget(viewer)
    widget.set_config(**FAST)
    widget.style_rows[0].use_file(tmp_path / "gone.png")
    assert not widget.run()
    widget.style_rows[0].use_gallery("brick")
    widget.save_previews.use(tmp_path / "no such folder")
    assert not widget.run()
    said = warnings_of(notes)
    assert len(said) == 2 and "file not found" in said[0] and "does not exist" in said[1]


def test_continue_starts_from_the_result_with_its_settings(qtbot, viewer, content_image, style_image, notes):
    content = viewer.add_image(content_image, name="cat", rgb=True)
    viewer.add_image(style_image, name="swirls style", rgb=True)
    widget = open_widget(viewer)
    widget.set_config(**FAST, init="noise")  # a result far from the content
    assert widget.run()
    wait_done(qtbot, widget)
    first = viewer.layers["cat stylised"]
    before = np.array(first.data, dtype=float)
    widget.set_config(iterations=1, style_weight=50.0, init="image")  # the form does not matter now
    assert not widget.start_image.native.isHidden() and first in widget.start_image.choices  # any image
    viewer.layers.selection.active = content
    assert not widget.continue_row.button.enabled  # the content is no result
    viewer.layers.selection.active = first
    assert widget.continue_row.button.enabled
    previews = []
    on_result_images(viewer, lambda layer: previews.append(np.array(layer.data, dtype=float)))
    widget.continue_row.iterations.value = 3
    assert widget.continue_run()
    wait_done(qtbot, widget)
    assert warnings_of(notes) == []
    result = viewer.layers["cat stylised +3"]
    meta = result.metadata
    assert meta["continued_from"] == "cat stylised" and meta["init_layer"] == "cat stylised"
    assert (
        meta["config"]["init"] == "image"
        and meta["config"]["style_weight"] == first.metadata["config"]["style_weight"]
    )
    assert meta["steps"] == 3 and result.data.shape == first.data.shape
    # The first preview (one step on) is near the earlier result, far from the content.
    content_small = np.array(PILImage.fromarray(content_image).resize(before.shape[1::-1]), dtype=float)
    near, far = np.abs(previews[0] - before).mean(), np.abs(previews[0] - content_small).mean()
    assert near < 0.5 * far
