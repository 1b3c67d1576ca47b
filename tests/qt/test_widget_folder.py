"""The widget's Batch choice "a folder…" in a real napari viewer: a real folder of PNG, TIFF and JPEG
files (and a broken one) stylised by the real batch engine on its in-process Dask worker into an
output folder with its report; the first N results as layers; resume; Stop; the guard."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from widget_helpers import open_widget as open_dock

import napari_style_transfer.plugin.folder_request as folder_request
from napari_style_transfer.batch.partials import PARTIAL_PATTERN
from napari_style_transfer.files import read_image

pytest.importorskip("distributed")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(size=32, iterations=2, preview_every=0, multiscale=False, device="cpu", precision="fp32")
TIMEOUT_MS = 240_000


@pytest.fixture
def images(tmp_path, content_image) -> Path:
    """A folder of 3 small images (PNG, TIFF, JPEG) and one broken file."""
    folder = tmp_path / "in"
    folder.mkdir()
    PILImage.fromarray(content_image).save(folder / "a.png")
    gray = (np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 37) % 4000
    tifffile.imwrite(folder / "b.tif", gray)
    PILImage.fromarray(content_image[::-1]).save(folder / "c.jpg", quality=90)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return folder


def open_widget(viewer, style_image, source: Path, out: Path, open_first: int = 4, **config):
    """The dock widget with a style layer and "a folder…" chosen, its rows filled in."""
    style = viewer.add_image(style_image, name="style", rgb=True)
    widget = open_dock(viewer, **{**FAST, **config})
    widget.style_rows[0].layer.value = style
    widget.batch.choice.value = "folder"
    folder = widget.batch.folder
    folder.input.value, folder.output.value, folder.open_first.value = str(source), str(out), open_first
    return widget


def run_to_end(qtbot, widget) -> None:
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def statuses(out: Path) -> dict[str, str]:
    report = json.loads((out / "batch-report.json").read_text(encoding="utf-8"))
    return {Path(entry["input"]).name: entry["status"] for entry in report["items"]}


def results(viewer) -> list:
    return [layer for layer in viewer.layers if layer.name.endswith("stylised")]


def test_a_folder_is_written_with_its_report_n_results_open_and_a_rerun_skips_what_is_done(
    qtbot, viewer, style_image, images, tmp_path, notes, monkeypatch
):
    listed: list[threading.Thread] = []
    expand = folder_request.expand_inputs

    def record(inputs):
        listed.append(threading.current_thread())
        return expand(inputs)

    monkeypatch.setattr(folder_request, "expand_inputs", record)
    out = tmp_path / "out"
    widget = open_widget(viewer, style_image, images, out, open_first=2)
    rows = widget.batch.folder.rows
    assert not any(row.native.isHidden() for row in rows)
    assert widget.content_layer.native.isHidden()  # the folder's images are the contents
    run_to_end(qtbot, widget)
    assert listed and threading.main_thread() not in listed  # the folder was listed off the GUI thread
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.tif", "batch-report.json", "c.jpg"]
    assert statuses(out) == {"a.png": "done", "b.tif": "done", "broken.png": "failed", "c.jpg": "done"}
    opened = results(viewer)
    assert len(opened) == 2  # the first N results, not the whole folder
    for layer in opened:
        output = Path(layer.metadata["batch"]["output"])
        np.testing.assert_array_equal(layer.data, read_image(output))  # the written file, as written
        assert layer.metadata["done"] and layer.metadata["config"]["size"] == 32
    assert read_image(out / "b.tif").dtype == np.uint16 and read_image(out / "a.png").shape == (22, 32, 3)
    report = out / "batch-report.json"
    errors = [n for n in notes if n.severity == "error"]
    assert [e.message for e in errors] == [f"1 of 4 images failed: broken.png — see {report}."]
    assert widget.status.value.startswith("Batch done: 3 done, 1 failed of 4")

    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != report.name}
    notes.clear()
    run_to_end(qtbot, widget)  # the same settings: every finished image is kept
    assert statuses(out) == {
        "a.png": "skipped",
        "b.tif": "skipped",
        "broken.png": "failed",
        "c.jpg": "skipped",
    }
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != report.name} == written
    assert len(results(viewer)) == 2  # nothing new was made, nothing new is opened
    assert widget.status.value.startswith("Batch done: 0 done, 3 skipped, 1 failed of 4")
    assert [n.message for n in notes if n.severity == "error"] == [
        f"1 of 4 images failed: broken.png — see {report}."
    ]
    widget.batch.choice.value = None
    assert all(row.native.isHidden() for row in rows)
    assert not widget.content_layer.native.isHidden()


def test_stop_keeps_the_finished_files_and_leaves_no_partial_one(qtbot, viewer, style_image, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    base = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    for i in range(5):
        PILImage.fromarray(np.roll(base, 4 * i, axis=1)).save(folder / f"img{i}.png")
    out = tmp_path / "out"
    widget = open_widget(viewer, style_image, folder, out, open_first=0, iterations=40)
    assert widget.run()
    qtbot.waitUntil(lambda: widget.batch.folder.active.counts.get("done", 0) >= 1, timeout=TIMEOUT_MS)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    status = statuses(out)
    done = sorted(name for name, s in status.items() if s == "done")
    assert 1 <= len(done) < 5 and set(status.values()) == {"done", "cancelled"}
    assert sorted(p.name for p in out.glob("*.png")) == done  # every finished file, nothing else
    assert not list(out.glob(PARTIAL_PATTERN))
    for name in done:
        assert read_image(out / name).shape == (24, 32, 3)  # whole files
    assert results(viewer) == []  # 0: no layers
    assert widget.status.value.startswith(f"Batch stopped: {len(done)} done, {5 - len(done)} cancelled of 5")


def test_the_input_folder_as_output_with_the_same_format_is_refused_in_one_notification(
    qtbot, viewer, style_image, images, notes
):
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    widget = open_widget(viewer, style_image, images, images)
    run_to_end(qtbot, widget)
    errors = [n for n in notes if n.severity == "error"]
    assert len(errors) == 1, [e.message for e in errors]
    message = errors[0].message
    assert message.startswith("Output folder: ") and "is the input file" in message
    assert message.endswith("choose another output folder.") and "\n" not in message
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before  # nothing changed, nothing added
    assert results(viewer) == [] and widget.status.value.startswith("Batch failed: Output folder: ")
