"""What goes wrong, in one sentence (Qt-free)."""

from __future__ import annotations

import pytest

from napari_style_transfer.engine import ConfigError, ImageError, StyleTransferError, WeightsError
from napari_style_transfer.plugin.faults import error_message


@pytest.mark.parametrize(
    ("exc", "start"),
    [
        (ConfigError("size: must be an integer, got 'x'"), "Invalid setting — Output size (size): must"),
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
