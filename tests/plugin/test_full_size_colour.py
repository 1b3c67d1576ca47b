"""The full-size memory check counts the *result's* colour channels: a grey content given the style's
colours (``result_colour='style'``) gives an RGB result, three planes per image, not one."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image

import napari_style_transfer.engine.memory as memory_module
from napari_style_transfer.engine.full_size import full_size_bytes, result_channels
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.run_request import prepare_run

PARAMS = dict(size=16, iterations=1, multiscale=False, device="cpu", full_size=True)
HW = (3000, 4000)


@pytest.fixture
def style():
    return Image(np.zeros((20, 20, 3), np.uint8), rgb=True, name="style")


def free_between(monkeypatch, planes: int) -> None:
    """Free memory enough for a full-size result of ``planes - 1`` planes, not of ``planes``."""
    low, high = full_size_bytes(HW, planes - 1, np.uint8), full_size_bytes(HW, planes, np.uint8)
    monkeypatch.setattr(memory_module, "available_memory", lambda device: (low + high) // 2)


def test_the_rule_a_grey_content_given_the_style_colours_gives_rgb():
    assert result_channels(1, "style") == 3
    assert result_channels(1, "content") == 1
    assert result_channels(3, "style") == result_channels(3, "content") == 3
    assert result_channels(4, "style") == 4


def test_a_grey_content_with_the_style_colours_counts_three_channels(monkeypatch, style):
    content = Image(np.zeros(HW, np.uint8), name="grey")
    colour = {**PARAMS, "result_colour": "style"}
    assert prepare_run(content, [(style, 1.0)], colour).result_channels == 3
    free_between(monkeypatch, 3)  # room for two planes: the grey result fits, the colour one does not
    assert prepare_run(content, [(style, 1.0)], PARAMS).result_channels == 1
    with pytest.raises(
        UserError, match=r"^Full-size result: the result at the content's full size \(4000×3000"
    ):
        prepare_run(content, [(style, 1.0)], colour)


@pytest.mark.parametrize(("stack", "planes"), [("all", 9), ("slice", 3)])
def test_a_grey_stack_with_the_style_colours_counts_three_channels_per_slice(
    monkeypatch, style, stack, planes
):
    content = Image(np.zeros((3, *HW), np.uint8), name="grey stack")
    colour = {**PARAMS, "result_colour": "style"}
    free_between(monkeypatch, planes)
    with pytest.raises(UserError, match=r"^Full-size result"):
        prepare_run(content, [(style, 1.0)], colour, stack=stack)
    monkeypatch.setattr(
        memory_module, "available_memory", lambda device: full_size_bytes(HW, planes, np.uint8)
    )
    assert prepare_run(content, [(style, 1.0)], colour, stack=stack).full_size
