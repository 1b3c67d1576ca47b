"""The CUDA and Apple (MPS) code paths, checked on the CPU.

Where a path asks the device something (capability, free memory, streams), the question is
answered by monkeypatching torch's device query; the maths always runs for real.
"""

from __future__ import annotations

import gc
import os
import threading
import warnings

import pytest
import torch

from napari_style_transfer.engine import memory, runtime, vgg
from napari_style_transfer.engine.losses import relative_sq_distance
from napari_style_transfer.engine.masks import HOST_RESIZE_DEVICES, Region, resize_mask
from napari_style_transfer.engine.runtime import (
    FP16_TINY,
    LossScaler,
    Runtime,
    deterministic_algorithms,
    host_transfers,
    initial_loss_scale,
    loss_values,
    on_device,
    record_copy_done,
    select_runtime,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
GIB = 2**30


# ----------------------------------------------------------------------------- 2. 'auto' precision


@pytest.fixture
def two_gpus(monkeypatch):
    """Two CUDA devices: 0 an A100 (8.0), 1 a T4 (7.5); is_bf16_supported says yes as it does on both."""
    capability = {0: (8, 0), 1: (7, 5)}
    current = {"index": 0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current["index"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability[index])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts
    return current


def test_auto_precision_follows_the_chosen_gpus_compute_capability(two_gpus):
    assert select_runtime("auto", torch.device("cuda:0")).precision == "bf16"
    assert select_runtime("auto", torch.device("cuda:1")).precision == "fp16"  # T4: no bf16 tensor cores
    two_gpus["index"] = 1
    assert select_runtime("auto", torch.device("cuda")).precision == "fp16"  # 'cuda' is the current device
    two_gpus["index"] = 0
    auto = select_runtime("auto", torch.device("cuda"))
    assert auto.precision == "bf16" and auto.channels_last and auto.loss_scaler(512 * 512) is None
    assert select_runtime("bf16", torch.device("cuda:1")).precision == "bf16"  # asked for: allowed


# ----------------------------------------------------------------------------- 3. fp16 loss scaling


def test_initial_loss_scale_grows_with_the_pixel_count():
    scales = [initial_loss_scale(side * side) for side in (1, 64, 256, 1024, 4096, 65536)]
    assert scales == sorted(scales) and scales[0] == 2.0**10 and scales[-1] == 2.0**32
    assert all(s == 2.0 ** round(float(torch.log2(torch.tensor(s)))) for s in scales)  # powers of two: exact
    assert initial_loss_scale(512 * 512) == 2.0**26


def test_pixel_count_scale_keeps_fp16_feature_gradients_normal_where_1024_does_not():
    """A relative feature distance at 256 px (relu1_1-sized, real fp16 arithmetic): its gradient
    scaled by 1024 is mostly below fp16's smallest normal number; scaled by the pixel-count scale it is not."""
    torch.manual_seed(0)
    h = w = 256
    target = torch.rand(1, 64, h, w)
    features = (target + 0.05 * torch.randn_like(target)).half().requires_grad_(True)

    def tiny_share(scale: float) -> float:
        features.grad = None
        (relative_sq_distance(features, target) * scale).backward()
        assert torch.isfinite(features.grad).all()
        return float((features.grad.float().abs() < FP16_TINY).float().mean())

    assert tiny_share(1024.0) > 0.5
    assert tiny_share(initial_loss_scale(h * w)) < 0.01


def test_loss_scaler_halves_on_overflow_grows_after_good_steps_and_gives_up_at_the_floor():
    scaler = LossScaler(initial=2.0**12, growth_interval=3, min_scale=2.0**10)
    assert scaler.update(False) is True and scaler.value == 2.0**11  # overflow: redo with half
    assert [scaler.update(True) for _ in range(3)] == [False] * 3 and scaler.value == 2.0**12  # grown
    scaler.update(True)
    assert scaler.update(False) and scaler.good_steps == 0 and scaler.value == 2.0**11
    assert scaler.update(False) and scaler.value == 2.0**10
    assert scaler.update(False) is False and scaler.overflows == 3  # at the floor: the loss itself is bad
    with pytest.raises(ValueError, match="growth_interval"):
        LossScaler(growth_interval=0)


def test_loss_scaler_backward_unscales_and_flags_an_fp16_overflow_without_reading_it():
    x = torch.ones(4, requires_grad=True)
    scaler = LossScaler(initial=2.0**8)
    flag = scaler.backward((x.half() * 3).float().sum(), x)
    assert flag.dtype == torch.bool and flag.shape == () and bool(flag)
    assert torch.equal(x.grad, torch.full((4,), 3.0))
    x.grad = None
    big = LossScaler(initial=2.0**20)  # 3 × 2²⁰ does not fit in fp16
    assert not bool(big.backward((x.half() * 3).float().sum(), x))


def test_an_fp16_runtime_makes_a_scaler_from_the_pixel_count():
    rt = Runtime(torch.device("cuda"), torch.float16, channels_last=True)
    scaler = rt.loss_scaler(1024 * 1024)
    assert isinstance(scaler, LossScaler) and scaler.value == initial_loss_scale(1024 * 1024)
    assert rt.loss_scaler(64) is not scaler  # a fresh one per scale
    assert Runtime(torch.device("cpu"), None, channels_last=False).loss_scaler(64) is None


# ----------------------------------------------------------------------------- 4. preview events


def test_preview_event_is_recorded_on_the_images_device_stream(monkeypatch):
    calls = []

    class Event:
        def record(self, stream=None):
            calls.append(("record", stream))

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    image = type("CudaImage", (), {"device": torch.device("cuda:1")})()  # where the copy's source lives
    assert isinstance(record_copy_done(image), Event)
    assert calls == [("record", "stream of cuda:1")]  # not the current device's (0) stream
    assert record_copy_done(torch.zeros(2)) is None  # off CUDA: copies are synchronous


def test_on_device_makes_the_runs_gpu_current_for_the_loop(monkeypatch):
    entered = []

    class DeviceGuard:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            entered.append(self.device)

        def __exit__(self, *exc):
            entered.append("exit")

    monkeypatch.setattr(torch.cuda, "device", DeviceGuard)
    with on_device(torch.device("cuda:1")):
        assert entered == [torch.device("cuda:1")]
    assert entered[-1] == "exit"
    with on_device(torch.device("cpu")):
        pass
    assert len(entered) == 2


# ----------------------------------------------------------------------------- 5. free memory


def test_cuda_free_memory_counts_pytorchs_unused_cache_as_free(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 30 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 4 * GIB)
    assert memory.available_memory(torch.device("cuda:0")) == 27 * GIB  # 1 free + 26 cached, unused


def test_mps_free_memory_is_the_working_set_minus_what_tensors_hold(monkeypatch):
    import psutil

    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 20 * GIB)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 5 * GIB)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 8 * GIB)
    ram = type("VM", (), {"available": 100 * GIB})()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: ram)
    assert memory.available_memory(torch.device("mps")) == 15 * GIB
    ram.available = 4 * GIB  # shared RAM nearly full: free RAM + the MPS cache (3 GiB)
    assert memory.available_memory(torch.device("mps")) == 7 * GIB
    monkeypatch.delattr(torch.mps, "recommended_max_memory")  # an older torch: no figure
    assert memory.available_memory(torch.device("mps")) is None


