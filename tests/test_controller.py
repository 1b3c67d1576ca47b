"""The widget's Qt-free logic: checks, geometry, throttling, status text, error messages."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_style_transfer._controller import (
    PreviewThrottle,
    RateMeter,
    UserError,
    current_slice_index,
    error_message,
    format_duration,
    format_status,
    layer_contrast_limits,
    layer_geometry,
    prepare_run,
    result_geometry,
)
from napari_style_transfer.engine import (
    ConfigError,
    ImageError,
    ProgressEvent,
    StyleTransferError,
    WeightsError,
)

PARAMS = dict(size=32, iterations=2, multiscale=False, preview_every=1, device="cpu")


def rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def event(step, elapsed, *, scale=0, n_scales=1, iteration=None, iterations=10, total=10, shape=(16, 16)):
    return ProgressEvent(
        scale, n_scales, shape, iteration or step, iterations, step, total, {"total": 1.25}, elapsed
    )


@pytest.mark.parametrize(
    ("transform", "content_shape", "result_shape"),
    [
        ({}, (43, 64), (22, 32)),
        ({"scale": (2.0, 0.5), "translate": (10.0, -5.0)}, (43, 64), (86, 128)),
        ({"scale": (1.5, 3.0), "translate": (4.0, 2.0), "rotate": 30, "shear": [0.2]}, (40, 60), (20, 30)),
        ({"affine": np.array([[0.0, 1.0, 5.0], [-1.0, 0.0, 7.0], [0.0, 0.0, 1.0]])}, (30, 20), (60, 40)),
    ],
)
def test_result_geometry_overlays_the_content_edge_to_edge(transform, content_shape, result_shape):
    content = Image(np.zeros(content_shape, np.float32), **transform)
    geometry = result_geometry(layer_geometry(content), content_shape, result_shape)
    result = Image(np.zeros(result_shape, np.float32), **geometry)
    hc, wc = content_shape
    hr, wr = result_shape
    # outer pixel edges and the image centre land on the same world points
    for c_point, r_point in [
        ((-0.5, -0.5), (-0.5, -0.5)),
        ((hc - 0.5, wc - 0.5), (hr - 0.5, wr - 0.5)),
        ((-0.5, wc - 0.5), (-0.5, wr - 0.5)),
        (((hc - 1) / 2, (wc - 1) / 2), ((hr - 1) / 2, (wr - 1) / 2)),
    ]:
        np.testing.assert_allclose(content.data_to_world(c_point), result.data_to_world(r_point), atol=1e-9)


def test_prepare_run_copies_the_data_and_uses_contrast_limits_for_grayscale():
    gray = Image(np.linspace(0, 1000, 20 * 30, dtype=np.float32).reshape(20, 30), contrast_limits=(100, 900))
    style = Image(rgb(), rgb=True)
    request = prepare_run(gray, [(style, 1.0)], PARAMS)
    assert request.config.contrast_limits == (100.0, 900.0)
    assert request.style_contrast_limits == [None]  # uint8 RGB: 0-255
    assert request.content is not gray.data and not np.shares_memory(request.content, gray.data)
    assert not np.shares_memory(request.styles[0], style.data)
    assert request.config.style_blend_weights is None
    assert request.display["contrast_limits"] == (100.0, 900.0) and not request.display["rgb"]
    assert request.sizes == [(21, 32)]
    assert request.result_name == f"{gray.name} stylised"


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


def test_contrast_limits_only_where_they_matter():
    assert layer_contrast_limits(Image(rgb(), rgb=True), rgb()) is None  # uint8 RGB: 0-255
    gray16 = np.full((4, 4), 7, np.uint16)
    assert layer_contrast_limits(Image(gray16, contrast_limits=(0, 100)), gray16) == (0.0, 100.0)
    rgb_float = rgb().astype(np.float32) / 255
    assert layer_contrast_limits(Image(rgb_float, rgb=True, contrast_limits=(0, 0.5)), rgb_float) == (
        0.0,
        0.5,
    )
    # degenerate limits (a constant image) fall back to the engine's own range
    assert layer_contrast_limits(SimpleNamespace(rgb=False, contrast_limits=(5.0, 5.0)), gray16) is None


def test_throttle_keeps_the_latest_preview_and_drops_the_rest():
    now = [0.0]
    throttle = PreviewThrottle(10, clock=lambda: now[0])
    assert throttle.offer("a") == "a"  # the first image is shown at once
    now[0] = 0.02
    assert throttle.offer("b") is None  # too soon: kept as pending
    now[0] = 0.05
    assert throttle.offer("c") is None  # replaces "b"
    assert throttle.dropped == 1
    assert throttle.take_pending() is None  # still too soon
    assert throttle.wait_time() == pytest.approx(0.05)
    now[0] = 0.11
    assert throttle.take_pending() == "c"
    assert throttle.take_pending() is None
    now[0] = 0.25
    assert throttle.offer("d") == "d"


def test_rate_and_time_left_weight_the_bigger_scales():
    meter = RateMeter([(100, 100), (200, 200)], iterations=10)
    assert meter.rate is None
    for step in range(1, 6):
        meter.add(event(step, 2.0 + 0.5 * step, n_scales=2, total=20))
    assert meter.rate == pytest.approx(2.0)
    left = meter.seconds_left(event(5, 4.5, n_scales=2, total=20))
    # 5 more steps at this scale + 10 steps at 4× the pixels, at 2 steps/s
    assert left == pytest.approx((5 + 40) / 2.0)
    text = format_status(event(5, 4.5, n_scales=2, total=20, shape=(100, 100)), meter)
    assert text.startswith("Iteration 5/10 · scale 1/2 (100×100)")
    assert "loss 1.25" in text and "2.0 it/s" in text and "22 s left" in text
    assert format_duration(3725) == "1 h 02 min" and format_duration(65) == "1 min 05 s"


@pytest.mark.parametrize(
    ("exc", "start"),
    [
        (ConfigError("size: must be an integer, got 'x'"), "Invalid setting — size"),
        (ImageError("content: complex images are not supported"), "Cannot use this image"),
        (WeightsError("checksum mismatch"), "Could not load the VGG-19 weights"),
        (StyleTransferError("the optimisation diverged"), "Style transfer failed — the optimisation"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "Out of memory"),
        (MemoryError(), "Out of memory"),
        (KeyError("boom"), "Style transfer failed unexpectedly (KeyError"),
    ],
)
def test_error_messages_are_one_sentence(exc, start):
    message = error_message(exc)
    assert message.startswith(start)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


def test_stack_requests_pick_the_slice_shown_and_place_the_result_over_it():
    stack = Image(np.zeros((4, 5, 40, 60), np.float32), name="t", scale=(2.0, 3.0, 0.5, 0.5), translate=(1.0, 0.0, 0.0, 0.0))
    # world point (t=1 + 2·2, z=3·3, y, x) → slice (2, 3)
    assert current_slice_index(stack, (5.0, 9.0, 0.0, 0.0)) == (2, 3)
    assert current_slice_index(stack, (100.0, -5.0, 0.0, 0.0)) == (3, 0)  # clipped
    assert current_slice_index(stack, None) == (0, 0)
    style = Image(rgb(seed=4), rgb=True, name="style")
    request = prepare_run(stack, [(style, 1.0)], PARAMS, stack="slice", point=(5.0, 9.0, 0.0, 0.0))
    assert request.content.shape == (40, 60) and request.stack == "slice" and request.slice_index == (2, 3)
    placed = request.placement(request.sizes[-1])
    np.testing.assert_allclose(placed["scale"][:2], (2.0, 3.0))
    np.testing.assert_allclose(placed["translate"][:2], (1.0 + 2 * 2.0, 3 * 3.0))
    request = prepare_run(stack, [(style, 1.0)], PARAMS, stack="all")
    assert request.content.shape == (4, 5, 40, 60) and request.slice_count == 20
    assert request.total_steps == 20 * PARAMS["iterations"]


def test_a_mask_follows_the_content_when_it_is_reduced_on_reading():
    content = Image(rgb(128, 192), rgb=True, name="big")
    labels = np.zeros((128, 192), np.int32)
    labels[:, 96:] = 3
    mask = Labels(labels, name="mask")
    request = prepare_run(content, [(Image(rgb(seed=1), rgb=True), 1.0)], PARAMS, mask_layer=mask, label_styles={3: 0})
    assert request.content_mask.shape == request.content.shape[:2]
    assert set(np.unique(request.content_mask)) == {0, 3}
    assert request.engine_kwargs()["label_styles"] == {3: 0}
    with pytest.raises(UserError, match="not chosen"):
        prepare_run(content, [(Image(rgb(seed=1), rgb=True), 1.0)], PARAMS, mask_layer=mask, label_styles={3: 1})
