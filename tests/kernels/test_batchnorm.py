"""The fused training-mode batch norm against the composition (mean, centre, variance, scale, shift)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet.kernels import BatchNorm, use_fused
from nnet.testing import gradcheck, gradgradcheck

#: The fused primitives whose gradients this file checks (tests/fused/test_coverage.py).
FUSED_TESTED = (BatchNorm,)


def _run(fused, x, w, b, g, momentum=0.1):
    c = x.shape[-1]
    ts = [nnet.Tensor(a.copy(), requires_grad=True) for a in (x, w, b) if a is not None]
    xt = ts[0]
    wt = ts[1] if w is not None else None
    bt = ts[-1] if b is not None else None
    rm, rv = nnet.Tensor(np.full(c, 0.5, x.dtype)), nnet.Tensor(np.full(c, 2.0, x.dtype))
    with use_fused(fused):
        y = F.batch_norm(xt, rm, rv, wt, bt, training=True, momentum=momentum, eps=1e-5)
    assert (type(y.grad_fn) is BatchNorm) == fused
    grads = [t.numpy() for t in nnet.grad(y, ts, g)]
    return y.numpy(), grads, rm.numpy(), rv.numpy()


@given(
    shape=st.sampled_from([(2, 3), (5, 1), (3, 4, 5, 2), (2, 1, 3, 4), (1, 2, 2, 3)]),
    affine=st.sampled_from(["both", "weight", "bias", "none"]),
    scale=st.floats(1e-2, 1e2),
    seed=st.integers(0, 2**16),
)
def test_matches_composition(shape, affine, scale, seed):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = rng.standard_normal(shape) * scale + rng.standard_normal(c)
    w = rng.standard_normal(c) if affine in ("both", "weight") else None
    b = rng.standard_normal(c) if affine in ("both", "bias") else None
    g = rng.standard_normal(shape)
    x_before = x.copy()
    got, want = _run(True, x, w, b, g), _run(False, x, w, b, g)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10, atol=1e-10)
    for a, a0 in zip(got[1], want[1], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-8, atol=1e-10 * max(1.0, 1 / scale))
    np.testing.assert_allclose(got[2], want[2], rtol=1e-12)  # running mean
    np.testing.assert_allclose(got[3], want[3], rtol=1e-12)  # running var (unbiased batch var)
    np.testing.assert_array_equal(x, x_before)


def test_running_statistics_by_hand():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
    _, _, rm, rv = _run(True, x, None, None, np.ones((3, 2)), momentum=0.5)
    # batch means (3, 12), unbiased variances (4, 12); start (0.5, 2): halfway towards each
    np.testing.assert_allclose(rm, [1.75, 6.25])
    np.testing.assert_allclose(rv, [3.0, 7.0])


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5, 5, 3)).astype(np.float32)
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    (y, grads, *_), (y0, grads0, *_) = _run(True, x, w, b, g), _run(False, x, w, b, g)
    assert y.dtype == np.float32 and all(a.dtype == np.float32 for a in grads)
    np.testing.assert_allclose(y, y0, atol=1e-5)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, atol=1e-4)


@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_and_second_order(affine):
    rng = np.random.default_rng(3)
    x = nnet.Tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal(3), requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(3), requires_grad=True)

    def f(x, w, b):
        y = F.batch_norm(x, None, None, w if affine else None, b if affine else None, True)
        assert type(y.grad_fn) is BatchNorm
        return y * y.sum()  # couples the rows, so the cross terms of the gradient are checked

    assert gradcheck(f, x, w, b)
    assert gradgradcheck(f, x, w, b)


@given(
    shape=st.sampled_from([(2, 3), (3, 4, 5, 2), (2, 1, 3, 4), (1, 2, 2, 3)]),
    affine=st.sampled_from(["both", "weight", "bias", "none"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_inference_path_is_bit_identical_to_the_composition(shape, affine, dtype, seed):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = nnet.Tensor(rng.standard_normal(shape).astype(dtype))
    rm = nnet.Tensor(rng.standard_normal(c).astype(dtype))
    rv = nnet.Tensor(rng.uniform(0.5, 2.0, c).astype(dtype))
    w = nnet.Tensor(rng.standard_normal(c).astype(dtype)) if affine in ("both", "weight") else None
    b = nnet.Tensor(rng.standard_normal(c).astype(dtype)) if affine in ("both", "bias") else None
    y = F.batch_norm(x, rm, rv, w, b, training=False)
    assert y.grad_fn is None
    with use_fused(False):
        y0 = F.batch_norm(x, rm, rv, w, b, training=False)
    assert y.dtype == y0.dtype
    np.testing.assert_array_equal(y.numpy(), y0.numpy())


def test_inference_path_still_records_when_a_gradient_is_wanted():
    x = nnet.Tensor(np.ones((4, 2)), requires_grad=True)
    w = nnet.Tensor(np.full(2, 3.0), requires_grad=True)
    rm, rv = nnet.Tensor(np.zeros(2)), nnet.Tensor(np.full(2, 4.0))
    y = F.batch_norm(x, rm, rv, w, None, training=False, eps=0.0)
    gx, gw = nnet.grad(y.sum(), [x, w])
    np.testing.assert_allclose(gx.numpy(), np.full((4, 2), 1.5))  # w / sqrt(running_var)
    np.testing.assert_allclose(gw.numpy(), [2.0, 2.0])  # sum of x / sqrt(running_var)
