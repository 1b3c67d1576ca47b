"""The CLI on bad input: every failure is one line on stderr, a non-zero exit and no traceback.

Complements tests/cli/test_cli.py (missing/garbage/truncated content, a few bad options) with
the cases of docs/reliability.md. In-process through ``cli.run`` (argparse's own errors
raise SystemExit(2)); tiny sizes, one iteration.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
import torch

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

FAST = ["-q", "--size", "32", "--iterations", "1", "--no-multiscale"]
PREFIX = "napari-style-transfer: error: "


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def files(tmp_path, content_image, style_image):
    paths = {
        "tmp": tmp_path,
        "content": write_image(tmp_path / "content.png", content_image),
        "style": write_image(tmp_path / "style.png", style_image),
    }
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notatiff.tif").write_text("hello")
    jpeg = write_image(tmp_path / "photo.jpg", content_image).read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "weights.pth").write_bytes(b"\x80\x02 not a torch file")
    tifffile.imwrite(tmp_path / "complex.tif", np.ones((20, 20), np.complex64))
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((5, 20, 20), np.uint8), photometric="minisblack")
    tifffile.imwrite(
        tmp_path / "five.tif",
        np.zeros((20, 20, 5), np.uint8),
        photometric="minisblack",
        planarconfig="contig",
    )
    for name in ("empty", "notatiff", "truncated", "folder", "a_file", "weights", "complex", "stack", "five"):
        paths[name] = next(tmp_path.glob(f"{name}*"))
    return paths


def one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(PREFIX) and "Traceback" not in err
    return err[len(PREFIX) :]


def call(argv, names):
    args = [a.format(**names) for a in argv]
    try:
        return run(args)
    except SystemExit as exc:  # argparse
        return exc.code


OUT = "{tmp}/o.png"
CASES = [
    # files
    ("missing style", ["{content}", "{tmp}/nope.jpg", "-o", OUT], "file not found"),
    (
        "missing init image",
        ["{content}", "{style}", "-o", OUT, "--init-image", "{tmp}/nope.png"],
        "file not found",
    ),
    ("content is a folder", ["{tmp}", "{style}", "-o", OUT], "is a directory"),
    ("empty file", ["{empty}", "{style}", "-o", OUT], "cannot read image"),
    ("text as TIFF", ["{content}", "{notatiff}", "-o", OUT], "cannot read image"),
    ("truncated JPEG", ["{truncated}", "{style}", "-o", OUT], "cannot read image"),
    # images the engine cannot use
    ("complex TIFF", ["{complex}", "{style}", "-o", OUT], "complex images are not supported"),
    ("3D stack", ["{stack}", "{style}", "-o", OUT], "is not a 2D image"),
    ("5 channels", ["{content}", "{five}", "-o", OUT], "has 5 channels"),
    # the output
    ("output is a folder", ["{content}", "{style}", "-o", "{folder}"], "it is a directory"),
    ("output folder is a file", ["{content}", "{style}", "-o", "{a_file}/o.png"], "a_file"),
    ("output suffix", ["{content}", "{style}", "-o", "{tmp}/o.gif"], "must end in one of"),
    # option values
    (
        "size too small",
        ["{content}", "{style}", "-o", OUT, "--size", "8"],
        "size: must be None or an integer from 16",
    ),
    ("negative size", ["{content}", "{style}", "-o", OUT, "--size", "-1"], "size: must be"),
    (
        "size not a number",
        ["{content}", "{style}", "-o", OUT, "--size", "big"],
        "argument -s/--size: invalid int value",
    ),
    ("negative iterations", ["{content}", "{style}", "-o", OUT, "--iterations", "-5"], "iterations: must be"),
    ("style scale 0", ["{content}", "{style}", "-o", OUT, "--style-scale", "0"], "style_scale: must be"),
    ("learning rate 0", ["{content}", "{style}", "-o", OUT, "--lr", "0"], "learning_rate: must be"),
    ("negative seed", ["{content}", "{style}", "-o", OUT, "--seed", "-1"], "seed: must be"),
    (
        "nan weight",
        ["{content}", "{style}", "-o", OUT, "--tv-weight", "nan"],
        "tv_weight: must be a finite number",
    ),
    ("inf weight", ["{content}", "{style}", "-o", OUT, "--content-weight", "inf"], "content_weight: must be"),
    (
        "pool layer",
        ["{content}", "{style}", "-o", OUT, "--content-layers", "pool1"],
        "content_layers: must be",
    ),
    (
        "layer weights count",
        ["{content}", "{style}", "-o", OUT, "--style-layer-weights", "1", "2"],
        "style_layer_weights: must be",
    ),
    (
        "unknown optimizer",
        ["{content}", "{style}", "-o", OUT, "--optimizer", "sgd"],
        "argument --optimizer: invalid choice",
    ),
    ("unknown option", ["{content}", "{style}", "-o", OUT, "--colour", "red"], "unrecognized arguments"),
    ("missing output", ["{content}", "{style}"], "the following arguments are required: -o/--output"),
    (
        "fp16 on the CPU",
        ["{content}", "{style}", "-o", OUT, "--precision", "fp16", "--device", "cpu"],
        "precision: 'fp16' needs a CUDA GPU",
    ),
    (
        "weights file missing",
        ["{content}", "{style}", "-o", OUT, "--weights", "{tmp}/none.pth"],
        "weights file not found",
    ),
    (
        "weights file corrupted",
        ["{content}", "{style}", "-o", OUT, "--weights", "{weights}"],
        "could not be read as a torch state dict",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_on_stderr_and_a_nonzero_exit(argv, expected, files, capsys):
    code = call([*FAST, *argv], files)
    message = one_line_error(capsys, code)
    assert expected in message
    assert not (files["tmp"] / "o.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_a_gpu(files, capsys):
    code = call([*FAST, "{content}", "{style}", "-o", OUT, "--device", "cuda"], files)
    assert "device: 'cuda' is not available on this machine" in one_line_error(capsys, code)


@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_only_output_is_refused_before_the_run(what, files, capsys, monkeypatch):
    tmp = files["tmp"]
    folder = tmp / "ro"
    folder.mkdir()
    target = folder / "o.png"
    if what == "file":
        target.write_bytes(b"old")
        target.chmod(0o444)
    folder.chmod(0o555)
    try:
        if os.access(folder if what == "folder" else target, os.W_OK):
            pytest.skip("running as root: permissions do not stop writing")
        started = []
        monkeypatch.setattr(
            "napari_style_transfer.engine.stylize_iter", lambda *a, **k: started.append(1) or iter(())
        )
        code = call([*FAST, "{content}", "{style}", "-o", str(target)], files)
        message = one_line_error(capsys, code)
        assert "cannot write" in message and ("not writable" in message or "read-only" in message)
        assert started == []  # refused before any work
    finally:
        folder.chmod(0o755)
        if target.exists():
            target.chmod(0o644)
    if what == "file":
        assert target.read_bytes() == b"old"


@pytest.mark.parametrize(
    ("shape", "dtype", "argv", "out_shape"),
    [
        ((1, 1, 3), np.uint8, ["--size", "0"], (16, 16, 3)),  # tiny: upscaled to the network's minimum
        ((3, 3), np.uint16, ["--size", "0"], (16, 16)),
        ((400, 3, 3), np.uint8, ["--size", "64"], (64, 16, 3)),  # one side tiny: stretched to 16 px
    ],
)
def test_tiny_images_are_upscaled_to_the_minimum_working_size(shape, dtype, argv, out_shape, files, capsys):
    tmp = files["tmp"]
    rng = np.random.default_rng(0)
    data = (rng.random(shape) * np.iinfo(dtype).max).astype(dtype)
    src = tmp / "tiny.tif"
    tifffile.imwrite(src, data, photometric="rgb" if len(shape) == 3 else "minisblack")
    out = tmp / "tiny_out.tif"
    code = run(
        ["-q", "--iterations", "1", "--no-multiscale", *argv, str(src), str(files["style"]), "-o", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    result = read_image(out)
    assert result.shape == out_shape and result.dtype == dtype


def test_nan_and_inf_in_a_float_tiff_give_a_finite_result(files, capsys):
    tmp = files["tmp"]
    data = np.random.default_rng(1).random((24, 30)).astype(np.float32) * 500 - 100
    data[0, :5], data[1, :5], data[2, :5] = np.nan, np.inf, -np.inf
    tifffile.imwrite(tmp / "nan.tif", data)
    before = tifffile.imread(tmp / "nan.tif")
    code = run([*FAST, str(tmp / "nan.tif"), str(files["style"]), "-o", str(tmp / "nan_out.tif")])
    assert code == 0, capsys.readouterr().err
    result = tifffile.imread(tmp / "nan_out.tif")
    assert result.dtype == np.float32 and np.isfinite(result).all()
    np.testing.assert_array_equal(tifffile.imread(tmp / "nan.tif"), before)  # the input file is untouched


# --- issue 14: cases the first round missed -----------------------------------------------------------


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """State dicts that torch loads but the network cannot use: a wrong shape, a NaN."""
    from napari_style_transfer.engine.vgg import load_embedded_state_dict

    folder = tmp_path_factory.mktemp("weights")
    state = load_embedded_state_dict()
    torch.save({**state, "0.weight": torch.zeros(64, 3, 5, 5)}, folder / "shape.pth")
    torch.save(
        {**state, "5.weight": state["5.weight"].clone().index_fill_(0, torch.tensor([0]), float("nan"))},
        folder / "nan.pth",
    )
    (folder / "a_folder").mkdir()
    return folder


ROUND2 = [
    # stack-only options are refused without --stack, like --slices and --rgb
    (
        "consistency weight nan without --stack",
        ["--consistency-weight", "nan"],
        "--consistency-weight: only applies with --stack",
    ),
    (
        "consistency weight without --stack",
        ["--consistency-weight", "0.5"],
        "--consistency-weight: only applies with --stack",
    ),
    ("motion without --stack", ["--motion", "none"], "--motion: only applies with --stack"),
    (
        "no-coherence without --stack",
        ["--no-coherence"],
        "--coherence/--no-coherence: only applies with --stack",
    ),
    ("coherence without --stack", ["--coherence"], "--coherence/--no-coherence: only applies with --stack"),
    ("rgb without --stack", ["--no-rgb"], "--rgb/--no-rgb: only applies with --stack"),
    (
        "motion with --no-coherence",
        ["--stack", "--no-coherence", "--motion", "none"],
        "--motion: only applies with --coherence",
    ),
    ("mask feather without --mask", ["--mask-feather", "2"], "--mask-feather: only applies with --mask"),
    # a start image that would be ignored
    (
        "init image with --init content",
        ["--init", "content", "--init-image", "{style}"],
        "--init-image: only applies with --init image",
    ),
    (
        "init image with --init noise",
        ["--init", "noise", "--init-image", "{style}"],
        "--init-image: only applies with --init image",
    ),
    # weights
    ("weights is a directory", ["--weights", "{weights}/a_folder"], "a_folder is a directory"),
    (
        "weights of the wrong shape",
        ["--weights", "{weights}/shape.pth"],
        "0.weight (conv1_1) has shape (64, 3, 5, 5), expected (64, 3, 3, 3)",
    ),
    (
        "weights with NaN",
        ["--weights", "{weights}/nan.pth"],
        "5.weight (conv2_1) holds NaN or infinite values",
    ),
    # a weight so large the loss overflows: the real cause, not the learning rate
    (
        "style weight 1e308",
        ["--style-weight", "1e308"],
        "the weighted loss overflowed to infinity although every loss term is finite",
    ),
    (
        "style weight 1e308 with adam",
        ["--optimizer", "adam", "--style-weight", "1e308"],
        "so a loss weight is too large",
    ),
    # label → style mappings that would silently return the content
    (
        "label absent from the mask",
        ["--mask", "{labels}", "--label-styles", "7:0"],
        "label_styles: label 7 is not in the mask (its labels: 0, 1)",
    ),
    (
        "all-zero mask",
        ["--mask", "{zeros}"],
        "content_mask: holds no non-zero label, so nothing would be stylised",
    ),
    (
        "all-zero mask with a mapping",
        ["--mask", "{zeros}", "--label-styles", "1:0"],
        "label 1 is not in the mask (its labels: 0)",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in ROUND2], ids=[c[0] for c in ROUND2])
def test_round_two_cases_are_one_line_before_or_instead_of_a_silent_result(
    argv, expected, files, weight_files, capsys
):
    tmp = files["tmp"]
    labels = np.zeros((43, 64), np.uint8)
    labels[:, :20] = 1
    names = {
        **files,
        "weights": weight_files,
        "labels": write_image(tmp / "labels.png", labels),
        "zeros": write_image(tmp / "zeros.png", np.zeros((43, 64), np.uint8)),
    }
    content = files["stack"] if "--stack" in argv else files["content"]
    out = tmp / ("o.tif" if "--stack" in argv else "o.png")
    code = call([*FAST, str(content), str(files["style"]), "-o", str(out), *argv], names)
    message = one_line_error(capsys, code)
    assert expected in message
    assert "learning rate" not in message or "adam" in argv
    assert not out.exists()


def test_big_inputs_are_reduced_before_conversion_so_memory_follows_the_output_size(tmp_path, files, capsys):
    """A 4096² PNG at --size 48 peaks about like a 512² one (on main: +1 GB for the float copies)."""
    from PIL import Image

    from napari_style_transfer.engine.memory import PeakRSS

    rng = np.random.default_rng(0)
    for side in (512, 4096):
        Image.fromarray((rng.random((side, side, 3)) * 255).astype(np.uint8)).save(
            tmp_path / f"{side}.png", compress_level=1
        )
    argv = ["-q", "--size", "48", "--iterations", "1", "--no-multiscale"]
    assert run([*argv, str(tmp_path / "512.png"), str(files["style"]), "-o", str(tmp_path / "warm.png")]) == 0
    peaks = {}
    for side in (512, 4096):
        with PeakRSS() as peak:
            assert (
                run(
                    [
                        *argv,
                        str(tmp_path / f"{side}.png"),
                        str(files["style"]),
                        "-o",
                        str(tmp_path / f"o{side}.png"),
                    ]
                )
                == 0
            )
        peaks[side] = peak.peak_bytes
        assert read_image(tmp_path / f"o{side}.png").shape == (48, 48, 3)
    decoded = 4096 * 4096 * 4  # Pillow's decoded image itself (RGB is stored 4 bytes a pixel)
    assert peaks[4096] - peaks[512] < decoded + 64 * 2**20, {k: v / 2**20 for k, v in peaks.items()}
    capsys.readouterr()


def test_a_reduced_content_keeps_the_output_size_and_its_mask(tmp_path, files, capsys):
    """Reading reduced must not change the output size, and a mask follows its content's reduction."""
    content = (np.random.default_rng(2).random((301, 197, 3)) * 255).astype(np.uint8)
    labels = np.zeros((301, 197), np.uint8)
    labels[:, 100:] = 1
    write_image(tmp_path / "c.png", content)
    write_image(tmp_path / "m.png", labels)
    out = tmp_path / "o.png"
    argv = ["-q", "--size", "40", "--iterations", "1", "--no-multiscale", "--mask", str(tmp_path / "m.png")]
    assert run([*argv, str(tmp_path / "c.png"), str(files["style"]), "-o", str(out)]) == 0, (
        capsys.readouterr().err
    )
    from napari_style_transfer.arrays import fit_long_side

    assert read_image(out).shape == (*fit_long_side((301, 197), 40), 3)
