"""Speed paths: autocast precision and channels_last, checked for correctness on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_style_transfer.engine import ConfigError, StyleConfig, stylize, stylize_iter
from napari_style_transfer.engine.transfer import cpu_supports_bf16, select_runtime

FAST = dict(size=64, iterations=10, multiscale=False, preview_every=0, device="cpu")


def test_runtime_resolution_on_cpu():
    cpu = torch.device("cpu")
    assert select_runtime("fp32", cpu).autocast_dtype is None
    assert not select_runtime("fp32", cpu).channels_last
    bf16 = select_runtime("bf16", cpu)
    assert bf16.autocast_dtype == torch.bfloat16 and bf16.channels_last
    assert select_runtime("auto", cpu).precision == ("bf16" if cpu_supports_bf16() else "fp32")
    with pytest.raises(ConfigError, match="^precision: 'fp16' needs a CUDA GPU"):
        select_runtime("fp16", cpu)


def test_bf16_channels_last_matches_fp32_losses(content_image, style_image):
    fp32 = list(stylize_iter(content_image, style_image, StyleConfig(**FAST)))
    bf16 = list(stylize_iter(content_image, style_image, StyleConfig(**FAST, precision="bf16")))
    assert bf16[-1].info["precision"] == "bf16" and fp32[-1].info["precision"] == "fp32"
    # Same optimisation, lower precision inside the network only: the losses track closely.
    for key in ("content", "style", "total"):
        assert bf16[-1].losses[key] == pytest.approx(fp32[-1].losses[key], rel=0.1)
    assert bf16[-1].losses["total"] < 0.7 * bf16[0].losses["total"]
    diff = np.abs(bf16[-1].preview.astype(float) - fp32[-1].preview.astype(float)).mean()
    assert diff < 6  # of 255: visually the same image


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "auto"])
def test_cuda_precisions_lower_the_loss(precision, content_image, style_image):
    events = list(stylize_iter(content_image, style_image, StyleConfig(**dict(FAST, device="cuda"), precision=precision)))
    assert events[-1].info["device"].startswith("cuda")
    assert events[-1].losses["total"] < 0.7 * events[0].losses["total"]
    out = stylize(content_image, style_image, StyleConfig(**dict(FAST, device="cuda"), precision=precision))
    assert out.dtype == np.uint8
