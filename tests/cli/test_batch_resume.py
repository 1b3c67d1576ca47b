"""A batch re-run keeps an output only when the same input made it (issue 22, class 2).

The report records each input's identity (size, modification time and content hash) and each
output's hash; a re-run skips an item only when both still match. Through the real ``batch``
command and its embedded Dask cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image
from napari_style_transfer.files.names import PARTS_FOLDER, part_path

pytest.importorskip("distributed")

FAST = ["--size", "24", "--iterations", "2", "--no-multiscale", "--precision", "fp32", "--workers", "1", "-q"]


def statuses(out: Path) -> dict[str, str]:
    report = json.loads((out / "batch-report.json").read_text())
    return {
        Path(e["input"]).name + (f"[{e['slices'][0]}]" if "slices" in e else ""): e["status"]
        for e in report["items"]
    }


def batch(*argv: str) -> int:
    return run(["batch", *argv, *FAST])


@pytest.fixture
def folder(tmp_path, content_image, style_image):
    images = tmp_path / "in"
    images.mkdir()
    write_image(images / "a.png", content_image)
    write_image(images / "b.png", np.roll(content_image, 9, axis=1))
    return images, write_image(tmp_path / "style.png", style_image)


def test_a_rerun_skips_only_what_the_same_inputs_made(folder, tmp_path, content_image, capsys):
    images, style = folder
    out = tmp_path / "out"
    assert batch(str(images), "--style", str(style), "-o", str(out)) == 0
    first = {name: read_image(out / name) for name in ("a.png", "b.png")}
    assert batch(str(images), "--style", str(style), "-o", str(out)) == 0
    assert statuses(out) == {"a.png": "skipped", "b.png": "skipped"}
    assert batch(str(images), "--style", str(style), "-o", str(out)) == 0  # the identity carried forward
    assert statuses(out) == {"a.png": "skipped", "b.png": "skipped"}

    # a new image under an old name, an image edited in place (same size, same mtime), an output touched
    write_image(images / "a.png", 255 - content_image)
    stat = os.stat(images / "b.png")
    edited = write_image(tmp_path / "edited.png", np.roll(content_image, 3, axis=0))
    (images / "b.png").write_bytes(edited.read_bytes())
    os.utime(images / "b.png", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert batch(str(images), "--style", str(style), "-o", str(out)) == 0, capsys.readouterr().err
    assert statuses(out) == {"a.png": "done", "b.png": "done"}
    assert not np.array_equal(read_image(out / "a.png"), first["a.png"])

    write_image(out / "a.png", np.zeros_like(first["a.png"]))  # someone replaced a result
    assert batch(str(images), "--style", str(style), "-o", str(out)) == 0
    assert statuses(out) == {"a.png": "done", "b.png": "skipped"}
    assert read_image(out / "a.png").any()


def test_stack_chunk_parts_are_reused_only_for_the_same_stack(tmp_path, style_image):
    stack = tmp_path / "s.tif"
    data = np.random.default_rng(0).integers(0, 255, (4, 20, 24), dtype=np.uint8)
    tifffile.imwrite(stack, data)
    style = write_image(tmp_path / "style.png", style_image)
    out = tmp_path / "out"
    argv = [str(stack), "--style", str(style), "-o", str(out), "--stack", "--chunk", "2"]
    assert batch(*argv) == 0
    result = tifffile.imread(out / "s.tif")
    report = json.loads((out / "batch-report.json").read_text())

    def leave_parts() -> None:
        """What a run interrupted before assembling leaves: both chunks' parts, no stack output."""
        folder = next(iter((out / PARTS_FOLDER).glob("*"))) if (out / PARTS_FOLDER).exists() else None
        folder = folder or out / PARTS_FOLDER / f"s-{report['settings_id']}"
        folder.mkdir(parents=True, exist_ok=True)
        for start, stop in ((0, 2), (2, 4)):
            np.save(part_path(folder, start, stop), result[start:stop], allow_pickle=False)
        (out / "s.tif").unlink()

    leave_parts()
    assert batch(*argv) == 0
    assert statuses(out) == {"s.tif[0]": "skipped", "s.tif[2]": "skipped"}  # the same stack: parts kept
    np.testing.assert_array_equal(tifffile.imread(out / "s.tif"), result)

    leave_parts()
    stat = os.stat(stack)
    tifffile.imwrite(stack, 255 - data)  # the stack edited in place, its time put back
    os.utime(stack, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert batch(*argv) == 0
    assert statuses(out) == {"s.tif[0]": "done", "s.tif[2]": "done"}
    assert not np.array_equal(tifffile.imread(out / "s.tif"), result)
