"""ReLU's forward against ``np.maximum(a, 0)``: the row-of-zeros fast path must give the same bits."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.autograd import activation


@pytest.mark.parametrize("shape", [(64, 8, 8, 4), (8, 512), (3, 5), (4099,), (2, 0, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_matches_maximum_with_zero_bit_for_bit(shape, dtype):
    rng = np.random.default_rng(0)
    a = rng.choice(np.array([-2.0, -0.0, 0.0, 1.5, np.nan, np.inf, -np.inf]), size=shape)
    a = a.astype(dtype)
    y = nnet.relu(nnet.Tensor(a)).numpy()
    want = np.maximum(a, 0)
    assert y.dtype == want.dtype and y.shape == want.shape
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(want))


def test_relu_of_a_non_contiguous_array():
    a = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32).T
    np.testing.assert_array_equal(nnet.relu(nnet.Tensor(a)).numpy(), np.maximum(a, 0))


def test_the_fast_path_is_the_one_taken_on_large_arrays(monkeypatch):
    calls = []
    real = np.zeros

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(activation.np, "zeros", spy)
    activation._relu_array(np.ones((64, 8, 8, 4), np.float32))
    assert calls == [(activation._ZERO_ROW, np.dtype(np.float32))]
