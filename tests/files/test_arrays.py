"""The numpy helpers below the engine and the file readers (``napari_style_transfer.arrays``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_style_transfer.arrays import block_mean, fit_long_side, reduced_shape


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.float32])
def test_block_mean_keeps_the_dtype(dtype):
    data = np.random.default_rng(1).random((9, 10)) * 100 - 50
    data = (data > 0) if dtype == np.bool_ else data.astype(dtype)
    out = block_mean(data, 3)
    assert out.dtype == data.dtype and out.shape == (3, 4)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.int32])
def test_integer_block_means_are_exact_and_round_half_up(dtype):
    info = np.iinfo(dtype)
    data = np.random.default_rng(2).integers(info.min, info.max, (10, 11, 3), dtype=dtype, endpoint=True)
    out = block_mean(data, 3)
    assert out.shape == (*reduced_shape((10, 11), 3), 3) and out.dtype == dtype
    wide = data.astype(np.int64)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = wide[3 * i : 3 * i + 3, 3 * j : 3 * j + 3].reshape(-1, 3)
            count = len(block)
            expected = (block.sum(axis=0) * 2 + count) // (2 * count)  # floor(mean + 1/2)
            np.testing.assert_array_equal(out[i, j], expected)


def test_a_half_rounds_up_the_same_way_everywhere():
    """[1, 1, 0, 0] has the mean 0.5: 1, as integer arithmetic rounds it (np.rint would give 0)."""
    data = np.array([[1, 1], [0, 0]], np.uint8)
    assert block_mean(data, 2).tolist() == [[1]]


def test_large_floats_and_64_bit_integers_do_not_overflow():
    big = np.full((4, 4), np.finfo(np.float64).max, np.float64)
    assert np.isfinite(block_mean(big, 2)).all()
    top = np.full((4, 4), np.iinfo(np.uint64).max, np.uint64)
    assert (block_mean(top, 2) >= np.iinfo(np.uint64).max - 4096).all()


def test_a_nan_makes_its_block_nan():
    data = np.zeros((4, 4), np.float32)
    data[0, 0] = np.nan
    out = block_mean(data, 2)
    assert np.isnan(out[0, 0]) and not np.isnan(out[1:, :]).any() and not np.isnan(out[0, 1])


def test_fit_long_side_keeps_the_network_minimum():
    assert fit_long_side((4000, 3), 64) == (64, 16)
    assert fit_long_side((300, 451), 512) == (341, 512)
