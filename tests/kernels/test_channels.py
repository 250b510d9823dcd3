"""per_channel: the tiled broadcast gives exactly what NumPy's plain broadcast gives; relu the bits
of ``np.maximum(a, 0)``; column_sums sums rows on one BLAS thread and puts the count back."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nnet.kernels.channels import column_sums, per_channel, relu
from nnet.threads import blas_info


@given(
    m=st.integers(1, 600),
    c=st.integers(1, 9),
    ufunc=st.sampled_from([np.add, np.subtract, np.multiply]),
    in_place=st.booleans(),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_plain_broadcast(m, c, ufunc, in_place, transposed, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((c, m)).T if transposed else rng.standard_normal((m, c))
    v = rng.standard_normal(c)
    want = ufunc(a, v)
    got = per_channel(ufunc, a, v, out=a if in_place else None)
    assert got.shape == (m, c)
    np.testing.assert_array_equal(got, want)
    if in_place:
        np.testing.assert_array_equal(a, want)


def test_column_sums_on_one_blas_thread_restores_the_count():
    a = np.random.default_rng(0).standard_normal((3000, 5))
    before = blas_info()["threads"]
    np.testing.assert_allclose(column_sums(a, np.ones(3000)), a.sum(axis=0), rtol=1e-12)
    assert blas_info()["threads"] == before


@given(
    shape=st.sampled_from([(600, 3), (64, 32), (4, 50, 8), (7, 1)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    in_place=st.booleans(),
    row=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_relu_is_maximum_with_zero_bit_for_bit(shape, dtype, in_place, row, seed):
    """NaN stays NaN and -0.0 stays -0.0, as ``np.maximum(a, 0)`` gives, in place too, against
    the row of zeros (``row``) and against a scalar zero (small arrays)."""
    from nnet.kernels import channels

    saved = channels.RELU_ROW_FROM
    channels.RELU_ROW_FROM = 0 if row else 2**62
    try:
        _relu_bit_for_bit(shape, dtype, in_place, seed)
    finally:
        channels.RELU_ROW_FROM = saved


def _relu_bit_for_bit(shape, dtype, in_place, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    flat[rng.integers(0, flat.size, 5)] = np.nan
    flat[rng.integers(0, flat.size, 5)] = -0.0
    flat[rng.integers(0, flat.size, 5)] = 0.0
    want = np.maximum(a, 0)
    got = relu(a, out=a if in_place else None)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))  # NaN payloads, zero signs
    if in_place:
        assert np.shares_memory(got, a)
