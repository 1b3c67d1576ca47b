"""The "Runs on" text: what 'auto' picks for the current output size and precision, before Run.

Every device query is monkeypatched (a fake H100, a V100, two GPUs, ROCm, Apple's MPS, a
CPU), so these run anywhere; the engine's own rules decide, and a Stylizer made with the same
settings must agree with the text.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import StyleConfig, Stylizer
from napari_style_transfer.engine import runtime as engine_runtime
from napari_style_transfer.plugin.device import describe_device, hardware_text, torch_build

H100 = ("NVIDIA H100 80GB HBM3", 85_045_000_000, (9, 0))  # 79.2 GiB
V100 = ("Tesla V100-SXM2-16GB", 16_935_000_000, (7, 0))


@pytest.fixture
def gpus(monkeypatch):
    """Make torch see the given fake CUDA GPUs: ``gpus(H100, V100)``; ``gpus()`` for none."""

    def install(*cards, current=0):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(cards))
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(cards))
        monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
        monkeypatch.setattr(
            torch.cuda, "get_device_name", lambda i=None: cards[current if i is None else i][0]
        )
        monkeypatch.setattr(
            torch.cuda,
            "get_device_properties",
            lambda i=None: SimpleNamespace(total_memory=cards[current if i is None else i][1]),
        )
        monkeypatch.setattr(
            torch.cuda, "get_device_capability", lambda i=None: cards[current if i is None else i][2]
        )
        monkeypatch.setattr(torch.version, "hip", None)
        if getattr(torch.backends, "mps", None) is not None:
            monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
        monkeypatch.setattr(engine_runtime, "cpu_supports_bf16", lambda: False)

    return install


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (512, "CUDA 0: NVIDIA H100 80GB HBM3 (79 GiB), fp32 at this size"),
        (1535, "CUDA 0: NVIDIA H100 80GB HBM3 (79 GiB), fp32 at this size"),
        (1536, "CUDA 0: NVIDIA H100 80GB HBM3 (79 GiB), bf16 at this size"),
        (None, "CUDA 0: NVIDIA H100 80GB HBM3 (79 GiB), bf16"),
    ],
)
def test_auto_on_a_bf16_gpu_depends_on_the_output_size(gpus, size, expected):
    gpus(H100)
    summary = describe_device("auto", "auto", size)
    assert summary.ok and summary.text == expected
    assert "fp32 (TF32 convolutions) below 1536 px and bf16 from there" in summary.tooltip
    assert "'auto' picks CUDA 0" in summary.tooltip


def test_auto_on_an_older_gpu_is_fp16_at_any_size(gpus):
    gpus(V100)
    for size in (256, 4096, None):
        assert describe_device("auto", "auto", size).text == "CUDA 0: Tesla V100-SXM2-16GB (16 GiB), fp16"


def test_a_chosen_precision_is_said_as_it_is(gpus):
    gpus(H100)
    assert describe_device("cuda", "fp32", 4096).text.endswith("(79 GiB), fp32")
    assert describe_device("cuda", "bf16", 256).text.endswith("(79 GiB), bf16")


def test_the_chosen_gpu_of_several(gpus):
    gpus(H100, V100)
    assert describe_device("cuda:1", "auto", 512).text == "CUDA 1: Tesla V100-SXM2-16GB (16 GiB), fp16"
    assert describe_device("auto", "auto", 512).text.startswith("CUDA 0: NVIDIA H100")
    missing = describe_device("cuda:2", "auto", 512)
    assert not missing.ok
    assert missing.text == "device: 'cuda:2' does not exist; this machine has 2 CUDA device(s)"


def test_rocm_gpus_are_named_so(gpus, monkeypatch):
    gpus(("AMD Instinct MI300X", 206_000_000_000, (9, 4)))
    monkeypatch.setattr(torch.version, "hip", "6.2.41133")
    assert (
        describe_device("auto", "auto", 512).text
        == "ROCm 0: AMD Instinct MI300X (192 GiB), fp32 at this size"
    )
    assert "(ROCm 6.2.41133)" in torch_build()


@pytest.mark.parametrize(("threads", "words"), [(2, "2 threads"), (1, "1 thread")])
def test_cpu_says_its_threads(gpus, monkeypatch, threads, words):
    gpus()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    summary = describe_device("auto", "auto", 512)
    assert summary.ok and summary.text == f"CPU, {words}, fp32"
    assert "this PyTorch sees no GPU" in summary.tooltip
    monkeypatch.setattr(engine_runtime, "cpu_supports_bf16", lambda: True)
    assert describe_device("auto", "auto", 512).text == f"CPU, {words}, bf16"


def test_apple_gpu(gpus, monkeypatch):
    gpus()
    mps = pytest.importorskip("torch.backends.mps")
    monkeypatch.setattr(mps, "is_available", lambda: True)
    assert describe_device("auto", "auto", 512).text == "Apple GPU (MPS), fp32"
    refused = describe_device("mps", "bf16", 512)
    assert (
        not refused.ok
        and refused.text == "Apple GPU (MPS) — precision: 'bf16' is not supported on 'mps'; use 'fp32'"
    )


def test_settings_that_cannot_run_here_say_why(gpus):
    gpus()
    fp16 = describe_device("cpu", "fp16", 512)
    assert not fp16.ok
    assert fp16.text.endswith("— precision: 'fp16' needs a CUDA GPU; on cpu use 'bf16' or 'fp32'")
    cuda = describe_device("cuda", "auto", 512)
    assert not cuda.ok and cuda.text.startswith("device: 'cuda' is not available on this machine")


def test_a_broken_driver_is_one_line_not_an_exception(gpus, monkeypatch):
    gpus(H100)

    def broken(index=None):
        raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version\nmore")

    monkeypatch.setattr(torch.cuda, "get_device_name", broken)
    summary = describe_device("auto", "auto", 512)
    assert not summary.ok
    assert summary.text == "cuda: not usable (CUDA driver version is insufficient for CUDA runtime version)"


def test_torch_build_names_what_pytorch_was_built_for(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch, "__version__", "2.5.1+cu124")
    assert torch_build() == "PyTorch 2.5.1+cu124 (CUDA 12.4)"
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    assert torch_build() == "PyTorch 2.5.1+cpu (CPU only)"


@pytest.mark.parametrize("card", [H100, V100])
@pytest.mark.parametrize("precision", ["auto", "fp32"])
@pytest.mark.parametrize("size", [256, 2048, None])
def test_the_text_says_what_the_engine_will_run(gpus, card, precision, size):
    """A Stylizer with the same settings picks the device and the precision the row names."""
    gpus(card)
    style = np.zeros((16, 16, 3), np.uint8)
    stylizer = Stylizer(style, StyleConfig(size=size, precision=precision, device="auto"))
    text = describe_device("auto", precision, size).text
    assert stylizer.device.type == "cuda"
    assert text.startswith("CUDA 0: ") and text.split(", ")[-1].split(" ")[0] == stylizer.runtime.precision
    assert hardware_text(stylizer.device) in text
