"""The peak-memory estimate and the refusal of sizes that cannot fit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_style_transfer.engine import (
    MemoryLimitError,
    StyleConfig,
    estimate_peak_memory,
    largest_fitting_size,
    stylize_iter,
)

MEASURE = """
import numpy as np
from napari_style_transfer.engine import stylize, StyleConfig, get_network
from napari_style_transfer.engine.memory import PeakRSS
get_network()
c = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
with PeakRSS() as peak:
    stylize(c, c, StyleConfig(size=256, iterations=60, multiscale=False, preview_every=0, device="cpu"))
print(peak.peak_bytes)
"""


def test_estimate_grows_with_pixels_and_shrinks_with_half_precision():
    small = estimate_peak_memory((256, 256)).total_bytes
    large = estimate_peak_memory((512, 512)).total_bytes
    assert 3 < (large - 192 * 2**20) / (small - 192 * 2**20) < 4.5  # ~linear in pixels
    assert estimate_peak_memory((512, 512), precision="bf16").total_bytes < large
    assert estimate_peak_memory((512, 512), optimizer="adam").total_bytes < large
    assert estimate_peak_memory((512, 512), deepest_layer="relu3_1").total_bytes < large


def test_largest_fitting_size_is_consistent_with_the_estimate():
    budget = 8 * 2**30
    side = largest_fitting_size((1, 1), budget)
    assert side % 16 == 0 and side > 1000
    assert estimate_peak_memory((side, side)).total_bytes <= budget
    assert estimate_peak_memory((side + 32, side + 32)).total_bytes > budget
    assert largest_fitting_size((1, 1), 1000) == 0


@pytest.mark.slow  # make test-all
def test_estimate_covers_measured_cpu_peak():
    # A fresh process: peak RSS above the loaded network over a full L-BFGS history.
    out = subprocess.run(
        [sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=600, check=True
    )
    measured = int(out.stdout.strip().splitlines()[-1])
    estimate = estimate_peak_memory((256, 256)).total_bytes
    assert measured <= estimate <= 4 * measured


def test_size_that_cannot_fit_is_refused_before_any_step(content_image, style_image):
    events = []
    with pytest.raises(
        MemoryLimitError, match=r"^size: 60000 px needs about .* the largest size that fits is about \d+ px"
    ) as info:
        for event in stylize_iter(
            content_image, style_image, StyleConfig(size=60000, iterations=1, device="cpu")
        ):
            events.append(event)
    assert events == []
    assert 0 < info.value.largest_size < 60000
    assert isinstance(np.asarray(content_image), np.ndarray)
