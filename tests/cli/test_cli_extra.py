"""CLI options of issue 5: --mask/--label-styles, --tiling/--tile-size, --stack (real files, tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

FAST = ["-q", "--size", "32", "--iterations", "2", "--no-multiscale"]
PREFIX = "napari-style-transfer: error: "


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def files(tmp_path, content_image, style_image):
    labels = np.zeros(content_image.shape[:2], np.uint8)
    labels[:, :32] = 1
    labels[:, 32:] = 2
    stack = (
        np.stack([content_image[..., 1], content_image[::-1, :, 1], content_image[..., 0]]).astype(np.uint16)
        * 200
    )
    paths = {
        "tmp": tmp_path,
        "content": write_image(tmp_path / "content.png", content_image),
        "style": write_image(tmp_path / "style.png", style_image),
        "style2": write_image(tmp_path / "style2.png", style_image[::-1, ::-1].copy()),
        "labels": write_image(tmp_path / "labels.png", labels),
        "rgbmask": write_image(tmp_path / "rgbmask.png", np.zeros((43, 64, 3), np.uint8)),
        "smalllabels": write_image(tmp_path / "small.png", np.zeros((10, 10), np.uint8)),
    }
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    paths["stack"] = tmp_path / "stack.tif"
    return paths


def test_mask_with_label_styles_keeps_unmapped_labels(files, capsys):
    out = files["tmp"] / "masked.png"
    argv = [
        str(files["content"]),
        str(files["style"]),
        str(files["style2"]),
        "-o",
        str(out),
        "--mask",
        str(files["labels"]),
        "--label-styles",
        "1:0",
        "-q",
        "--size",
        "64",
        "--iterations",
        "8",
        "--no-multiscale",
    ]
    assert run(argv) == 0, capsys.readouterr().err
    result = read_image(out).astype(float)
    content = read_image(files["content"]).astype(float)
    assert np.abs(result[:, 40:] - content[:, 40:]).mean() < 1  # label 2 is not mapped: content kept
    assert np.abs(result[:, :26] - content[:, :26]).mean() > 3


def test_forced_tiling_writes_the_full_size_and_says_so(files, capsys):
    out = files["tmp"] / "tiled.png"
    argv = [
        str(files["content"]),
        str(files["style"]),
        "-o",
        str(out),
        "--tiling",
        "on",
        "--tile-size",
        "32",
        "--size",
        "64",
        "-q",
        "--iterations",
        "1",
        "--no-multiscale",
    ]
    assert run(argv) == 0
    err = capsys.readouterr().err
    assert "tiling: forced" in err and "tiles of 32 px" in err
    assert read_image(out).shape == (43, 64, 3)


def test_stack_tiff_is_stylised_slice_by_slice(files, capsys):
    out = files["tmp"] / "out_stack.tif"
    assert (
        run(
            [str(files["stack"]), str(files["style"]), "-o", str(out), "--stack", "--slices", "0", "2", *FAST]
        )
        == 0
    ), capsys.readouterr().err
    result = tifffile.imread(out)
    stack = tifffile.imread(files["stack"])
    assert result.shape == (3, 22, 32) and result.dtype == np.uint16
    out2 = files["tmp"] / "out_stack2.tif"
    assert (
        run([str(files["stack"]), str(files["style"]), "-o", str(out2), "--stack", "--no-coherence", *FAST])
        == 0
    )
    out3 = files["tmp"] / "out_stack3.tif"
    assert (
        run(
            [
                str(files["stack"]),
                str(files["style"]),
                "-o",
                str(out3),
                "--stack",
                "--motion",
                "none",
                "--consistency-weight",
                "0.5",
                *FAST,
            ]
        )
        == 0
    )
    assert tifffile.imread(out3).shape == (3, 22, 32)
    assert tifffile.imread(out2).shape == (3, 22, 32)
    assert stack.shape == (3, 43, 64)


BAD = [
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--label-styles", "1:0"], "--label-styles needs --mask"),
    (
        ["{content}", "{style}", "-o", "{tmp}/o.png", "--mask", "{labels}", "--label-styles", "1-0"],
        "--label-styles: '1-0' must be LABEL:STYLE",
    ),
    (
        ["{content}", "{style}", "-o", "{tmp}/o.png", "--mask", "{labels}", "--label-styles", "1:3"],
        "label_styles: must map labels to style indices 0 to 0",
    ),
    (
        ["{content}", "{style}", "-o", "{tmp}/o.png", "--mask", "{smalllabels}"],
        "content_mask: shape (10, 10) does not match",
    ),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--mask", "{rgbmask}"], "is a colour image"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--mask", "{tmp}/missing.png"], "file not found"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--tile-size", "8"], "tile_size: must be"),
    (
        ["{content}", "{style}", "-o", "{tmp}/o.png", "--tile-size", "64", "--tile-overlap", "40"],
        "tile_overlap: must be",
    ),
    (
        ["{stack}", "{style}", "-o", "{tmp}/o.png", "--stack"],
        "must be a .tif or .tiff file for a --stack result",
    ),
    (["{stack}", "{style}", "-o", "{tmp}/o.tif"], "--stack"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--slices", "1"], "--slices: only applies with --stack"),
    (
        ["{stack}", "{style}", "-o", "{tmp}/o.tif", "--stack", "--slices", "7"],
        "slices: must be slice numbers from 0 to 2",
    ),
    (
        ["{stack}", "{style}", "-o", "{tmp}/o.tif", "--stack", "--consistency-weight", "-1"],
        "consistency_weight: must be",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_error(argv, message, files, capsys):
    args = [a.format(**files) for a in argv]
    code = run([*FAST, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err, err
    assert len(err.splitlines()) == 1 and err.startswith(PREFIX)


def test_bad_tiling_choice_is_an_argparse_error(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(
            [
                str(files["content"]),
                str(files["style"]),
                "-o",
                str(files["tmp"] / "o.png"),
                "--tiling",
                "sometimes",
            ]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--tiling" in err and "sometimes" in err and len(err.splitlines()) == 1


def test_speed_options_reach_the_config():
    """--precision defaults to the engine's 'auto'; --compile switches torch.compile on."""
    from napari_style_transfer.cli import build_parser, config_from_args

    parser = build_parser()
    default = config_from_args(parser.parse_args(["c.png", "s.png", "-o", "o.png"]))
    assert default.precision == "auto" and default.compile is False
    tuned = config_from_args(
        parser.parse_args(["c.png", "s.png", "-o", "o.png", "--compile", "--precision", "fp32"])
    )
    assert tuned.compile is True and tuned.precision == "fp32"
