"""nD stacks and time-lapses: slice selection, assembly, one value range, coherence, stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_style_transfer.engine import ConfigError, Guidance, ImageError, StyleConfig
from napari_style_transfer.engine.images import value_range
from napari_style_transfer.engine.stack import (
    flicker,
    stack_contrast_limits,
    stylize_stack,
    stylize_stack_iter,
    temporal_difference,
)

FAST = dict(
    size=40, iterations=4, multiscale=False, preview_every=0, device="cpu", precision="fp32"
)  # thresholds tuned in fp32; bf16 is covered in test_precision


pytestmark = pytest.mark.usefixtures("one_torch_thread")


MOTION = (1, 2)  # (dy, dx) per frame of the drifting time-lapse


def timelapse(frames: int = 4, size: int = 40, scene: str = "drift") -> np.ndarray:
    """(T, size, size, 3) uint8 crops of the sample cat: drifting by MOTION per frame, or a
    static field of view that fades by 3 % per frame with fresh noise in each frame."""
    from skimage.transform import resize

    from napari_style_transfer.samples import content_image

    cat = resize(content_image(), (100, 150), anti_aliasing=True, preserve_range=True)
    dy, dx = MOTION if scene == "drift" else (0, 0)
    crops = [cat[30 + t * dy : 30 + t * dy + size, 50 + t * dx : 50 + t * dx + size] for t in range(frames)]
    if scene == "static":
        rng = np.random.default_rng(0)
        crops = [c * (1 - 0.03 * t) + rng.normal(0, 4, c.shape) for t, c in enumerate(crops)]
    return np.stack(crops).round().clip(0, 255).astype(np.uint8)


def motion_compensated_difference(stack: np.ndarray) -> float:
    """Mean |R[t+1](p) − R[t](p + MOTION)|: how much the texture itself changes."""
    dy, dx = MOTION
    return float(np.abs(stack[1:, :-dy, :-dx].astype(float) - stack[:-1, dy:, dx:]).mean())


@pytest.fixture
def gray_stack() -> np.ndarray:
    """(3, 30, 40) uint16: a dim, a middle and a bright slice of one gradient pattern."""
    yy, xx = np.mgrid[0:30, 0:40]
    base = (np.sin(xx / 3.0) * np.cos(yy / 4.0) + 1) / 2
    return np.stack([(base * k * 1000 + 200).astype(np.uint16) for k in (1, 3, 6)])


def test_selected_slices_are_stylised_and_the_rest_keep_the_content(gray_stack, style_image):
    events = list(stylize_stack_iter(gray_stack, style_image, StyleConfig(**FAST), slices=[0, 2]))
    final = events[-1]
    result = final.result
    assert final.done and not final.stopped
    assert result.dtype == np.uint16 and result.shape == (3, 30, 40)  # size 40 = the long side already
    finished = [(e.index, e.number, e.count) for e in events if e.slice_result is not None]
    assert finished == [((0,), 1, 2), ((2,), 2, 2)]
    assert np.array_equal(result[1], gray_stack[1])  # not selected: unchanged
    for i in (0, 2):
        assert np.abs(result[i].astype(float) - gray_stack[i]).mean() > 20
    assert final.info["slices"] == [[0], [2]]
    # Steps are numbered over the whole stack.
    steps = [e.step for e in events[:-1]]
    assert steps == list(range(1, 2 * FAST["iterations"] + 1)) and final.total_steps == 8


def test_output_size_per_slice_and_tuple_indices_of_a_4d_rgb_stack(style_image):
    stack = timelapse(frames=2, size=40)
    stack4 = np.stack([stack, stack[:, ::-1]])  # (2, 2, 40, 40, 3): two positions × two times
    result = stylize_stack(
        stack4, style_image, StyleConfig(**dict(FAST, size=24, iterations=1)), slices=[(1, 0)]
    )
    assert result.shape == (2, 2, 24, 24, 3) and result.dtype == np.uint8
    from napari_style_transfer.engine.stack import resize_slice

    assert np.array_equal(result[0, 0], resize_slice(stack4[0, 0], (24, 24), True))


def test_one_value_range_for_the_whole_stack(gray_stack, style_image):
    low, high = stack_contrast_limits(gray_stack, rgb=False)
    assert (low, high) == value_range(gray_stack)
    result = stylize_stack(gray_stack, style_image, StyleConfig(**dict(FAST, iterations=2)), coherence=False)
    means = result.reshape(3, -1).mean(1)
    assert means[0] < means[1] < means[2]  # the dim slice stays dim, the bright one bright
    # Strokes in the dim slice may be as bright as the stack allows: with its own value range
    # the dim slice's result could not go beyond its own maximum.
    assert result[0].max() > 1.5 * gray_stack[0].max()


def test_coherence_reduces_flicker(style_image):
    content = timelapse(frames=4, scene="static")
    config = StyleConfig(**dict(FAST, iterations=12))  # enough for each slice to settle
    independent = stylize_stack(content, style_image, config, coherence=False)
    coherent = stylize_stack(content, style_image, config, coherence=True)
    assert flicker(coherent, content) < 0.8 * flicker(independent, content)


def test_motion_shift_moves_the_texture_with_a_drifting_scene(style_image):
    content = timelapse(frames=4, scene="drift")
    config = StyleConfig(**dict(FAST, iterations=12))
    independent = stylize_stack(content, style_image, config, coherence=False)
    stuck = stylize_stack(content, style_image, config, coherence=True, motion="none")
    events = list(stylize_stack_iter(content, style_image, config, coherence=True))  # motion="shift"
    moving = events[-1].result
    assert events[-1].info["motions"]["1"] == pytest.approx(list(MOTION), abs=0.15)
    # Unmoved, the previous result sticks to the image grid: little change, but not with the scene.
    assert flicker(stuck, content) < flicker(moving, content)
    assert motion_compensated_difference(moving) < 0.8 * motion_compensated_difference(independent)
    assert motion_compensated_difference(moving) < 0.8 * motion_compensated_difference(stuck)


def test_estimate_shift_and_shift_image():
    from napari_style_transfer.engine.timelapse import estimate_shift, shift_image
    from napari_style_transfer.samples import content_image

    cat = content_image()[..., 1]
    a, b = cat[40:104, 60:124], cat[41:105, 63:127]  # b(p) = a(p + (1, 3))
    assert estimate_shift(a, b) == pytest.approx((1.0, 3.0), abs=0.05)
    assert estimate_shift(a, a) == pytest.approx((0.0, 0.0), abs=0.05)
    assert estimate_shift(np.zeros((16, 16)), np.zeros((16, 16))) == (0.0, 0.0)
    moved = shift_image(a, (1.0, 3.0), fill=b)
    assert moved.dtype == a.dtype and np.array_equal(moved, b)


def test_consistency_term_is_used_after_the_first_slice(style_image):
    content = timelapse(frames=2, size=32)
    events = list(
        stylize_stack_iter(
            content, style_image, StyleConfig(**dict(FAST, iterations=2)), consistency_weight=1.0
        )
    )
    firsts = [e for e in events if e.number == 1 and not e.done]
    seconds = [e for e in events if e.number == 2]
    assert "consistency" not in firsts[0].event.losses
    assert "consistency" in seconds[0].event.losses


def test_stop_keeps_finished_slices(gray_stack, style_image):
    stop = threading.Event()
    events = []
    for event in stylize_stack_iter(gray_stack, style_image, StyleConfig(**FAST), stop=stop):
        events.append(event)
        if event.slice_result is not None:
            stop.set()  # after the first slice
    final = events[-1]
    assert final.done and final.stopped
    assert final.info["slices"] == [[0]]
    assert np.abs(final.result[0].astype(float) - gray_stack[0]).mean() > 20
    assert np.array_equal(final.result[1:], gray_stack[1:])
    assert max(e.number for e in events) <= 2


def test_spatial_axes_other_than_the_last_two(gray_stack, style_image):
    moved = np.moveaxis(gray_stack, 0, 1)  # (30, 3, 40): H, Z, W
    result = stylize_stack(
        moved, style_image, StyleConfig(**dict(FAST, size=24, iterations=1)), spatial_axes=(0, 2)
    )
    assert result.shape == (18, 3, 24)


def test_flicker_measure():
    a = np.zeros((3, 4, 4))
    a[1] = 1.0
    assert temporal_difference(a) == pytest.approx(1.0)
    assert flicker(a * 0.5, a) == pytest.approx(0.5)
    assert flicker(np.zeros((2, 4, 4)), np.zeros((2, 4, 4))) == 1.0


def test_per_slice_masks_are_checked_as_a_whole(gray_stack, style_image):
    """A label only in later slices, and a slice without labels, are fine; a label in none is refused."""
    masks = np.zeros(gray_stack.shape, np.uint8)
    masks[1, :, 20:] = 2  # label 2 appears in the middle slice only; the first slice has no label
    masks[2, :, :20] = 2
    guidance = Guidance(content_mask=masks, label_styles={2: 0})
    result = stylize_stack(gray_stack, style_image, StyleConfig(**FAST), guidance=guidance)
    assert np.array_equal(result[0], gray_stack[0])  # nothing mapped in this slice: the content stays
    assert np.abs(result[1, :, 25:].astype(float) - gray_stack[1, :, 25:]).mean() > 20
    with pytest.raises(ConfigError, match=r"^label_styles: label 3 is not in the mask"):
        stylize_stack(
            gray_stack,
            style_image,
            StyleConfig(**FAST),
            guidance=Guidance(content_mask=masks, label_styles={3: 0}),
        )


BAD = [
    (dict(slices=[5]), ConfigError, r"^slices: must be slice numbers from 0 to 2"),
    (dict(slices=[(0, 1)]), ConfigError, r"^slices: index \(0, 1\) does not fit the leading axes \(3,\)"),
    (dict(slices=[]), ConfigError, r"^slices: must name at least one slice"),
    (dict(rgb=True), ImageError, r"^content: shape \(3, 30, 40\) has no colour axis"),
    (dict(spatial_axes=(1, 1)), ConfigError, r"^spatial_axes: must be two different axes"),
    (dict(spatial_axes=(0, 5)), ConfigError, r"^spatial_axes: must be two different axes"),
    (dict(consistency_weight=-1), ConfigError, r"^consistency_weight: must be a finite number >= 0"),
    (dict(motion="flow"), ConfigError, r"^motion: must be one of shift, none"),
    (
        dict(content_mask=np.zeros((2, 30, 40), int)),
        ImageError,
        r"^content_mask: shape \(2, 30, 40\) must be",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_stack_options_are_clear_errors(kwargs, error, message, gray_stack, style_image):
    with pytest.raises(error, match=message):
        next(stylize_stack_iter(gray_stack, style_image, StyleConfig(**FAST), **kwargs))
