"""Every entry point against the same special files and loops: one line each, nothing hangs (issue 22, class 4).

The list: a FIFO, a socket, a character device, a folder, a symbolic-link loop and a broken
link, given as the single command's content, a ``--stack`` content, a batch input, a batch
``--stack`` input and the widget's style file; plus folders holding them, a recursive pattern
through a folder link pointing back up, and a report that cannot be written. A FIFO that got
opened would block for ever: each run is in a thread, and a test that finds it still running
opens the FIFO's other end itself and fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_style_transfer.cli import run
from napari_style_transfer.files import write_image

FAST = ["--size", "16", "--iterations", "1", "--no-multiscale", "--precision", "fp32"]
BATCH = [*FAST, "--workers", "1", "-q"]
KINDS = ("fifo", "socket", "device", "folder", "loop", "broken link")


def special(folder: Path, kind: str, suffix: str = ".png") -> Path:
    path = folder / f"special-{kind.replace(' ', '-')}{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # like /dev/zero: reading never ends
        except PermissionError:
            pytest.skip("creating a device node needs root")
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        other = path.with_name(path.name + ".other")
        path.symlink_to(other.name)
        other.symlink_to(path.name)
    else:
        path.symlink_to(path.name + ".gone")
    return path


def run_unblocked(argv: list[str], fifos: list[Path]) -> int:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(argv)), daemon=True)
    thread.start()
    thread.join(120)
    if thread.is_alive():
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail("the command opened a FIFO or looped, and blocked")
    return result[0]


def lines(capsys) -> list[str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return [line for line in captured.err.splitlines() if line.strip()]


@pytest.fixture
def images(tmp_path, content_image, style_image):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "good.png", content_image)
    return folder, write_image(tmp_path / "style.png", style_image)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stack", [False, True], ids=["2D", "--stack"])
def test_the_single_command_refuses_special_contents_in_one_line(kind, stack, images, capsys):
    folder, style = images
    path = special(folder, kind, ".tif" if stack else ".png")
    out = folder.parent / ("o.tif" if stack else "o.png")
    code = run_unblocked(
        [str(path), str(style), "-o", str(out), *FAST, *(["--stack"] if stack else [])], [path]
    )
    assert code == 2 and len(lines(capsys)) == 1


@pytest.mark.parametrize("stack", [False, True], ids=["2D", "--stack"])
def test_a_batch_fails_each_special_input_alone_in_one_line(stack, images, tmp_path, capsys):
    folder, style = images
    suffix = ".tif" if stack else ".png"
    if stack:
        tifffile.imwrite(folder / "good.tif", np.zeros((2, 20, 24), np.uint8))
    kinds = [kind for kind in KINDS if kind != "folder"]  # a folder INPUT means its images
    paths = [special(folder, kind, suffix) for kind in kinds]
    good = folder / f"good{suffix}"
    argv = ["batch", str(good), *map(str, paths), "--style", str(style), "-o", str(tmp_path / "out"), *BATCH]
    code = run_unblocked([*argv, *(["--stack"] if stack else [])], paths)
    failed = [line for line in lines(capsys) if line.startswith("failed: ")]
    assert code == 1 and len(failed) == len(kinds)
    report = json.loads((tmp_path / "out" / "batch-report.json").read_text())
    done = [e for e in report["items"] if e["status"] == "done"]
    assert done and all(Path(e["input"]).name == good.name for e in done)


def test_folders_pass_over_special_files_and_take_every_format_the_cli_reads(images, tmp_path, capsys):
    folder, style = images
    for kind in KINDS:
        special(folder, kind)
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 255, (20, 24, 3), dtype=np.uint8)
    for name in ("w.webp", "b.bmp", "g.gif", "p.ppm", "t.tif", "j.jpg"):
        Image.fromarray(pixels).save(folder / name)
    out = tmp_path / "out"
    code = run_unblocked(["batch", str(folder), "--style", str(style), "-o", str(out), *BATCH], [])
    assert code == 0, lines(capsys)
    written = sorted(p.stem for p in out.iterdir() if p.name != "batch-report.json")
    assert written == ["b", "g", "good", "j", "p", "t", "w"]


def test_a_recursive_pattern_through_a_link_back_up_ends(images, tmp_path, capsys):
    folder, style = images
    (folder / "deeper").mkdir()
    write_image(folder / "deeper" / "two.png", np.full((20, 24, 3), 80, np.uint8))
    (folder / "deeper" / "up").symlink_to("..", target_is_directory=True)  # in/deeper/up -> in
    out = tmp_path / "out"
    code = run_unblocked(["batch", f"{folder}/**/*.png", "--style", str(style), "-o", str(out), *BATCH], [])
    assert code == 0, lines(capsys)
    report = json.loads((out / "batch-report.json").read_text())
    assert sorted(Path(e["input"]).name for e in report["items"]) == ["good.png", "two.png"]


def test_a_report_that_cannot_be_written_is_one_line_before_anything_runs(images, tmp_path, capsys):
    folder, style = images
    out = tmp_path / "out"
    (out / "batch-report.json").mkdir(parents=True)  # a folder where the report goes
    code = run_unblocked(["batch", str(folder), "--style", str(style), "-o", str(out), *BATCH], [])
    message = lines(capsys)
    assert code == 2 and len(message) == 1 and "batch-report.json" in message[0] and "directory" in message[0]
    assert sorted(p.name for p in out.iterdir()) == ["batch-report.json"]


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_read_only_output_folder_is_one_line(images, tmp_path, capsys):
    folder, style = images
    with tmpfs(tmp_path / "ro", "size=1m") as ro:
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        code = run_unblocked(["batch", str(folder), "--style", str(style), "-o", str(ro), *BATCH], [])
        message = lines(capsys)
    assert code == 2 and len(message) == 1 and "read-only" in message[0].lower()


def test_a_full_disk_ends_the_batch_in_one_line(images, tmp_path, capsys):
    folder, style = images
    for i in range(3):
        write_image(folder / f"more{i}.png", np.full((20, 24, 3), 40 * i, np.uint8))
    with tmpfs(tmp_path / "full", "size=64k") as full:
        with contextlib.suppress(OSError), open(full / "filler", "wb") as handle:
            handle.write(b"\0" * 200_000)
        code = run_unblocked(["batch", str(folder), "--style", str(style), "-o", str(full), *BATCH], [])
        message = lines(capsys)
        leftovers = [p.name for p in full.iterdir() if p.name.startswith(".nst-")]
    assert (
        code != 0
        and message
        and all("No space left on device" in m or m.startswith("failed") for m in message)
    )
    assert not leftovers


def test_the_widgets_style_file_refuses_special_files_in_one_sentence(tmp_path):
    from napari_style_transfer.plugin.faults import UserError
    from napari_style_transfer.plugin.sources import StyleFile

    for kind in KINDS:
        path = special(tmp_path, kind)
        with pytest.raises(UserError) as info:
            StyleFile(path).check()
        assert str(info.value).startswith("Style file: ") and "\n" not in str(info.value)


def test_a_failed_line_escapes_a_newline_in_a_name(images, tmp_path, capsys):
    folder, style = images
    bad = folder / "two\nlines.png"
    bad.write_bytes(b"not an image at all")
    code = run_unblocked(
        ["batch", str(folder), "--style", str(style), "-o", str(tmp_path / "out"), *BATCH], []
    )
    failed = [line for line in lines(capsys) if line.startswith("failed: ")]
    assert code == 1 and len(failed) == 1 and "two\\nlines.png" in failed[0]
