"""Run requests (Qt-free): the checks on the GUI thread, the reading in the worker, the engine's inputs."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_style_transfer.engine import ConfigError, Guidance, StackOptions
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.layers import current_slice_index
from napari_style_transfer.plugin.run_request import prepare_run

PARAMS = dict(size=32, iterations=2, multiscale=False, preview_every=1, device="cpu")


def rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_prepare_run_copies_the_data_and_uses_contrast_limits_for_grayscale():
    gray = Image(np.linspace(0, 1000, 20 * 30, dtype=np.float32).reshape(20, 30), contrast_limits=(100, 900))
    style = Image(rgb(), rgb=True)
    request = prepare_run(gray, [(style, 1.0)], PARAMS)
    assert request.config.contrast_limits == (100.0, 900.0)
    assert request.style_contrast_limits == [None]  # uint8 RGB: 0-255
    inputs = request.read()
    assert inputs.content is not gray.data and not np.shares_memory(inputs.content, gray.data)
    assert not np.shares_memory(inputs.styles[0], style.data)
    assert request.config.style_blend_weights is None
    assert request.display["contrast_limits"] == (100.0, 900.0) and not request.display["rgb"]
    assert request.sizes == [(21, 32)]
    assert request.result_name == f"{gray.name} stylised"
    assert inputs.guidance == Guidance(style_contrast_limits=[None]) and request.stack_options() is None


def test_prepare_run_blends_several_styles_with_their_weights():
    content = Image(rgb(seed=1), rgb=True, name="c")
    a, b = Image(rgb(seed=2), rgb=True, name="a"), Image(rgb(seed=3), rgb=True, name="b")
    request = prepare_run(content, [(a, 1.0), (b, 3.0)], PARAMS)
    assert request.config.style_blend_weights == (1.0, 3.0)
    assert request.style_names == ["a", "b"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_content", "no image layer"),
        ("labels", "is a Labels layer"),
        ("same", "both the content and a style"),
        ("mask_shape", "same size"),
        ("no_style", "at least one image layer as the style"),
        ("zero_weights", "all zero"),
        ("missing_file", "does not exist"),
    ],
)
def test_prepare_run_rejects_bad_choices_with_one_sentence(case, expected):
    content = Image(rgb(), rgb=True, name="content")
    style = Image(rgb(seed=5), rgb=True, name="style")
    params = dict(PARAMS)
    styles = [(style, 1.0)]
    mask = None
    if case == "no_content":
        content = None
    elif case == "labels":
        content = Labels(np.zeros((20, 30), np.int32), name="masks")
    elif case == "same":
        styles = [(content, 1.0)]
    elif case == "mask_shape":
        mask = Labels(np.zeros((5, 7), np.int32), name="mask")
    elif case == "no_style":
        styles = [(None, 1.0)]
    elif case == "zero_weights":
        styles = [(style, 0.0)]
    elif case == "missing_file":
        params["weights"] = "/no/such/vgg19.pth"
    with pytest.raises(UserError, match=expected) as info:
        prepare_run(content, styles, params, mask_layer=mask)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message


def test_prepare_run_passes_config_errors_on():
    with pytest.raises(ConfigError, match="style_layers"):
        prepare_run(
            Image(rgb(), rgb=True),
            [(Image(rgb(seed=1), rgb=True), 1.0)],
            {**PARAMS, "style_layers": "relu9_9"},
        )


def test_stack_requests_pick_the_slice_shown_and_place_the_result_over_it():
    stack = Image(
        np.zeros((4, 5, 40, 60), np.float32),
        name="t",
        scale=(2.0, 3.0, 0.5, 0.5),
        translate=(1.0, 0.0, 0.0, 0.0),
    )
    # world point (t=1 + 2·2, z=3·3, y, x) → slice (2, 3)
    assert current_slice_index(stack, (5.0, 9.0, 0.0, 0.0)) == (2, 3)
    assert current_slice_index(stack, (100.0, -5.0, 0.0, 0.0)) == (3, 0)  # clipped
    assert current_slice_index(stack, None) == (0, 0)
    style = Image(rgb(seed=4), rgb=True, name="style")
    request = prepare_run(stack, [(style, 1.0)], PARAMS, stack="slice", point=(5.0, 9.0, 0.0, 0.0))
    assert (
        request.read().content.shape == (40, 60)
        and request.stack == "slice"
        and request.slice_index == (2, 3)
    )
    assert request.stack_options() is None  # one slice is a 2D run
    placed = request.placement(request.sizes[-1])
    np.testing.assert_allclose(placed["scale"][:2], (2.0, 3.0))
    np.testing.assert_allclose(placed["translate"][:2], (1.0 + 2 * 2.0, 3 * 3.0))
    request = prepare_run(stack, [(style, 1.0)], PARAMS, stack="all", coherence=False)
    assert request.read().content.shape == (4, 5, 40, 60) and request.slice_count == 20
    assert request.total_steps == 20 * PARAMS["iterations"]
    assert request.stack_options() == StackOptions(rgb=False, coherence=False)


def test_a_mask_follows_the_content_when_it_is_reduced_on_reading():
    content = Image(rgb(128, 192), rgb=True, name="big")
    labels = np.zeros((128, 192), np.int32)
    labels[:, 96:] = 3
    mask = Labels(labels, name="mask")
    request = prepare_run(
        content, [(Image(rgb(seed=1), rgb=True), 1.0)], PARAMS, mask_layer=mask, label_styles={3: 0}
    )
    inputs = request.read()
    assert inputs.content_mask.shape == inputs.content.shape[:2]
    assert set(np.unique(inputs.content_mask)) == {0, 3}
    assert inputs.guidance.label_styles == {3: 0}
    with pytest.raises(UserError, match="not chosen"):
        prepare_run(
            content, [(Image(rgb(seed=1), rgb=True), 1.0)], PARAMS, mask_layer=mask, label_styles={3: 1}
        )


def test_prepare_run_reads_no_pixels():
    """Only shapes and dtypes are looked at on the GUI thread; the pixels are read by ``read()``."""
    da = pytest.importorskip("dask.array")
    computed = []

    def record(block):
        computed.append(block.shape)
        return block

    lazy = da.zeros((128, 192, 3), np.uint8, chunks=(32, 32, 3)).map_blocks(record, dtype=np.uint8)
    content = Image(lazy, rgb=True, name="lazy", contrast_limits=(0, 255))
    style = Image(
        da.zeros((64, 64, 3), np.uint8, chunks=(32, 32, 3)).map_blocks(record, dtype=np.uint8), rgb=True
    )
    labels = Labels(np.zeros((128, 192), np.int32), name="mask")
    computed.clear()  # napari read what it shows
    request = prepare_run(content, [(style, 1.0)], PARAMS, mask_layer=labels, label_styles={})
    assert computed == []
    inputs = request.read()
    assert len(computed) >= 24 + 4  # every chunk of both images
    assert inputs.content.shape == request.content_read.shape == (43, 64, 3)  # 3×3 block means
    assert inputs.content_mask.shape == (43, 64)


def test_start_image_is_any_image_layer_read_in_the_worker():
    from napari_style_transfer.plugin.result_metadata import result_metadata
    from napari_style_transfer.plugin.run_request import RunChoices, prepare

    content, style = Image(rgb(seed=1), rgb=True, name="c"), Image(rgb(seed=2), rgb=True, name="s")
    start = Image(rgb(seed=3), rgb=True, name="start")
    params = {**PARAMS, "init": "image"}
    request = prepare(RunChoices(content, [(style, 1.0)], params, init_layer=start))
    inputs = request.read()
    assert inputs.config.init == "image" and np.array_equal(inputs.config.init_image, start.data)
    assert not np.shares_memory(inputs.config.init_image, start.data)
    meta = result_metadata(request)
    assert meta["config"]["init"] == "image" and meta["init_layer"] == "start"
    assert meta["styles"] == [{"layer": "s"}]
    with pytest.raises(UserError, match="choose the image layer to start from"):
        prepare(RunChoices(content, [(style, 1.0)], params))