def test_release_cached_memory_empties_the_device_cache(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append("cuda"))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: emptied.append("mps"))
    collected = []
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(1) or 0)
    memory.release_cached_memory(torch.device("cuda:0"))
    memory.release_cached_memory("mps", collect=False)
    memory.release_cached_memory(torch.device("cpu"))  # nothing cached there
    assert emptied == ["cuda", "mps"] and collected == [1]


# ----------------------------------------------------------------------------- 6. host synchronisations


def test_preprocess_builds_its_constants_once_per_device_and_dtype(monkeypatch):
    x = torch.rand(1, 3, 4, 5)
    first = vgg.preprocess(x, vgg.CAFFE)
    made = []
    real = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(a) or real(*a, **k))
    again = vgg.preprocess(x, vgg.CAFFE)
    assert made == [] and torch.equal(first, again)  # no tensor (no host → device copy) per forward
    expected = (x.flip(1) * 255 - real(vgg.CAFFE.mean).view(1, 3, 1, 1)) / real(vgg.CAFFE.std).view(
        1, 3, 1, 1
    )
    assert torch.allclose(first, expected)
    vgg.preprocess(x.double(), vgg.CAFFE)
    assert len(made) == 2  # a new dtype: its own mean and std


def test_loss_values_fetch_all_terms_in_one_transfer():
    terms = {"content": torch.tensor(0.5), "style": torch.tensor(2.0, dtype=torch.float64), "tv": 0.25}
    before = host_transfers()
    assert loss_values(terms) == {"content": 0.5, "style": 2.0, "tv": 0.25}
    assert host_transfers() - before == 1
    assert loss_values({"total": 1.0}) == {"total": 1.0} and host_transfers() - before == 1


