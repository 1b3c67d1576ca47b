"""Issue 25 on the command line: ``--result-colour style`` and ``--style-region`` (real files, real engine)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from region_cases import BAD_REGIONS

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--size", "32", "--iterations", "20", "--no-multiscale", "-q"]
PREFIX = "napari-style-transfer: error: "


@pytest.fixture
def files(tmp_path, content_image):
    """A grey PNG content and a style file whose left half is red and right half is blue (120×60 px)."""
    grey = (content_image[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    rng = np.random.default_rng(1)
    style = np.zeros((60, 120, 3), np.uint8)
    style[:, :60] = (220, 20, 20)
    style[:, 60:] = (20, 20, 220)
    style = np.clip(style + rng.integers(-15, 15, style.shape), 0, 255).astype(np.uint8)
    content = write_image(tmp_path / "grey.png", grey)
    return tmp_path, content, write_image(tmp_path / "red_blue.png", style)


def means(path) -> np.ndarray:
    return read_image(path).reshape(-1, 3).astype(float).mean(axis=0)


def test_result_colour_style_writes_rgb_from_a_grey_content(files):
    tmp, content, style = files
    assert run([str(content), str(style), "-o", str(tmp / "grey_out.png"), *FAST]) == 0
    assert read_image(tmp / "grey_out.png").ndim == 2
    assert run([str(content), str(style), "-o", str(tmp / "rgb.png"), "--result-colour", "style", *FAST]) == 0
    assert read_image(tmp / "rgb.png").shape[-1] == 3


def test_a_16_bit_grey_tiff_gives_a_16_bit_rgb_tiff(files):
    tmp, _, style = files
    grey = (np.arange(40 * 48).reshape(40, 48) % 4096).astype(np.uint16)
    tifffile.imwrite(tmp / "grey16.tif", grey)
    out = tmp / "out16.tif"
    argv = [str(tmp / "grey16.tif"), str(style), "-o", str(out), "--result-colour", "style", *FAST]
    assert run(argv) == 0
    result = tifffile.imread(out)
    assert result.dtype == np.uint16 and result.shape[-1] == 3


def test_a_grey_stack_at_full_size_in_the_styles_colours_is_an_rgb_stack(files, monkeypatch):
    tmp, _, style = files
    stack = (np.arange(4 * 38 * 48).reshape(4, 38, 48) % 251).astype(np.uint8)
    tifffile.imwrite(tmp / "stack.tif", stack, photometric="minisblack")
    out = tmp / "out.tif"
    fast = ["--size", "16", "--iterations", "2", "--no-multiscale", "-q"]
    common = [str(tmp / "stack.tif"), str(style), "--stack", "--result-colour", "style", "--full-size", *fast]
    assert run([*common, "-o", str(out)]) == 0
    assert tifffile.imread(out).shape == (4, 38, 48, 3)  # not (4, 3, 38, 48): the result is RGB

    from napari_style_transfer.engine import full_size

    counted = []  # the planes the full-size memory check is asked about, per run
    monkeypatch.setattr(full_size, "check_full_size", lambda hw, planes, dtype, *a: counted.append(planes))
    assert run([*common, "-o", str(tmp / "again.tif")]) == 0
    assert run([*common[:3], *common[5:], "-o", str(tmp / "grey.tif")]) == 0
    assert counted == [12, 4]  # 4 slices × 3 colours, then 4 grey slices


def test_style_regions_take_each_half_of_the_style_file(files):
    tmp, content, style = files
    common = [str(content), str(style), "--result-colour", "style", *FAST]
    assert run([*common, "-o", str(tmp / "left.png"), "--style-region", "0,0,60,60"]) == 0
    assert run([*common, "-o", str(tmp / "right.png"), "--style-region", "60,0,120,60"]) == 0
    red, blue = means(tmp / "left.png"), means(tmp / "right.png")
    assert red[0] > blue[0] + 15 and blue[2] > red[2] + 30, (red, blue)


@pytest.mark.parametrize(
    "extra, message",
    [
        *BAD_REGIONS,
        (["--result-colour", "style", "--preserve-colors", "luminance"], "result_colour: 'style' needs"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(files, capsys, extra, message):
    tmp, content, style = files
    assert run([str(content), str(style), "-o", str(tmp / "x.png"), *FAST, *extra]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not (tmp / "x.png").exists()
