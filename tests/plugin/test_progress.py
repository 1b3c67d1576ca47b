"""Progress as the widget shows it (Qt-free): preview rate limit, speed and time left, status texts."""

from __future__ import annotations

import numpy as np
import pytest

from napari_style_transfer.engine import ProgressEvent, StackEvent
from napari_style_transfer.plugin.progress import (
    PreviewThrottle,
    RateMeter,
    RefreshGate,
    as_update,
    final_text,
    format_duration,
    format_status,
    running_text,
)


def event(
    step, elapsed, *, scale=0, n_scales=1, iteration=None, iterations=10, total=10, shape=(16, 16), **kw
):
    return ProgressEvent(
        scale, n_scales, shape, iteration or step, iterations, step, total, {"total": 1.25}, elapsed, **kw
    )


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


def test_a_slow_preview_spaces_the_next_ones_and_the_latest_still_comes():
    now = [0.0]
    throttle = PreviewThrottle(10, clock=lambda: now[0], time_share=0.05)
    assert throttle.offer("a") == "a"
    throttle.shown(0.1)  # showing it took 0.1 s: the next one no sooner than 0.1 / 0.05 = 2 s later
    assert throttle.interval == pytest.approx(2.0)
    for k, t in enumerate((0.5, 1.0, 1.5)):
        now[0] = t
        assert throttle.offer(f"p{k}") is None
    now[0] = 2.0
    assert throttle.take_pending() == "p2" and throttle.dropped == 2  # the latest is shown
    for _ in range(3):  # fast again: back towards the 10 per second limit
        throttle.shown(0.001)
    assert throttle.interval < 0.5
    gate_now = [0.0]
    gate = RefreshGate(2, clock=lambda: gate_now[0])
    assert gate.due() and not gate.due()
    gate_now[0] = 0.5
    assert gate.due()
    gate.spent(0.02)  # a slow redraw (20 ms): at most 1 % of the time, so one every 2 s
    gate_now[0] = 1.5
    assert not gate.due()
    gate_now[0] = 2.5
    assert gate.due()


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


def test_2d_and_stack_events_become_one_kind_of_update():
    image = np.zeros((4, 4), np.uint8)
    flat = as_update(event(3, 1.0, preview=image))
    assert not flat.is_stack and flat.throttled and flat.image is image and flat.final is None
    assert running_text(flat, None, None) == "Iteration 3/10 · loss 1.25"
    last = as_update(event(10, 2.0, preview=image, done=True, info={"device": "cpu"}))
    assert last.done and last.final is image
    assert (
        final_text(last, None, "tiles of 32 px")
        == "Done: 10 steps in 2 s on cpu (5.0 it/s). Tiled: tiles of 32 px."
    )

    inner = event(2, 1.0, total=4)
    stack = as_update(StackEvent((1,), 2, 3, inner, slice_result=image))
    assert stack.is_stack and not stack.throttled and stack.index == (1,) and stack.image is image
    assert (stack.step, stack.total_steps) == (6, 12)
    assert running_text(stack, None, None) == "Slice 2/3 · Iteration 2/10 · loss 1.25"
    whole = np.zeros((3, 4, 4), np.uint8)
    done = as_update(StackEvent((2,), 3, 3, event(4, 2.0, total=4, done=True), result=whole, done=True))
    assert done.final is whole
    stopped = as_update(StackEvent((1,), 2, 3, inner, result=whole, done=True, stopped=True))
    assert stopped.final is None  # a stopped stack keeps its finished slices only
    assert final_text(stopped, "asked", None, 1).startswith("Stopped (asked) after 1/3 slices")
