"""The plugin's Qt-free logic without a viewer: Continue's recorded run, style sources, saved previews.

napari layer objects are made directly (no viewer, no Qt); the widget's side of the same
features is in tests/qt/.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_style_transfer.files import read_image, write_image
from napari_style_transfer.plugin.continuation import continue_choices, recorded_params
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.previews import make_saver
from napari_style_transfer.plugin.result_metadata import result_metadata
from napari_style_transfer.plugin.run_request import RunChoices, prepare
from napari_style_transfer.plugin.sources import (
    GalleryChoice,
    StyleFile,
    describe_style,
    gallery_choices,
    is_source,
    resolve_style,
)

PARAMS = dict(size=32, iterations=7, multiscale=True, preview_every=1, device="cpu", style_weight=3e4)


def layer(name, seed=0, shape=(24, 32, 3)):
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return Image(pixels, rgb=len(shape) == 3, name=name)


@pytest.fixture
def made(tmp_path):
    """A content, a style layer, a style file, a mask, and a result layer recording a run of them."""
    content, style = layer("photo"), layer("paint", 1)
    write_image(tmp_path / "s.png", layer("x", 2).data)
    mask = Labels(np.ones((24, 32), np.int32), name="regions")
    choices = RunChoices(
        content,
        [(style, 2.0), (StyleFile(tmp_path / "s.png"), 1.0)],
        {**PARAMS, "full_size": True},
        mask_layer=mask,
        label_styles={1: 1},
    )
    request = prepare(choices)
    result = Image(np.zeros((24, 32, 3), np.uint8), rgb=True, name="photo stylised")
    result.metadata = result_metadata(request)
    return SimpleNamespace(content=content, style=style, mask=mask, result=result, path=tmp_path / "s.png")


def test_continue_finds_the_recorded_layers_files_and_settings(made):
    layers = [made.content, made.style, made.mask, made.result]
    choices = continue_choices(made.result, layers, 25)
    assert choices.content is made.content and choices.init_layer is made.result
    assert choices.styles[0] == (made.style, 2.0)
    assert choices.styles[1] == (StyleFile(made.path), 1.0)
    assert choices.mask_layer is made.mask and choices.label_styles == {1: 1}
    assert choices.params["iterations"] == 25 and choices.params["multiscale"] is False
    assert choices.params["init"] == "image" and choices.params["style_weight"] == 3e4
    assert choices.params["full_size"] is True  # an output option is recorded too
    assert choices.continued_from == "photo stylised"


@pytest.mark.parametrize(
    ("gone", "message"),
    [
        ("content", "The content layer 'photo' of this result is gone"),
        ("style", "The style layer 'paint' of this result is gone"),
        ("mask", "The mask layer 'regions' of this result is gone"),
    ],
)
def test_continue_says_which_layer_is_gone(made, gone, message):
    layers = [x for x in (made.content, made.style, made.mask, made.result) if x is not getattr(made, gone)]
    with pytest.raises(UserError, match=message):
        continue_choices(made.result, layers, 5)


def test_continue_refuses_what_it_cannot_continue(made):
    with pytest.raises(UserError, match="Select a Style Transfer result layer"):
        continue_choices(made.content, [made.content], 5)
    with pytest.raises(UserError, match="must be 1 or more"):
        continue_choices(made.result, [made.result], 0)
    made.result.metadata = {**made.result.metadata, "stack": "all"}
    with pytest.raises(UserError, match="a stack result cannot be continued"):
        continue_choices(made.result, [made.result], 5)


def test_recorded_params_leave_out_the_inputs_and_keep_tuples():
    params = recorded_params({"style_layers": ["relu1_1", "relu2_1"], "init_image": "x", "bogus": 1}, 3)
    assert (
        params["style_layers"] == ("relu1_1", "relu2_1")
        and "init_image" not in params
        and "bogus" not in params
    )


def test_sources_describe_and_resolve_each_other(tmp_path):
    write_image(tmp_path / "s.png", np.zeros((8, 8, 3), np.uint8))
    paint = layer("paint")
    for choice in (StyleFile(tmp_path / "s.png"), GalleryChoice("brick"), paint):
        assert resolve_style(describe_style(choice), [paint]) == choice
    assert is_source(GalleryChoice("brick")) and not is_source(paint)
    assert [c.key for c in gallery_choices()][:1] and all(
        c.read(None).ndim == 3 for c in gallery_choices()[:2]
    )


def test_sources_that_are_gone_are_one_sentence(tmp_path):
    with pytest.raises(UserError, match=r"^Style file: .*missing\.png"):
        resolve_style({"file": str(tmp_path / "missing.png")}, [])
    with pytest.raises(UserError, match="There is no gallery style 'nope'"):
        resolve_style({"gallery": "nope"}, [])


def test_a_style_file_is_read_reduced_for_the_style_size(tmp_path):
    write_image(tmp_path / "big.png", np.zeros((400, 600, 3), np.uint8))
    assert max(StyleFile(tmp_path / "big.png").read(64).shape[:2]) < 600


def test_previews_are_saved_every_nth_and_the_final_image(tmp_path):
    saver = make_saver(tmp_path, 2, "photo stylised")
    image = np.full((8, 8, 3), 7, np.uint8)
    written = [
        saver.offer(SimpleNamespace(preview=image, done=done, step=step))
        for step, done in ((1, False), (2, False), (3, False), (4, False), (5, True))
    ]
    assert [w is not None for w in written] == [False, True, False, True, True]
    names = [Path(w).name for w in written if w is not None]
    assert all(name.startswith("photo stylised ") for name in names)
    assert [name.rsplit(".", 2)[1] for name in names] == ["step00002", "step00004", "step00005"]
    np.testing.assert_array_equal(read_image(written[-1]), image)
    float_saver = make_saver(tmp_path, 1, "f")
    assert (
        float_saver.offer(SimpleNamespace(preview=image.astype(np.float32), done=True, step=1)).suffix
        == ".tif"
    )


def test_preview_folders_that_cannot_be_used_are_one_sentence(tmp_path):
    assert make_saver(None, 1, "x") is None
    with pytest.raises(UserError, match="does not exist"):
        make_saver(tmp_path / "nope", 1, "x")
    with pytest.raises(UserError, match="choose the folder"):
        make_saver("  ", 1, "x")
    with pytest.raises(UserError, match="N must be 1 or more"):
        make_saver(tmp_path, 0, "x")
