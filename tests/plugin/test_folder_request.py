"""A folder batch's request (Qt-free): what Run refuses from the paths alone, each in one sentence,
and what the worker thread refuses once it lists the images (a pattern matching nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from napari_style_transfer.batch import BatchError
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.folder_request import FolderRequest, folder_failure, prepare_folder
from napari_style_transfer.plugin.run_request import RunChoices
from napari_style_transfer.plugin.sources import StyleFile

PARAMS = dict(size=32, iterations=1, multiscale=False, preview_every=0, device="cpu")


def one_sentence(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text and text.endswith(".") and text.count(". ") == 0


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path, RunChoices]:
    """An input folder with one PNG, an output folder's name, and a style file."""
    images = tmp_path / "in"
    images.mkdir()
    PILImage.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(images / "a.png")
    style = tmp_path / "style.png"
    PILImage.fromarray(np.full((24, 24, 3), 200, np.uint8)).save(style)
    return images, tmp_path / "out", RunChoices(None, [(StyleFile(style), 1.0)], dict(PARAMS))


def test_a_good_request_keeps_the_cli_options_and_protects_the_style_file(folders):
    images, out, choices = folders
    request = prepare_folder(str(images), str(out), choices, ext="tif", open_first=2, overwrite=True)
    assert isinstance(request, FolderRequest) and request.report_path == out / "batch-report.json"
    options = request.options()
    assert options.out_dir == out and options.ext == "tif" and options.overwrite and options.in_process
    assert options.protect == [("style", str(images.parent / "style.png"))]
    assert request.resolve() == [images / "a.png"]  # the CLI's own listing (worker thread)
    assert not out.exists()  # nothing made before Run's worker starts


@pytest.mark.parametrize(
    ("source", "out", "open_first", "message"),
    [
        ("missing", "out", 4, "Input folder: {tmp}/missing does not exist; choose a folder of images"),
        ("", "out", 4, "Input folder: choose a folder of images"),
        ("in", "", 4, "Output folder: choose the folder"),
        ("in", "style.png", 4, "Output folder: {tmp}/style.png is a file; choose a folder"),
        ("in", "out", -1, "Open first: the number of results must be 0 or more, got -1."),
    ],
)
def test_run_refuses_bad_paths_and_counts_in_one_sentence(
    folders, tmp_path, source, out, open_first, message
):
    _, _, choices = folders
    with pytest.raises(UserError) as caught:
        prepare_folder(
            str(tmp_path / source) if source else "",
            str(tmp_path / out) if out else "",
            choices,
            open_first=open_first,
        )
    text = str(caught.value)
    assert text.startswith(message.format(tmp=tmp_path)) and one_sentence(text), text


def test_a_pattern_matching_nothing_is_refused_in_one_sentence_when_listed(folders, tmp_path):
    _, out, choices = folders
    request = prepare_folder(str(tmp_path / "in" / "*.tif"), str(out), choices)  # a pattern: not listed here
    with pytest.raises(UserError) as caught:
        request.resolve()
    text = str(caught.value)
    assert text == f"Input folder: pattern '{tmp_path / 'in' / '*.tif'}' matches no image." and one_sentence(
        text
    )


def test_the_engines_guard_refusal_becomes_the_widgets_sentence(folders):
    images, out, choices = folders
    request = prepare_folder(str(images), str(out), choices)
    guard = BatchError(
        f"OUT_DIR: {images}/a.png is the input file ({images}/a.png); writing there would destroy it — "
        "choose another OUT_DIR"
    )
    error = folder_failure(guard, request)
    assert isinstance(error, UserError) and one_sentence(str(error))
    assert str(error).startswith(f"Output folder: {images}/a.png is the input file")
    assert str(error).endswith("choose another output folder.")
    failed = request.failure_text(["a.png", "b.tif", "c.jpg"], 20)
    assert failed == f"3 of 20 images failed: a.png, b.tif, c.jpg — see {out / 'batch-report.json'}."
