"""The fused max-pool against its oracle, the composition (windows, then a max over them)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet.kernels import MaxPool2d, MaxPool2dBackward, pool, use_fused
from nnet.testing import gradcheck, gradgradcheck

#: The fused primitives whose gradients this file checks (tests/fused/test_coverage.py).
FUSED_TESTED = (MaxPool2d, MaxPool2dBackward)


def _both(x: np.ndarray, kernel: tuple[int, int], g: np.ndarray | None = None):
    """(output, input gradient) of the fused op and of the composition, for upstream ``g``."""
    out = []
    for fused in (True, False):
        t = nnet.Tensor(x.copy(order="K"), requires_grad=True)  # keeps a non-contiguous layout
        with use_fused(fused):
            y = F.max_pool2d(t, kernel)
        assert (type(y.grad_fn) is MaxPool2d) == fused
        (dx,) = nnet.grad(y, t, np.ones(y.shape, x.dtype) if g is None else g)
        out.append((y.numpy(), dx.numpy()))
    return out


@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    c=st.integers(1, 3),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_matches_composition_with_ties(n, hw, c, kernel, dtype, seed):
    kernel = (min(kernel[0], hw[0]), min(kernel[1], hw[1]))
    rng = np.random.default_rng(seed)
    # few distinct values: most windows hold ties, which both must send to the first maximum
    x = rng.integers(-2, 3, (n, *hw, c)).astype(dtype)
    oh, ow = hw[0] // kernel[0], hw[1] // kernel[1]
    g = rng.standard_normal((n, oh, ow, c)).astype(dtype)
    x_before = x.copy()
    (y, dx), (y0, dx0) = _both(x, kernel, g)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dx, dx0)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(x, x_before)


@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(2, 9), st.integers(2, 9)),
    c=st.integers(1, 5),
    values=st.sampled_from([(-1.0, 0.0, 1.0), (-0.0, 0.0), (-np.inf, 0.0, np.inf), (0.0, np.nan)]),
    seed=st.integers(0, 2**16),
)
def test_special_values_match_composition(n, hw, c, values, seed):
    """Ties among signed zeros and infinities go to the first element in row-major order (the zero's
    sign too), and a window holding NaN sends it to its first NaN, as in the composition."""
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array(values), size=(n, *hw, c))
    g = rng.standard_normal((n, hw[0] // 2, hw[1] // 2, c))
    with np.errstate(invalid="ignore"):
        (y, dx), (y0, dx0) = _both(x, (2, 2), g)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y0))
    np.testing.assert_array_equal(dx, dx0)


@pytest.mark.parametrize("c", [1, 8, 9, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_layouts_match_composition(c, dtype):
    """Narrow pixels (C * itemsize <= 64 bytes) take the offset-major copy, wider ones the strided
    slices: each against the composition, with ties, a remainder and a non-contiguous input."""
    rng = np.random.default_rng(c)
    x = rng.integers(-2, 3, (2, 7, 9, c)).astype(dtype)
    g = rng.standard_normal((2, 3, 4, c)).astype(dtype)
    (y, dx), (y0, dx0) = _both(x, (2, 2), g)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dx, dx0)
    xt = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)  # not C-contiguous
    (y, dx), (y0, dx0) = _both(xt, (2, 3), None)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dx, dx0)


@pytest.mark.parametrize("record", [True, False])
def test_batches_of_images_match_composition(monkeypatch, record):
    """The offset-major forward runs a few images at a time (here 2 of 11: a last, shorter batch),
    with or without keeping the copy for a backward."""
    monkeypatch.setattr(pool, "_CHUNK_BYTES", 2 * 3 * 4 * 2 * 4)  # two images' output bytes
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, (11, 7, 9, 2)).astype(np.float32)
    g = rng.standard_normal((11, 3, 4, 2)).astype(np.float32)
    if record:
        (y, dx), (y0, dx0) = _both(x, (2, 2), g)
        np.testing.assert_array_equal(dx, dx0)
    else:
        with nnet.no_grad():
            y = F.max_pool2d(nnet.Tensor(x), 2).numpy()
        y0 = x[:, :6, :8].reshape(11, 3, 2, 4, 2, 2).max(axis=(2, 4))
    np.testing.assert_array_equal(y, y0)


def test_ties_go_to_the_first_element_row_major():
    # one 2x2 window per channel: all equal; the top-right and bottom-left tied; only bottom-right max
    x = np.array([[[5.0, 1.0], [5.0, 7.0]], [[5.0, 7.0], [5.0, 2.0]]]).reshape(1, 2, 2, 2)
    (y, dx), _ = _both(x, (2, 2))
    np.testing.assert_array_equal(y.reshape(-1), [5.0, 7.0])
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(dx[0, :, :, 1], [[0.0, 1.0], [0.0, 0.0]])


def test_remainder_rows_and_columns_get_zero_gradient():
    x = np.arange(1.0, 16.0).reshape(1, 3, 5, 1)
    (y, dx), _ = _both(x, (2, 2))
    np.testing.assert_array_equal(y.reshape(-1), [7.0, 9.0])
    want = np.zeros((3, 5))
    want[1, 1] = want[1, 3] = 1.0
    np.testing.assert_array_equal(dx[0, :, :, 0], want)


def _distinct(shape: tuple[int, ...], seed: int) -> nnet.Tensor:
    """Distinct values a central difference cannot reorder: no ties, no kinks within eps."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).astype(np.float64)
    return nnet.Tensor(values.reshape(shape) * 0.1, requires_grad=True)


@given(
    hw=st.tuples(st.integers(2, 6), st.integers(2, 6)),
    kernel=st.tuples(st.integers(1, 2), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_gradcheck(hw, kernel, seed):
    kernel = (min(kernel[0], hw[0]), min(kernel[1], hw[1]))
    x = _distinct((2, *hw, 2), seed)
    assert gradcheck(lambda t: F.max_pool2d(t, kernel), x)


def test_second_order_through_the_backward():
    x = _distinct((2, 4, 6, 3), 1)
    (dx,) = nnet.grad((F.max_pool2d(x, (2, 3)) ** 2).sum(), x, create_graph=True)
    assert type(dx.grad_fn) is MaxPool2dBackward
    assert gradgradcheck(lambda t: F.max_pool2d(t, (2, 3)) ** 2, x)


def test_other_strides_paddings_and_dilations_take_the_composition():
    x = nnet.Tensor(np.ones((1, 6, 6, 1)), requires_grad=True)
    assert type(F.max_pool2d(x, 2).grad_fn) is MaxPool2d
    for kw in ({"stride": 1}, {"padding": 1}, {"dilation": 2}):
        assert type(F.max_pool2d(x, 2, **kw).grad_fn) is not MaxPool2d
    assert type(nnet.nn.MaxPool2d(2)(x).grad_fn) is MaxPool2d
