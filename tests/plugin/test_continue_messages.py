"""What Continue says for results it cannot continue, and for an input that is gone (user test)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image

from napari_style_transfer.plugin.continuation import continue_choices
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.layers import PLUGIN_KEY


def result(**meta):
    return Image(np.zeros((1, 8, 8)), name="photo stylised", metadata={PLUGIN_KEY: "1", **meta})


@pytest.mark.parametrize(
    ("stack", "words"),
    [("slice", "a result of one slice of a stack cannot be continued yet"), ("all", "a stack result")],
)
def test_a_slice_or_stack_result_is_named_as_what_it_is(stack, words):
    with pytest.raises(UserError, match=words):
        continue_choices(result(stack=stack), [], 5)


def test_a_drawn_layer_that_is_gone_is_to_be_drawn_again():
    photo = Image(np.zeros((8, 8)), name="photo")
    meta = dict(content_layer="photo", style_layers=["photo"], mask_layer="where", config={})
    with pytest.raises(
        UserError, match="The mask layer 'where' of this result is gone; draw or open it again"
    ):
        continue_choices(result(**meta), [photo], 5)