def test_host_transfers_are_counted_per_thread():
    counts = []
    thread = threading.Thread(
        target=lambda: (runtime.to_host(torch.zeros(1)), counts.append(host_transfers()))
    )
    before = host_transfers()
    thread.start()
    thread.join()
    assert counts == [1] and host_transfers() == before


# ----------------------------------------------------------------------------- 7. memory estimate


def test_estimate_counts_gram_copies_cudnn_workspaces_and_guided_copies():
    shape = (1024, 1024)
    pixels = shape[0] * shape[1]
    base = memory.estimate_peak_memory(shape).total_bytes
    assert base == 5_173_025_024  # the calibrated CPU value, unchanged by the new terms' defaults
    cuda = memory.estimate_peak_memory(shape, device="cuda").total_bytes
    assert cuda - base == 256 * 2**20 + 2 * 64 * 4 * pixels
    assert memory.estimate_peak_memory(shape, device=torch.device("cpu")).total_bytes == base
    guided = memory.estimate_peak_memory(shape, regions=2).total_bytes
    per_region = (65 + 129 / 4 + 257 / 16 + 513 / 64 + 513 / 256) * 4 * pixels
    assert guided - base == pytest.approx(2 * per_region, abs=2)
    # bf16: fewer bytes per activation, but the fp32 copy in the Gram backward is counted
    bf16 = memory.estimate_peak_memory(shape, precision="bf16")
    assert bf16.total_bytes < base
    assert bf16.activations_bytes - 64 * 4 * pixels == pytest.approx(
        memory.activations_per_pixel("relu5_1") * pixels * 7.5, rel=1e-9
    )


# ----------------------------------------------------------------------------- 8. torch.compile


@pytest.fixture
def small_net():
    state = vgg.load_embedded_state_dict()
    net = vgg.VGGFeatures(state, "relu2_1")
    yield net
    torch._dynamo.reset()


def test_compiled_network_does_not_recompile_for_every_scale(small_net):
    runner = small_net.compiled("eager")  # dynamo's shape handling is the same for every backend
    # (sizes above the few thousand pixels where the CPU convolution's shape rules guard on the size)
    for h, w in ((96, 128), (128, 192), (200, 280), (144, 208), (112, 160)):
        x = torch.rand(1, 3, h, w)
        out = runner(x, ("relu1_1", "relu2_1"))
        assert torch.allclose(out["relu2_1"], small_net(x, ("relu1_1", "relu2_1"))["relu2_1"])
    assert runner.active and runner.compiles <= 2  # static first, then one dynamic graph for all shapes
    assert small_net.compiled("eager") is runner  # made once per backend


def _raising_backend(gm, example_inputs):
    raise RuntimeError("no C++ compiler found (on purpose)")


def test_a_forward_compile_failure_falls_back_to_eager(small_net):
    runner = small_net.compiled(_raising_backend)
    x = torch.rand(1, 3, 16, 16)
    with pytest.warns(
        RuntimeWarning, match="torch.compile failed, running the network eagerly: .*on purpose"
    ):
        out = runner(x, ("relu1_1",))
    assert not runner.active and torch.equal(out["relu1_1"], small_net(x, ("relu1_1",))["relu1_1"])


