"""Issue 25 through the real widget: a grey content styled after a colour image, in colour.

The widget offers "Use the style's colours" when the content is single-channel and a style
is in colour; the run then gives an RGB result layer in the content's dtype.
"""

from __future__ import annotations

import numpy as np
from widget_helpers import open_widget

FAST = dict(size=32, iterations=3, preview_every=1, multiscale=False, device="cpu")
TIMEOUT_MS = 60_000


def grey(image: np.ndarray) -> np.ndarray:
    return (image[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)


def test_the_widget_suggests_and_runs_a_colour_result_from_a_grey_content(
    viewer, qtbot, content_image, style_image
):
    widget = open_widget(viewer)
    content = viewer.add_image(grey(content_image), name="grey cells", colormap="gray")
    viewer.add_image(style_image, name="stain style", rgb=True)
    widget.content_layer.value = content
    hint = widget.colour_hint
    assert hint.shown and not hint.row.native.isHidden()  # grey content, colour style, grey result: offered
    hint.button.clicked()
    assert widget.form.controls["result_colour"].get() == "style"
    assert not hint.shown and hint.row.native.isHidden()
    widget.set_config(**FAST)
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    result = next(layer for layer in viewer.layers if layer.name.startswith("grey cells stylised"))
    assert result.rgb and result.data.shape[-1] == 3 and result.data.dtype == np.uint8
    assert result.metadata["config"]["result_colour"] == "style"


def test_no_suggestion_for_a_grey_style_or_an_rgb_content(viewer, content_image, style_image):
    widget = open_widget(viewer)
    rgb_content = viewer.add_image(content_image, name="cat", rgb=True)
    grey_style = viewer.add_image(grey(style_image), name="grey style")
    widget.content_layer.value = rgb_content
    assert not widget.colour_hint.shown and widget.colour_hint.row.native.isHidden()
    grey_content = viewer.add_image(grey(content_image), name="grey cells")
    widget.content_layer.value = grey_content
    next(iter(widget.style_rows)).layer.value = grey_style
    assert not widget.colour_hint.shown and widget.colour_hint.row.native.isHidden()


def test_a_boolean_contents_colour_result_is_shown_over_its_whole_range(
    viewer, qtbot, content_image, style_image
):
    """A bool content's colour result is uint8 0–255: it must not keep the content's limits (0, 1)."""
    widget = open_widget(viewer, **FAST, result_colour="style")
    mask = viewer.add_image(grey(content_image) > 100, name="foreground")
    viewer.add_image(style_image, name="stain style", rgb=True)
    widget.content_layer.value = mask
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    result = next(layer for layer in viewer.layers if layer.name.startswith("foreground stylised"))
    assert result.rgb and result.data.dtype == np.uint8 and result.data.max() > 100
    assert tuple(result.contrast_limits) == (0, 255)
