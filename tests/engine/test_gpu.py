"""Tests that need a CUDA GPU: ``pytest -m gpu tests/engine/test_gpu.py`` (they skip cleanly without one).

This module imports only the engine (no napari, no Qt), so that it runs on a bare device
machine; ``benchmarks/gpu_check.py`` runs it as its second step.
"""

from __future__ import annotations

import traceback
import warnings

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import StyleConfig, stylize, stylize_iter, vgg
from napari_style_transfer.engine.lbfgs import CompactLBFGS
from napari_style_transfer.engine.memory import available_memory, release_cached_memory
from napari_style_transfer.engine.runtime import (
    cuda_auto_precision,
    deterministic_algorithms,
    record_copy_done,
    select_runtime,
)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

FAST = dict(size=64, iterations=10, multiscale=False, preview_every=0, device="cuda")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "auto"])
def test_cuda_precisions_lower_the_loss(precision, content_image, style_image):
    events = list(stylize_iter(content_image, style_image, StyleConfig(**FAST, precision=precision)))
    assert events[-1].info["device"].startswith("cuda")
    assert events[-1].losses["total"] < 0.7 * events[0].losses["total"]
    out = stylize(content_image, style_image, StyleConfig(**FAST, precision=precision))
    assert out.dtype == np.uint8


def test_auto_precision_is_that_of_this_gpus_compute_capability():
    device = torch.device("cuda:0")
    major, _ = torch.cuda.get_device_capability(0)
    assert cuda_auto_precision(device) == ("bf16" if major >= 8 else "fp16")
    assert select_runtime("auto", device).precision == cuda_auto_precision(device)
    if major >= 8:  # measured faster in fp32 (TF32) below AUTO_BF16_FROM_SIDE
        assert select_runtime("auto", device, long_side=512).precision == "fp32"
        assert select_runtime("auto", device, long_side=2048).precision == "bf16"


def test_cuda_previews_are_copied_asynchronously_and_arrive_one_step_later(content_image, style_image):
    config = StyleConfig(**dict(FAST, preview_every=1, iterations=5))
    events = list(stylize_iter(content_image, style_image, config))
    assert events[0].preview is None  # the first step's preview is rendered during the second step
    assert all(e.preview is not None and e.preview.shape == content_image.shape for e in events[1:])
    assert events[-1].done and events[-1].preview.dtype == np.uint8


def test_lbfgs_step_synchronises_once_and_keeps_float32_on_the_gpu():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 64, 64, device="cuda")
    x = torch.zeros_like(target, requires_grad=True)
    opt = CompactLBFGS([x], history_size=5)

    def closure():
        opt.zero_grad()
        loss = (x - target).pow(2).sum() + (x[..., 1:] - x[..., :-1]).pow(4).sum()
        loss.backward()
        return loss, {"total": loss}

    opt.step(closure)  # the first step allocates the history
    for _ in range(8):
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                opt.step(closure)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in caught if "called a synchronizing" in str(w.message)]  # not the "prototype" note
        assert len(syncs) == 1, [str(w.message) for w in syncs]
    state = opt.state[x]
    assert state["rows"].dtype == torch.float32 and state["rows"].device.type == "cuda"


def test_free_memory_counts_the_cache_and_releasing_it_gives_it_back():
    release_cached_memory("cuda")
    block = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    del block  # now cached by PyTorch, free for the next run
    free, _ = torch.cuda.mem_get_info()
    reserved = torch.cuda.memory_reserved()
    assert available_memory(torch.device("cuda")) >= free + 256 * 2**20 - 1
    release_cached_memory("cuda")
    assert torch.cuda.memory_reserved() < reserved


def test_preview_copy_event_waits_for_the_copy_on_the_images_stream():
    image = torch.rand(1, 3, 256, 256, device="cuda")
    host = torch.empty(image.shape, pin_memory=True)
    host.copy_(image, non_blocking=True)
    event = record_copy_done(image)
    event.synchronize()
    assert torch.equal(host, image.cpu())


def _forget(exc: BaseException) -> None:
    """Drop an exception's frames (they hold the run's tensors), as the GUI's error handler does."""
    while exc is not None:
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
            exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


def test_no_cuda_memory_is_leaked_between_runs_or_after_a_fault(monkeypatch, content_image, style_image):
    config = StyleConfig(size=64, iterations=3, multiscale=False, preview_every=1, device="cuda")
    stylize(content_image, style_image, config)  # warm-up: the cached network is the baseline
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    stylize(content_image, style_image, config)
    release_cached_memory("cuda")
    assert torch.cuda.memory_allocated() == baseline
    real = vgg.VGGFeatures.forward
    calls = {"n": 0}

    def forward(net, x, names):
        calls["n"] += 1
        if calls["n"] > 4:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(net, x, names)

    monkeypatch.setattr(vgg.VGGFeatures, "forward", forward)
    with pytest.raises(torch.OutOfMemoryError) as info:
        list(stylize_iter(content_image, style_image, config))
    _forget(info.value)
    del info
    release_cached_memory("cuda")
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == baseline
    monkeypatch.undo()
    stylize(content_image, style_image, config)
    release_cached_memory("cuda")
    assert torch.cuda.memory_allocated() == baseline


def test_deterministic_runs_repeat_exactly_and_leave_the_setting_off(content_image, style_image):
    config = StyleConfig(**dict(FAST, iterations=5, deterministic=True, seed=3, init="noise"))
    first = stylize(content_image, style_image, config)
    second = stylize(content_image, style_image, config)
    assert np.array_equal(first, second)
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms(True):
        assert torch.are_deterministic_algorithms_enabled()
    assert not torch.are_deterministic_algorithms_enabled()
