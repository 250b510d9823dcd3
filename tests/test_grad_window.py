"""The sliding-window pair: ``sliding_windows`` (im2col, a strided view) and ``col2im``, its adjoint.
Forward against a loop reference, the adjoint identity, gradients first and second order."""

from __future__ import annotations

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P

PRIMITIVES_TESTED = {P.SlidingWindows, P.Col2Im}


@st.composite
def window_problems(draw):
    """An NHWC shape and a kernel, stride and dilation whose windows fit in it."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    h = draw(st.integers(span[0], span[0] + 3))
    w = draw(st.integers(span[1], span[1] + 3))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    return (n, h, w, c), k, s, d


def _reference_windows(x, k, s, d):
    n, h, w, c = x.shape
    oh = (h - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.empty((n, oh, ow, k[0], k[1], c))
    for r in range(oh):
        for q in range(ow):
            for i in range(k[0]):
                for j in range(k[1]):
                    out[:, r, q, i, j, :] = x[:, r * s[0] + i * d[0], q * s[1] + j * d[1], :]
    return out


def _reference_col2im(cols, shape, s, d):
    out = np.zeros(shape)
    _, oh, ow, kh, kw, _ = cols.shape
    for r in range(oh):
        for q in range(ow):
            for i in range(kh):
                for j in range(kw):
                    out[:, r * s[0] + i * d[0], q * s[1] + j * d[1], :] += cols[:, r, q, i, j, :]
    return out


@given(data=st.data(), seed=seeds)
def test_sliding_windows(data, seed):
    shape, k, s, d = data.draw(window_problems())
    x = data.draw(arrays(shape))
    out = nnet.sliding_windows(nnet.tensor(x), k, stride=s, dilation=d)
    np.testing.assert_array_equal(out.numpy(), _reference_windows(x, k, s, d))
    check_grad(
        lambda t: nnet.sliding_windows(t, k, stride=s, dilation=d), leaf(x),
        primitive=P.SlidingWindows, seed=seed, second_order=True,
    )  # fmt: skip


@given(data=st.data(), seed=seeds)
def test_col2im(data, seed):
    shape, k, s, d = data.draw(window_problems())
    cols_shape = _reference_windows(np.zeros(shape), k, s, d).shape
    cols = data.draw(arrays(cols_shape))
    out = nnet.col2im(nnet.tensor(cols), shape, stride=s, dilation=d)
    np.testing.assert_allclose(out.numpy(), _reference_col2im(cols, shape, s, d), rtol=1e-12)
    check_grad(
        lambda t: nnet.col2im(t, shape, stride=s, dilation=d), leaf(cols), primitive=P.Col2Im,
        seed=seed, second_order=True,
    )  # fmt: skip


@given(data=st.data())
def test_col2im_is_the_adjoint_of_sliding_windows(data):
    """<windows(x), c> = <x, col2im(c)> for every x and c."""
    shape, k, s, d = data.draw(window_problems())
    x = data.draw(arrays(shape))
    windows = nnet.sliding_windows(nnet.tensor(x), k, stride=s, dilation=d).numpy()
    c = data.draw(arrays(windows.shape))
    back = nnet.col2im(nnet.tensor(c), shape, stride=s, dilation=d).numpy()
    assert np.sum(windows * c) == pytest.approx(np.sum(x * back), rel=1e-10, abs=1e-10)


def test_sliding_windows_is_a_read_only_view():
    x = nnet.tensor(np.arange(32.0).reshape(1, 4, 4, 2))
    w = nnet.sliding_windows(x, 2)
    assert np.shares_memory(w.numpy(), x.numpy())
    assert not w.numpy().flags.writeable


def test_sliding_windows_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"NHWC tensor \(4 axes\), got shape \(4, 4\)"):
        nnet.sliding_windows(nnet.ones((4, 4)), 2)
    with pytest.raises(ValueError, match=r"a 3x3 window \(dilation \(2, 2\)\) spans 5x5 .* 4x4"):
        nnet.sliding_windows(nnet.ones((1, 4, 4, 1)), 3, dilation=2)
    with pytest.raises(ValueError, match="must be positive"):
        nnet.sliding_windows(nnet.ones((1, 4, 4, 1)), 2, stride=0)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair of ints"):
        nnet.sliding_windows(nnet.ones((1, 4, 4, 1)), "2")
