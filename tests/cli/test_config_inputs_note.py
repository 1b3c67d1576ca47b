"""``--config saved.png`` on a result saved from napari (File ▸ Save Layer) says what the saved run had
besides settings: the style regions (and the ``--style-region`` that does the same), the canvas, a
mask. Notes only: the run goes on and exits 0. Real files written by the real writer, the real CLI
and engine on tiny images."""

from __future__ import annotations

import numpy as np
import pytest

from napari_style_transfer._writer import write_result
from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--size", "32", "--iterations", "2", "--no-multiscale", "-q"]
PROG = "napari-style-transfer"
REGION_1 = (
    "note: the saved run took style 1's look from 8.5,4.5,40.5,26.5 of its style image (Shapes 'area'); "
    "add --style-region 8.5,4.5,40.5,26.5 to do the same"
)
REGION_2 = (
    "note: the saved run took style 2's look from shapes within 0,0,10.25,12 of its style image (Shapes "
    "'blobs'); add --style-region 0,0,10.25,12 as style 2's (one --style-region per STYLE, in order; '-': "
    "the whole image) to take that whole box"
)
CANVAS = (
    "note: the saved run's content was the canvas of layers 'nuclei', 'actin' as napari drew them "
    "(colormaps, contrast limits, blending); the command line draws no layers: it takes {content} as it is"
)
MASK = (
    "note: the saved run was masked by the Labels layer 'cells'; add --mask LABELS_FILE --label-styles "
    "1:0 2:1 (that layer saved as a label image) to do the same"
)
METADATA = {
    "napari-style-transfer": "1",
    "content_layer": "canvas",
    "style_layers": ["paint", "paper"],
    "settings": {"iterations": 5, "multiscale": False},
    "canvas": {
        "layers": [{"name": "nuclei", "blending": "additive"}, {"name": "actin", "blending": "additive"}]
    },
    "mask_layer": "cells",
    "label_styles": {"1": 0, "2": 1},
    "input_identities": {"mask": {"kind": "Labels", "ndim": 2, "rgb": False}},
    "style_regions": ["area", "blobs"],
    "style_region_bounds": [
        {"bounds": [8.5, 4.5, 40.5, 26.5], "exact": True},
        {"bounds": [0.0, 0.0, 10.25, 12.0], "exact": False},
    ],
}


@pytest.fixture
def files(tmp_path, content_image):
    """The content, two styles, a label image of the content, and a result saved from napari."""
    rng = np.random.default_rng(2)
    styles = [
        write_image(tmp_path / f"{name}.png", rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
        for name in ("paint", "paper")
    ]
    labels = np.zeros(content_image.shape[:2], np.uint8)
    labels[:, 32:] = 1
    saved = tmp_path / "saved.png"
    assert write_result(str(saved), np.zeros((8, 8, 3), np.uint8), {"rgb": True, "metadata": METADATA})
    content = write_image(tmp_path / "cat.png", content_image)
    return tmp_path, content, styles, write_image(tmp_path / "labels.png", labels), saved


def notes(err: str, prog: str = PROG) -> list[str]:
    return [line.removeprefix(f"{prog}: ") for line in err.splitlines() if line.startswith(f"{prog}: note:")]


def test_config_on_a_saved_result_notes_its_regions_canvas_and_mask(files, capsys):
    tmp, content, styles, labels, saved = files
    argv = [str(content), *map(str, styles), "--config", str(saved), *FAST]
    assert run([*argv, "-o", str(tmp / "out.png")]) == 0
    assert max(read_image(tmp / "out.png").shape[:2]) == 32  # the run went on as usual
    found = notes(capsys.readouterr().err)
    assert found == [REGION_1, REGION_2, CANVAS.format(content="CONTENT, one image file,"), MASK]

    given = ["--style-region", "1,1,20,20", "--mask", str(labels), "--label-styles", "1:0"]
    assert run([*argv, *given, "-o", str(tmp / "again.png")]) == 0
    assert (tmp / "again.png").is_file()
    assert notes(capsys.readouterr().err) == [CANVAS.format(content="CONTENT, one image file,")]


def test_a_saved_result_without_these_inputs_gives_no_note(files, capsys):
    tmp, content, styles, _, _ = files
    plain = {
        key: METADATA[key] for key in ("napari-style-transfer", "content_layer", "style_layers", "settings")
    }
    old = tmp / "old.png"
    assert write_result(str(old), np.zeros((8, 8, 3), np.uint8), {"rgb": True, "metadata": plain})
    assert run([str(content), str(styles[0]), "--config", str(old), *FAST, "-o", str(tmp / "out.png")]) == 0
    assert notes(capsys.readouterr().err) == []


def test_batch_config_notes_too(files, capsys):
    pytest.importorskip("distributed")
    tmp, content, styles, _, saved = files
    folder = tmp / "in"
    folder.mkdir()
    content.rename(folder / content.name)
    batch = [*FAST, "--workers", "1", "--threads-per-worker", "1", "--precision", "fp32"]
    argv = ["batch", str(folder), "--style", *map(str, styles), "--config", str(saved), *batch]
    assert run([*argv, "-o", str(tmp / "out")]) == 0
    assert (tmp / "out" / "cat.png").is_file()
    mask = "note: the saved run was masked by the Labels layer 'cells'; a batch takes no mask: each image is stylised whole"
    canvas = CANVAS.format(content="each INPUT, an image file,")
    assert notes(capsys.readouterr().err, f"{PROG} batch") == [REGION_1, REGION_2, canvas, mask]


def test_a_cli_result_records_its_region_and_mask_for_the_next_config(files, capsys):
    tmp, content, styles, labels, _ = files
    first = tmp / "first.png"
    given = ["--style-region", "2,3,20.5,16", "--mask", str(labels), "--label-styles", "1:0"]
    assert run([str(content), str(styles[0]), *given, *FAST, "-o", str(first)]) == 0
    capsys.readouterr()
    assert (
        run([str(content), str(styles[0]), "--config", str(first), *FAST, "-o", str(tmp / "again.png")]) == 0
    )
    assert notes(capsys.readouterr().err) == [
        "note: the saved run took style 1's look from 2,3,20.5,16 of its style image; "
        "add --style-region 2,3,20.5,16 to do the same",
        "note: the saved run was masked by the label file 'labels.png'; add --mask LABELS_FILE "
        "--label-styles 1:0 (that file) to do the same",
    ]


def test_settings_that_start_from_an_image_ask_for_it_or_a_fresh_start(files, capsys):
    tmp, content, styles, _, _ = files
    saved = tmp / "continued.json"
    saved.write_text('{"init": "image", "iterations": 2}')
    argv = [str(content), str(styles[0]), "--config", str(saved), *FAST]
    assert run([*argv, "-o", str(tmp / "out.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give it with --init-image FILE, or start afresh with --init content" in err[0]
    assert run([*argv, "--init", "content", "-o", str(tmp / "out.png")]) == 0
    assert run([*argv, "--init-image", str(content), "-o", str(tmp / "again.png")]) == 0
