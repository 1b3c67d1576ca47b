"""``batch --style-region``: a style's statistics from one rectangle of its file, as in a single run
(issue 25), through the real ``batch`` command and its embedded Dask cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest
from region_cases import BAD_REGIONS

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

pytest.importorskip("distributed")

FAST = [
    *("--size", "32", "--iterations", "20", "--no-multiscale", "--precision", "fp32"),
    *("--workers", "1", "--threads-per-worker", "1", "--result-colour", "style", "-q"),
]
PREFIX = "napari-style-transfer batch: error: "


@pytest.fixture
def files(tmp_path, content_image):
    """A folder with one grey PNG, and a style file whose left half is red and right half blue (120×60 px)."""
    folder = tmp_path / "in"
    folder.mkdir()
    grey = (content_image[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    write_image(folder / "grey.png", grey)
    rng = np.random.default_rng(1)
    style = np.zeros((60, 120, 3), np.uint8)
    style[:, :60] = (220, 20, 20)
    style[:, 60:] = (20, 20, 220)
    style = np.clip(style + rng.integers(-15, 15, style.shape), 0, 255).astype(np.uint8)
    return tmp_path, folder, write_image(tmp_path / "red_blue.png", style)


def statuses(out) -> list[str]:
    return [e["status"] for e in json.loads((out / "batch-report.json").read_text())["items"]]


def test_the_region_decides_the_colours_and_the_resume_key(files):
    tmp, folder, style = files
    out = tmp / "out"
    common = ["batch", str(folder), "--style", str(style), "-o", str(out), *FAST]
    assert run([*common, "--style-region", "0,0,60,60"]) == 0
    red = read_image(out / "grey.png").reshape(-1, 3).astype(float).mean(axis=0)
    assert run([*common, "--style-region", "60,0,120,60"]) == 0
    assert statuses(out) == ["done"]  # another region: other settings, so not skipped as made already
    blue = read_image(out / "grey.png").reshape(-1, 3).astype(float).mean(axis=0)
    assert red[0] > blue[0] + 15 and blue[2] > red[2] + 30, (red, blue)
    report = json.loads((out / "batch-report.json").read_text())
    assert report["settings"]["guidance"]["style_regions"] == [[60.0, 0.0, 120.0, 60.0]]


@pytest.mark.parametrize("extra, message", BAD_REGIONS)
def test_a_bad_region_is_one_line_and_exit_2(files, capsys, extra, message):
    tmp, folder, style = files
    assert run(["batch", str(folder), "--style", str(style), "-o", str(tmp / "out"), *FAST, *extra]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(PREFIX) and message in lines[0], err
    assert not (tmp / "out").exists()
