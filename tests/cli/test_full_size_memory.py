"""``--full-size`` counts in the memory check: a result too big at full size is refused before the run."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image

import napari_style_transfer.engine.memory as memory_module
from napari_style_transfer.cli import run
from napari_style_transfer.engine.full_size import full_size_bytes, upsample_to
from napari_style_transfer.files import write_image
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.run_request import prepare_run

FAST = ["--size", "16", "--iterations", "1", "--no-multiscale", "--precision", "fp32"]


@pytest.fixture
def big_content(tmp_path):
    return write_image(tmp_path / "big.png", np.zeros((3000, 4000, 3), np.uint8))  # 36 MB as uint8


def test_a_full_size_result_that_cannot_fit_is_refused_before_the_run(
    big_content, tmp_path, capsys, monkeypatch
):
    style = write_image(tmp_path / "style.png", np.full((20, 20, 3), 99, np.uint8))
    need = full_size_bytes((3000, 4000), 3, np.uint8)
    monkeypatch.setattr(memory_module, "available_memory", lambda device: need // 2)
    out = tmp_path / "out.png"
    code = run([str(big_content), str(style), "-o", str(out), "--full-size", *FAST])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--full-size" in err and "4000×3000" in err
    assert not out.exists()


def test_the_estimate_covers_what_the_upsample_takes():
    """The estimate is at least the result itself plus one float working plane, and tracks the size."""
    small = full_size_bytes((100, 200), 3, np.uint16)
    assert small >= 100 * 200 * 3 * 2 + 100 * 200 * 4
    assert full_size_bytes((200, 400), 3, np.uint16) == 4 * small
    image = np.zeros((10, 20, 3), np.uint16)
    assert upsample_to(image, (100, 200), rgb=True).nbytes <= small


def test_the_widget_refuses_it_in_one_sentence(monkeypatch):
    content = Image(np.zeros((3000, 4000, 3), np.uint8), rgb=True, name="big")
    style = Image(np.zeros((20, 20, 3), np.uint8), rgb=True, name="style")
    params = dict(size=16, iterations=1, multiscale=False, device="cpu", full_size=True)
    monkeypatch.setattr(memory_module, "available_memory", lambda device: 10 * 2**20)
    with pytest.raises(
        UserError, match=r"^Full-size result: the result at the content's full size \(4000×3000 px\)"
    ):
        prepare_run(content, [(style, 1.0)], params)
    monkeypatch.undo()
    assert prepare_run(content, [(style, 1.0)], params).full_size
