"""'Full-size result' with 'Result colours: the style's' on a grey content, through the real widget.

A grey content given the style's colours gives an RGB result; the full-size resize in the worker
must treat its last axis as colour (not resize the last two axes as a grey image's), for a 2D
content, one slice of a stack and all slices. Tiny sizes (76×96 content, run at 32 px) and the
real engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import open_widget, shown_results, warnings_among

FAST = dict(size=32, iterations=2, preview_every=1, multiscale=False, device="cpu")
COLOUR_FULL_SIZE = dict(result_colour="style", full_size=True)
TIMEOUT_MS = 120_000
HW = (76, 96)


def grey_content(seed: int = 0) -> np.ndarray:
    """A (76, 96) uint8 grey image with some structure (a gradient and noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : HW[0], 0 : HW[1]]
    values = 40 + 2 * xx + yy + rng.integers(0, 30, HW)
    return np.clip(values, 0, 255).astype(np.uint8)


def colour_style() -> np.ndarray:
    """A (40, 40, 3) uint8 colour stripe pattern."""
    yy, xx = np.mgrid[0:40, 0:40]
    return np.stack([(xx * 6) % 256, (yy * 6) % 256, ((xx + yy) * 3) % 256], axis=-1).astype(np.uint8)


def run_to_the_end(viewer, qtbot, content, stack_mode: str | None = None):
    viewer.add_image(colour_style(), name="stripes style", rgb=True)
    widget = open_widget(viewer, **FAST, **COLOUR_FULL_SIZE)
    widget.content_layer.value = content
    if stack_mode is not None:
        widget.stack_mode.value = stack_mode
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    return widget


def test_a_grey_image_gives_a_full_size_colour_result(viewer, qtbot, notes):
    content = viewer.add_image(grey_content(), name="grey", colormap="gray")
    widget = run_to_the_end(viewer, qtbot, content)
    (result,) = shown_results(viewer)
    assert result.data.shape == (*HW, 3) and result.rgb and result.data.dtype == np.uint8
    assert result.name == "grey stylised"  # not "(failed)"
    assert result.metadata["settings"]["full_size"] and result.metadata["config"]["result_colour"] == "style"
    assert not warnings_among(notes), [n.message for n in notes]
    assert widget.status.value.startswith("Done")


@pytest.mark.parametrize(
    ("mode", "shape", "name"),
    [("all", (3, *HW, 3), "grey stack stylised"), ("slice", (1, *HW, 3), "grey stack stylised (slice 1)")],
)
def test_a_grey_stack_gives_a_full_size_colour_result(viewer, qtbot, notes, mode, shape, name):
    """All slices: one (3, H, W, 3) layer; the current slice: a one-slice layer placed over it."""
    content = viewer.add_image(np.stack([grey_content(seed) for seed in range(3)]), name="grey stack")
    viewer.dims.set_current_step(0, 1)
    widget = run_to_the_end(viewer, qtbot, content, stack_mode=mode)
    (result,) = shown_results(viewer)
    assert result.data.shape == shape and result.rgb and result.data.dtype == np.uint8
    assert result.name == name
    assert not warnings_among(notes), [n.message for n in notes]
    assert widget.status.value.startswith("Done")
