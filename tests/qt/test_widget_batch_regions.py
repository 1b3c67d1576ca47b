"""The widget's batches with a style region from a Shapes layer, in a real napari viewer on the
real in-process Dask worker: the region decides which part of the style the results take (their
colours), the results record it, and a folder batch's resume follows it. The canvas with 'every
slice' is refused in its own sentence, and the run that sentence points to works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity
from PIL import Image as PILImage
from widget_helpers import open_widget

from napari_style_transfer.plugin.composite import CANVAS

pytest.importorskip("distributed")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=2, preview_every=0, multiscale=False, device="cpu", precision="fp32")
TIMEOUT_MS = 180_000


def red_blue(rows: int = 32, cols: int = 64) -> np.ndarray:
    """A style whose left half is red and right half blue, with a little texture."""
    rng = np.random.default_rng(1)
    style = np.zeros((rows, cols, 3), np.uint8)
    style[:, : cols // 2] = (220, 20, 20)
    style[:, cols // 2 :] = (20, 20, 220)
    return np.clip(style + rng.integers(-15, 15, style.shape), 0, 255).astype(np.uint8)


def grey(seed: int = 0) -> np.ndarray:
    """A grey RGB content (equal channels) with some texture."""
    plane = np.random.default_rng(seed).integers(60, 200, (32, 32), dtype=np.uint8)
    return np.repeat(plane[..., None], 3, axis=-1)


def run_to_end(qtbot, widget) -> None:
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def warnings(notes):
    return [n for n in notes if n.severity >= NotificationSeverity.WARNING]


def redness(data) -> float:
    """Mean red minus mean blue of an RGB result."""
    rgb = np.asarray(data, float).reshape(-1, 3)
    return float(rgb[:, 0].mean() - rgb[:, 2].mean())


def test_a_layer_batch_takes_each_style_region_and_records_it(qtbot, viewer, notes):
    first = viewer.add_image(grey(0), name="first", rgb=True)
    second = viewer.add_image(grey(1), name="second", rgb=True)
    style = viewer.add_image(red_blue(), name="red blue", rgb=True)
    red_area = viewer.add_shapes(name="red area")
    red_area.add_rectangles(np.array([[-0.4, -0.4], [31.4, 31.4]]))  # the style's left (red) half
    blue_area = viewer.add_shapes(name="blue area")
    blue_area.add_rectangles(np.array([[-0.4, 31.6], [31.4, 63.4]]))  # its right (blue) half
    widget = open_widget(viewer, **{**FAST, "iterations": 20, "style_scale": 1.0})
    widget.batch.choice.value = "layers"
    row = widget.style_rows[0]
    row.layer.value = style
    row.region.value = red_area
    viewer.layers.selection = {first, second, style, red_area}  # styles and Shapes are left out
    run_to_end(qtbot, widget)
    assert warnings(notes) == []
    reds = {layer.name: layer for layer in viewer.layers if layer.name.endswith("stylised")}
    assert sorted(reds) == ["first stylised", "second stylised"]
    for layer in reds.values():
        assert layer.metadata["style_regions"] == ["red area"]
        assert layer.metadata["batch"] == {"mode": "layers", "items": 2}
    assert widget.status.value.startswith("Batch done: 2 done of 2")

    row.region.value = blue_area
    viewer.layers.selection = {first}
    run_to_end(qtbot, widget)
    blue = viewer.layers[-1]
    assert blue.metadata["style_regions"] == ["blue area"]
    red = reds["first stylised"]
    assert redness(red.data) > 10 and redness(blue.data) < -10, (redness(red.data), redness(blue.data))


def test_every_slice_takes_the_region_and_the_stack_records_it(qtbot, viewer, notes):
    viewer.add_image(np.stack([grey(i)[..., 0] for i in range(2)]), name="stack")
    style = viewer.add_image(red_blue(), name="red blue", rgb=True)
    area = viewer.add_shapes(name="red area")
    area.add_rectangles(np.array([[-0.4, -0.4], [31.4, 31.4]]))
    widget = open_widget(viewer, **{**FAST, "style_scale": 1.0})
    widget.batch.choice.value = "slices"
    widget.style_rows[0].layer.value = style
    widget.style_rows[0].region.value = area
    run_to_end(qtbot, widget)
    assert warnings(notes) == []
    result = viewer.layers["stack stylised"]
    assert result.data.shape[0] == 2 and result.data[1].any()
    assert result.metadata["style_regions"] == ["red area"] and result.metadata["done"]


def statuses(out: Path) -> list[str]:
    return [e["status"] for e in json.loads((out / "batch-report.json").read_text())["items"]]


def test_a_folder_batch_takes_the_region_and_resumes_by_it(qtbot, viewer, notes, tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    PILImage.fromarray(grey(0)).save(images / "a.png")
    style = viewer.add_image(red_blue(), name="red blue", rgb=True)
    area = viewer.add_shapes(name="red area")
    area.add_rectangles(np.array([[-0.4, -0.4], [31.4, 31.4]]))
    widget = open_widget(viewer, **{**FAST, "style_scale": 1.0})
    widget.style_rows[0].layer.value = style
    widget.style_rows[0].region.value = area
    widget.batch.choice.value = "folder"
    folder = widget.batch.folder
    out = tmp_path / "out"
    folder.input.value, folder.output.value, folder.open_first.value = str(images), str(out), 1
    run_to_end(qtbot, widget)
    assert warnings(notes) == [] and statuses(out) == ["done"]
    (result,) = [layer for layer in viewer.layers if layer.name.endswith("stylised")]
    assert result.metadata["style_regions"] == ["red area"]
    run_to_end(qtbot, widget)
    assert statuses(out) == ["skipped"]  # the same region: made already
    area.data = [np.array([[-0.4, 31.6], [31.4, 31.6], [31.4, 63.4], [-0.4, 63.4]])]  # another region
    run_to_end(qtbot, widget)
    assert statuses(out) == ["done"]


def test_every_slice_of_the_canvas_is_refused_in_its_own_sentence_and_stack_all_slices_runs_it(
    qtbot, viewer, notes
):
    viewer.add_image(np.random.default_rng(0).random((2, 16, 20)).astype(np.float32), name="cells")
    viewer.add_image(red_blue(), name="red blue", rgb=True)
    widget = open_widget(viewer, **FAST)
    widget.content_layer.value = CANVAS
    widget.batch.choice.value = "slices"
    assert widget.run() is False
    assert str(warnings(notes)[-1].message) == (
        "Batch 'every slice' takes one image layer as the content, not the canvas; to stylise every "
        "slice of the canvas, set Stack to 'all slices' and turn Batch off."
    )
    widget.batch.choice.value = None  # what the sentence says
    widget.stack_mode.value = "all"
    run_to_end(qtbot, widget)
    result = viewer.layers["canvas stylised"]
    assert result.data.shape[:2] == (2, 26) and result.metadata["done"]
