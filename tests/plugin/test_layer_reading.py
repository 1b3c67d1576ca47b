"""Layers read as the engine's inputs without a viewer: lazy (dask, zarr-like) data read strip by
strip and only as much as the run needs, nD and too-big layers refused before anything is read.

Each case is listed in docs/reliability.md with what the user gets.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from napari.layers import Image, Labels

import napari_style_transfer.arrays as arrays_module
import napari_style_transfer.plugin.layers as layers_module
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.layers import check_2d_image, layer_array
from napari_style_transfer.plugin.run_request import prepare_run

PARAMS = dict(size=32, iterations=3, multiscale=False, preview_every=1, device="cpu")


class StripArray:
    """A lazy 2D/3D array that records every read and refuses to be loaded whole."""

    def __init__(self, array: np.ndarray):
        self._array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.rows_read = 0

    def __getitem__(self, key):
        part = self._array[key]
        self.rows_read += part.shape[0]
        assert part.shape[0] < self.shape[0], "read whole"
        return part

    def __array__(self, *args, **kwargs):
        raise AssertionError("loaded whole")


def test_big_lazy_layers_are_read_strip_by_strip_and_reduced(monkeypatch):
    monkeypatch.setattr(arrays_module, "STRIP_BYTES", 64 * 1024)
    full = np.random.default_rng(0).integers(0, 65535, (700, 1000, 3), dtype=np.uint16)
    lazy = StripArray(full)
    out = layer_array(SimpleNamespace(data=lazy, name="big"), long_side=64)
    # 7×7 block means: 1000 // (2 × 64) = 7 (700×1000 → 100×143, the last column of blocks 6 wide)
    assert out.dtype == np.uint16 and out.shape == (100, 143, 3)
    assert lazy.rows_read == 700  # every row read once, a strip at a time
    sums = full[: 7 * 100, : 7 * 142].astype(np.int64).reshape(100, 7, 142, 7, 3).sum(axis=(1, 3))
    np.testing.assert_array_equal(out[:, :142], (sums + 24) // 49)  # exact, rounded half up
    edge = full[:, 994:].astype(np.int64).reshape(100, 7, 6, 3).sum(axis=(1, 2))
    np.testing.assert_array_equal(out[:, 142], (edge + 21) // 42)


def test_dask_layers_compute_only_what_the_run_needs():
    da = pytest.importorskip("dask.array")
    computed: list[tuple] = []

    def record(block, block_info=None):
        computed.append(block_info[None]["array-location"] if block_info else None)
        return block

    base = da.random.default_rng(0).integers(0, 255, (2048, 3072, 3), dtype=np.uint8, chunks=(256, 256, 3))
    levels = [base.map_blocks(record, dtype=np.uint8)]
    for _ in range(3):
        levels.append(levels[-1][::2, ::2])
    pyramid = Image(levels, multiscale=True, rgb=True, name="pyramid")
    single = Image(levels[0], rgb=True, name="single")
    style = Image(np.zeros((40, 40, 3), np.uint8), rgb=True, name="style")
    computed.clear()
    request = prepare_run(pyramid, [(style, 1.0)], dict(PARAMS, size=200))
    assert computed == []  # checks on the GUI thread read nothing; the worker reads:
    # the smallest level whose long side is >= 200 px is level 3 (384 px): its chunks, each once
    assert request.read().content.shape == (256, 384, 3) and request.content_shape == (2048, 3072)
    assert len(computed) == 96
    computed.clear()
    request = prepare_run(single, [(style, 1.0)], dict(PARAMS, size=64))
    assert computed == []
    # block means of 23×23 (the output is 43×64; reduced to at least twice that), strip by strip
    assert request.read().content.shape == (90, 134, 3)
    assert 96 <= len(computed) <= 2 * 96  # a chunk on the border of two strips is read twice


def test_nd_lazy_layers_are_refused_without_reading_them():
    da = pytest.importorskip("dask.array")
    calls = []
    data = da.zeros((50, 64, 64), np.float32, chunks=(1, 64, 64)).map_blocks(
        lambda b: calls.append(1) or b, dtype=np.float32
    )
    stack = Image(data, name="stack")
    calls.clear()  # napari read the slice it shows
    with pytest.raises(UserError, match=r"has 3 dimensions \(50, 64, 64\); only 2D images"):
        check_2d_image(stack, "content")
    assert calls == []


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((43, 64, 2), "if axis 2 holds 2 channels, open the image with channel_axis=2"),
        ((5, 64, 64), "if axis 0 holds 5 channels, open the image with channel_axis=0"),
        ((40, 64, 64), None),
        ((2, 3, 32, 32), None),
    ],
)
def test_nd_layers_are_explained_with_a_channel_hint_when_it_fits(shape, hint):
    layer = Image(np.zeros(shape, np.uint8), rgb=False, name="multi")
    with pytest.raises(UserError) as info:
        check_2d_image(layer, "content")
    message = str(info.value)
    assert (
        "nD stacks will come in a later version" in message and message.endswith(".") and "\n" not in message
    )
    assert (hint in message) if hint else ("channel_axis" not in message)


def test_layers_too_big_for_the_free_memory_are_refused_before_reading(monkeypatch):
    monkeypatch.setattr(layers_module, "free_host_memory", lambda: 8 * 2**20)
    big = Image(np.zeros((600, 800, 3), np.uint8), rgb=True, name="big")
    style = Image(np.zeros((40, 40, 3), np.uint8), rgb=True, name="style")
    with pytest.raises(UserError) as info:
        prepare_run(big, [(style, 1.0)], dict(PARAMS, size=None))
    assert str(info.value) == (
        "Layer 'big' is 800×600 px; reading it at this size needs about 60 MiB of memory but only 8 MiB are "
        "free — choose an output size of at most about 288 px instead of the original size."
    )
    # at a size the run can reduce to, the same layer is fine
    assert prepare_run(big, [(style, 1.0)], dict(PARAMS, size=64)).read().content.shape == (
        100,
        134,
        3,
    )  # 6×6 block means


def test_labels_are_not_images():
    with pytest.raises(UserError, match="is a Labels layer; choose an Image layer as the style"):
        check_2d_image(Labels(np.zeros((8, 8), np.int32), name="m"), "style")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_layer_and_a_file_with_the_same_pixels_reduce_to_the_same_values(tmp_path, suffix):
    """One block mean for layers and files: blocks whose mean is exactly a half round the same way."""
    from napari_style_transfer.files import decode, write_image

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 2, (400, 600), dtype=np.uint8)  # many 4×4 blocks sum to 8: a mean of 0.5
    write_image(tmp_path / f"gray{suffix}", pixels)
    from_layer = layer_array(SimpleNamespace(data=pixels, name="gray"), long_side=64)  # 600 // 128 = 4
    from_file = decode(tmp_path / f"gray{suffix}", factor=4)
    assert from_layer.shape == from_file.array.shape == (100, 150)
    np.testing.assert_array_equal(from_layer, from_file.array)