def test_a_backward_compile_failure_falls_back_to_eager_inside_the_evaluation(small_net):
    """The backward is compiled lazily, in the loss's backward() call: call_guarded catches it there."""
    from torch._dynamo.backends.common import aot_autograd

    def broken_backward(gm, example_inputs):
        raise RuntimeError("backward kernel failed to build (on purpose)")

    runner = small_net.compiled(aot_autograd(fw_compiler=lambda gm, _: gm, bw_compiler=broken_backward))
    x = torch.rand(1, 3, 16, 16)
    image = x.clone().requires_grad_(True)

    compiled_forward = []

    def evaluate():
        image.grad = None
        loss = runner(image, ("relu2_1",))["relu2_1"].square().mean()
        compiled_forward.append(runner.active)
        loss.backward()
        return float(loss.detach())

    with pytest.warns(RuntimeWarning, match="torch.compile failed.*on purpose"):
        loss = runner.call_guarded(evaluate)
    assert compiled_forward == [True, False]  # the compiled forward ran; its backward failed; then eager
    ref = x.clone().requires_grad_(True)
    expected = small_net(ref, ("relu2_1",))["relu2_1"].square().mean()
    expected.backward()
    assert loss == pytest.approx(float(expected)) and torch.allclose(image.grad, ref.grad)


def test_out_of_memory_is_not_taken_for_a_compiler_failure(small_net):
    runner = small_net.compiled("eager")

    def evaluate():
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(torch.OutOfMemoryError):
        runner.call_guarded(evaluate)
    assert runner.active


# ----------------------------------------------------------------------------- 9. MPS masks


def test_masks_are_resized_on_the_host_for_devices_without_antialiasing(monkeypatch):
    mask = torch.rand(1, 1, 40, 60)
    seen = []
    real = torch.Tensor.cpu
    monkeypatch.setattr(
        torch.Tensor, "cpu", lambda self, *a, **k: seen.append(self.device.type) or real(self, *a, **k)
    )
    direct = resize_mask(mask, (10, 15))
    assert seen == []
    assert "mps" in HOST_RESIZE_DEVICES
    monkeypatch.setattr("napari_style_transfer.engine.masks.HOST_RESIZE_DEVICES", frozenset({"cpu"}))
    region = Region(mask, {})
    layer_mask, share = region.at((10, 15))
    assert seen == ["cpu"] and torch.equal(layer_mask, direct.clamp(0, 1)) and 0 < share < 1


# ----------------------------------------------------------------------------- 10. determinism


def _deterministic_state():
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
    )


def test_overlapping_deterministic_generators_leave_the_setting_as_it_was():
    before = _deterministic_state()
    assert before == (False, False, False)

    def run():
        with deterministic_algorithms(True):
            yield torch.are_deterministic_algorithms_enabled()
            yield torch.are_deterministic_algorithms_enabled()

    a, b = run(), run()
    assert next(a) and next(b)
    assert next(a)  # a still inside, b paused inside
    a.close()
    assert torch.are_deterministic_algorithms_enabled()  # b is still running deterministically
    b.close()
    assert _deterministic_state() == before


def test_deterministic_blocks_in_two_threads_restore_warn_only_and_set_cublas_workspace(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        inside, leave = threading.Barrier(3), threading.Barrier(3)

        def worker(order: list):
            with deterministic_algorithms(True):
                inside.wait()
                leave.wait()
                order.append(torch.are_deterministic_algorithms_enabled())

        order: list = []
        threads = [threading.Thread(target=worker, args=(order,)) for _ in range(2)]
        for t in threads:
            t.start()
        inside.wait()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        leave.wait()
        for t in threads:
            t.join()
        assert order == [True, True]
        assert _deterministic_state()[:2] == (True, True)  # warn_only survives, not plain True
    finally:
        torch.use_deterministic_algorithms(False)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with deterministic_algorithms(True):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"  # a user's own setting is kept
    with warnings.catch_warnings(), deterministic_algorithms(False):
        assert not torch.are_deterministic_algorithms_enabled()
