"""Command-line tests: real files, real engine, tiny sizes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

FAST = ["--size", "48", "--iterations", "3", "--no-multiscale", "-q"]


@pytest.fixture
def files(tmp_path, content_image, style_image):
    content = write_image(tmp_path / "content.png", content_image)
    style = write_image(tmp_path / "style.jpg", style_image)
    return tmp_path, content, style


def test_cli_writes_png_with_progress_and_intermediates(files, capsys):
    tmp, content, style = files
    out = tmp / "out.png"
    code = run(
        [
            str(content),
            str(style),
            "-o",
            str(out),
            "--size",
            "48",
            "--iterations",
            "4",
            "--no-multiscale",
            "--save-every",
            "2",
        ]
    )
    assert code == 0
    result = read_image(out)
    assert result.dtype == np.uint8 and max(result.shape[:2]) == 48 and result.shape[-1] == 3
    assert (tmp / "out.step00002.png").exists()
    assert not (tmp / "out.step00004.png").exists()  # the last step is the output itself
    err = capsys.readouterr().err
    assert "loss=" in err and "4/4" in err


def test_cli_16bit_tiff_round_trip_and_two_styles(files, style_image):
    tmp, content, style = files
    gray16 = (np.linspace(0, 1, 40 * 56).reshape(40, 56) ** 2 * 60000).astype(np.uint16)
    tifffile.imwrite(tmp / "gray16.tif", gray16)
    out = tmp / "out16.tif"
    code = run(
        [
            str(tmp / "gray16.tif"),
            str(style),
            str(content),
            "-o",
            str(out),
            "--style-blend-weights",
            "2",
            "1",
            *FAST,
        ]
    )
    assert code == 0
    result = tifffile.imread(out)
    assert result.dtype == np.uint16 and result.ndim == 2 and max(result.shape) == 48
    assert result.max() > 20000  # still uses the 16-bit range


def test_module_entry_point_runs(files):
    tmp, content, style = files
    out = tmp / "m.jpg"
    proc = subprocess.run(
        [sys.executable, "-m", "napari_style_transfer", str(content), str(style), "-o", str(out), *FAST],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_image(out).shape[-1] == 3


BAD = [
    (["missing.png", "{style}", "-o", "{tmp}/o.png"], "file not found"),
    (["{garbage}", "{style}", "-o", "{tmp}/o.png"], "cannot read image"),
    (["{truncated}", "{style}", "-o", "{tmp}/o.png"], "cannot read image"),
    (["{content}", "{style}", "-o", "{tmp}/nofolder/o.png"], "folder"),
    (["{content}", "{style}", "-o", "{tmp}/o.bmp"], "must end in one of"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--iterations", "0"], "iterations: must be"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--style-weight", "-3"], "style_weight: must be"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--style-layers", "relu9_1"], "style_layers: must be"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--device", "gpu"], "device: must be"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--save-every", "-1"], "--save-every"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--init", "image"], "--init-image"),
    (["{content}", "{style}", "-o", "{tmp}/o.png", "--style-blend-weights", "1", "2"], "style_blend_weights"),
    (["{twochan}", "{style}", "-o", "{tmp}/o.png"], "channels"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_error_and_nonzero_exit(argv, message, files, capsys):
    tmp, content, style = files
    (tmp / "garbage.png").write_bytes(b"this is not a png")
    (tmp / "truncated.png").write_bytes(content.read_bytes()[:200])
    tifffile.imwrite(
        tmp / "twochan.tif", np.zeros((20, 20, 2), np.uint8), photometric="minisblack", planarconfig="contig"
    )
    names = {
        "tmp": tmp,
        "content": content,
        "style": style,
        "garbage": tmp / "garbage.png",
        "truncated": tmp / "truncated.png",
        "twochan": tmp / "twochan.tif",
    }
    args = [a.format(**names) for a in argv]
    code = run(["-q", "--size", "32", "--iterations", "1", "--no-multiscale", *args])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert message in err
    assert len(err.splitlines()) == 1 and err.startswith("napari-style-transfer: error: ")
    assert "Traceback" not in err


def test_argparse_errors_exit_nonzero_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "napari_style_transfer", "only_content.png"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "required" in proc.stderr
